// TempDir, FreePort, WaitFor, paths, files and the small HTTP GET client of test_env.h.
// ChildProcess and Mosquitto live in child_process.cc and mosquitto.cc.
#include "tests/common/test_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <algorithm>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sluice::testing {

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "test_env: " << what << std::endl;
  std::abort();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                     "/sluice-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    Die("mkdtemp(" + tmpl + "): " + std::strerror(errno));
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (std::getenv("SLUICE_KEEP_TEST_DIRS") != nullptr) {
    std::cerr << "test_env: keeping " << path_ << std::endl;
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) {
    std::cerr << "test_env: cannot remove " << path_ << ": " << ec.message() << std::endl;
  }
}

namespace {

// The first port of the kernel's ephemeral range (outgoing connections take their local port
// from it). Test servers take ports below it: a port picked by bind(0) sits inside that range, and
// with many loopback clients running in parallel suites an outgoing connection could take it
// before the server bound it (seen as a failed server start under ctest -j2).
int EphemeralRangeStart() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int lo = 0;
  int hi = 0;
  if (in >> lo >> hi && lo > 12000) {
    return lo;
  }
  return 32768;
}

bool CanBind(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Die(std::string("socket: ") + std::strerror(errno));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int FreePort() {
  static std::set<int> handed_out;
  static std::mt19937 rng(static_cast<uint32_t>(::getpid()) * 2654435761u ^
                          static_cast<uint32_t>(NowMs()));
  const int hi = EphemeralRangeStart() - 1;
  const int lo = std::max(10000, hi - 12000);
  std::uniform_int_distribution<int> pick(lo, hi);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = pick(rng);
    if (handed_out.count(port) == 0 && CanBind(port)) {
      handed_out.insert(port);
      return port;
    }
  }
  Die("FreePort: no free port below the ephemeral range after 1000 attempts");
}

bool WaitFor(const std::function<bool()>& cond, int64_t timeout_ms, int64_t poll_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  while (true) {
    if (cond()) {
      return true;
    }
    if (NowMs() >= deadline) {
      return cond();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

static std::string RequireEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    Die(std::string(name) +
        " is not set: run this test through ctest (sluice_test in cmake/SluiceModule.cmake "
        "sets it), or export it by hand");
  }
  return v;
}

std::string BinPath(const std::string& name) { return RequireEnv("SLUICE_BIN_DIR") + "/" + name; }

std::string SourcePath(const std::string& rel) {
  return RequireEnv("SLUICE_SOURCE_DIR") + "/" + rel;
}

std::unique_ptr<ChildProcess> StartShippedBroker(const TempDir& dir, const std::string& config_rel,
                                                 int port,
                                                 const std::vector<std::string>& extra_args,
                                                 std::string* log) {
  std::vector<std::string> argv = {BinPath("sluice-broker"), "--config", SourcePath(config_rel)};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto broker = ChildProcess::Start(
      argv, dir.Sub("broker.log"),
      {{"SLUICE_DATA_DIR", dir.Sub("data")}, {"SLUICE_BROKER_PORT", std::to_string(port)}});
  if (broker != nullptr && !WaitHttpOk(port, "/healthz", 30000)) {
    if (log != nullptr) *log = broker->ReadLog();
    return nullptr;
  }
  return broker;
}

std::string WritePolicyWithBrokers(const std::string& path, const std::string& eu_urls,
                                   const std::string& us_urls) {
  std::string policy = ReadFileOrEmpty(SourcePath("config/residency.yaml"));
  const std::string eu = "${SLUICE_EU_URL:-http://127.0.0.1:9101}";
  const std::string us = "${SLUICE_US_URL:-http://127.0.0.1:9102}";
  const size_t e = policy.find(eu);
  if (e == std::string::npos) return "";
  policy.replace(e, eu.size(), eu_urls);
  const size_t u = policy.find(us);
  if (u == std::string::npos) return "";
  policy.replace(u, us.size(), us_urls);
  return WriteFile(path, policy) ? path : "";
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  return static_cast<bool>(out);
}

bool PortAcceptsConnections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

double MetricSum(const std::string& text, const std::string& name, bool* found) {
  double sum = 0;
  bool any = false;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, name.size(), name) != 0) {
      continue;
    }
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{') {
      continue;  // a longer metric name with this prefix
    }
    size_t sp = line.find_last_of(' ');
    if (next == '{') {
      // Skip the label set; the value follows it (an optional timestamp may follow the value).
      size_t close = line.find('}');
      if (close == std::string::npos) {
        continue;
      }
      sp = close;
    } else {
      sp = name.size();
    }
    std::istringstream value(line.substr(sp + 1));
    double v = 0;
    if (value >> v) {
      sum += v;
      any = true;
    }
  }
  if (found != nullptr) {
    *found = any;
  }
  return sum;
}

}  // namespace sluice::testing
