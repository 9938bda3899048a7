// Tests of the shared test harness: real processes, real sockets, a real Mosquitto.
#include "tests/common/test_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace sluice::testing {
namespace {

TEST(TempDirTest, CreatesAndRemovesRecursively) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    ASSERT_TRUE(std::filesystem::is_directory(path));
    std::filesystem::create_directories(dir.Sub("a/b"));
    ASSERT_TRUE(WriteFile(dir.Sub("a/b/f"), "x"));
    EXPECT_EQ(ReadFileOrEmpty(dir.Sub("a/b/f")), "x");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(FreePortTest, UniqueAndBindable) {
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    int port = FreePort();
    ASSERT_GT(port, 0);
    ASSERT_TRUE(seen.insert(port).second) << "port handed out twice: " << port;
  }
  int port = FreePort();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
}

TEST(WaitForTest, TrueWhenConditionBecomesTrue) {
  int calls = 0;
  EXPECT_TRUE(WaitFor([&] { return ++calls >= 3; }, 10000, 1));
  EXPECT_EQ(calls, 3);
}

TEST(WaitForTest, FalseAfterTimeout) {
  int calls = 0;
  EXPECT_FALSE(WaitFor([&] { ++calls; return false; }, 50, 5));
  EXPECT_GE(calls, 2);
}

TEST(PathsTest, FromEnvironment) {
  EXPECT_TRUE(std::filesystem::exists(SourcePath("config/mosquitto.conf")));
  EXPECT_EQ(BinPath("x"), std::string(std::getenv("SLUICE_BIN_DIR")) + "/x");
}

TEST(ChildProcessTest, ExitCodeLogAndEnvironment) {
  TempDir dir;
  auto p = ChildProcess::Start({"/bin/sh", "-c", "echo out $FOO; echo err >&2; exit 3"},
                               dir.Sub("log"), {{"FOO", "bar"}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->WaitExit(10000), 3);
  EXPECT_FALSE(p->Running());
  std::string log = p->ReadLog();
  EXPECT_NE(log.find("out bar"), std::string::npos) << log;
  EXPECT_NE(log.find("err"), std::string::npos) << log;
}

TEST(ChildProcessTest, FindsProgramOnPath) {
  TempDir dir;
  EXPECT_EQ(RunCommand({"true"}, dir.Sub("log"), 10000), 0);
  EXPECT_EQ(RunCommand({"false"}, dir.Sub("log"), 10000), 1);
}

TEST(ChildProcessTest, StartFailsForMissingBinary) {
  TempDir dir;
  EXPECT_EQ(ChildProcess::Start({"/nonexistent/binary"}, dir.Sub("log")), nullptr);
}

TEST(ChildProcessTest, StopWithSignal) {
  TempDir dir;
  auto p = ChildProcess::Start({"/bin/sleep", "1000"}, dir.Sub("log"));
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->Running());
  EXPECT_EQ(p->WaitExit(50), -1);
  int status = p->Stop(SIGTERM, 10000);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_FALSE(p->Running());
}

TEST(ChildProcessTest, StopEscalatesToSigkill) {
  TempDir dir;
  // Ignored signals stay ignored across exec, so the sleeps ignore SIGTERM too.
  auto p = ChildProcess::Start({"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"},
                               dir.Sub("log"));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitFor([&] { return p->ReadLog().find("ready") != std::string::npos; }, 10000));
  EXPECT_EQ(p->Stop(SIGTERM, 200), -1);
  EXPECT_FALSE(p->Running());
}

bool ProcessGone(pid_t pid) {
  std::string stat = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) {
    return true;
  }
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] == 'Z';
}

TEST(ChildProcessTest, DestructorKillsProcessGroup) {
  TempDir dir;
  const std::string pid_file = dir.Sub("grandchild.pid");
  auto p = ChildProcess::Start(
      {"/bin/sh", "-c", "sleep 1000 & echo $! > " + pid_file + ".tmp; mv " + pid_file +
                            ".tmp " + pid_file + "; wait"},
      dir.Sub("log"));
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitFor([&] { return !ReadFileOrEmpty(pid_file).empty(); }, 10000));
  pid_t grandchild = std::stoi(ReadFileOrEmpty(pid_file));
  ASSERT_FALSE(ProcessGone(grandchild));
  p.reset();
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(grandchild); }, 10000));
}

// Forks a helper that starts `start` (which returns a child's pid), reports that pid, and is
// then SIGKILLed, as a crashing test would be; returns the orphaned pid, or -1.
pid_t PidOrphanedByCrash(const std::function<pid_t()>& start) {
  int fds[2];
  if (::pipe(fds) != 0) {
    return -1;
  }
  pid_t helper = ::fork();
  if (helper == 0) {
    ::close(fds[0]);
    pid_t pid = start();
    ssize_t n = ::write(fds[1], &pid, sizeof(pid));
    (void)n;
    while (true) {
      ::pause();  // killed below; destructors never run
    }
  }
  ::close(fds[1]);
  pid_t pid = -1;
  if (::read(fds[0], &pid, sizeof(pid)) != static_cast<ssize_t>(sizeof(pid))) {
    pid = -1;
  }
  ::close(fds[0]);
  ::kill(helper, SIGKILL);
  ::waitpid(helper, nullptr, 0);
  return pid;
}

TEST(ChildProcessTest, ChildrenDieWhenTheTestDies) {
  TempDir dir;
  pid_t sleeper = PidOrphanedByCrash([&] {
    auto p = ChildProcess::Start({"/bin/sleep", "1000"}, dir.Sub("sleep.log"));
    return p != nullptr ? p.release()->pid() : -1;
  });
  ASSERT_GT(sleeper, 0);
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(sleeper); }, 10000));
  if (!ProcessGone(sleeper)) {
    ::kill(sleeper, SIGKILL);
  }
  pid_t mosquitto = PidOrphanedByCrash([&] {
    auto m = Mosquitto::Start(dir);
    return m != nullptr ? m.release()->process()->pid() : -1;
  });
  ASSERT_GT(mosquitto, 0);
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(mosquitto); }, 10000))
      << "Mosquitto outlived the test that started it";
  if (!ProcessGone(mosquitto)) {
    ::kill(mosquitto, SIGKILL);
  }
}

// Serves one canned HTTP response on a free port.
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(fd_, 4);
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      char buf[4096];
      std::string req;
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      request_ = req;
      ::send(c, response_.data(), response_.size(), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~OneShotServer() {
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string request_;

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(HttpGetTest, ContentLengthBody) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  std::string body;
  EXPECT_EQ(HttpGet(server.port(), "/v1/query?x=1", &body), 200);
  EXPECT_EQ(body, "hello");
}

TEST(HttpGetTest, ChunkedBody) {
  OneShotServer server(
      "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab0\r\n2\r\n\r\n\r\n0\r\n\r\n");
  std::string body;
  EXPECT_EQ(HttpGet(server.port(), "/x", &body), 404);
  EXPECT_EQ(body, "ab0\r\n");
}

TEST(HttpGetTest, RefusedConnectionIsMinusOne) {
  EXPECT_EQ(HttpGet(FreePort(), "/", nullptr, 1000), -1);
  EXPECT_FALSE(WaitHttpOk(FreePort(), "/healthz", 100));
}

TEST(MetricSumTest, SumsLabelledSamplesOfExactName) {
  const std::string text =
      "# HELP sluice_x_total X\n# TYPE sluice_x_total counter\n"
      "sluice_x_total{region=\"eu\"} 3\nsluice_x_total{region=\"us\"} 4 1700000000\n"
      "sluice_x_total_bytes 100\nsluice_y 7\n";
  bool found = false;
  EXPECT_EQ(MetricSum(text, "sluice_x_total", &found), 7);
  EXPECT_TRUE(found);
  EXPECT_EQ(MetricSum(text, "sluice_y", &found), 7);
  EXPECT_EQ(MetricSum(text, "sluice_z", &found), 0);
  EXPECT_FALSE(found);
}

TEST(MosquittoTest, PublishSubscribeRoundTrip) {
  TempDir dir;
  auto mosq = Mosquitto::Start(dir);
  ASSERT_NE(mosq, nullptr);
  EXPECT_TRUE(PortAcceptsConnections(mosq->port()));
  const std::string port = std::to_string(mosq->port());
  auto sub = ChildProcess::Start(
      {"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-t", "site/dev-1/temp", "-C", "1"},
      dir.Sub("sub.log"));
  ASSERT_NE(sub, nullptr);
  EXPECT_FALSE(mosq->WaitSubscribed("nobody", "site/dev-1/temp", 50));
  auto sub2 = ChildProcess::Start({"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", "sub-2",
                                   "-q", "1", "-t", "site/+/temp", "-C", "1"},
                                  dir.Sub("sub2.log"));
  ASSERT_NE(sub2, nullptr);
  EXPECT_TRUE(mosq->WaitSubscribed("sub-2", "site/+/temp", 10000));
  // The first subscriber may not be subscribed yet: publish until it has received a message.
  bool received = WaitFor(
      [&] {
        RunCommand({"mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "site/dev-1/temp",
                    "-m", "{\"v\":42}"},
                   dir.Sub("pub.log"), 10000);
        return !sub->Running();
      },
      20000, 100);
  ASSERT_TRUE(received) << ReadFileOrEmpty(dir.Sub("pub.log"));
  EXPECT_EQ(sub->WaitExit(1000), 0);
  EXPECT_EQ(sub->ReadLog(), "{\"v\":42}\n");
  EXPECT_EQ(sub2->WaitExit(10000), 0);
  EXPECT_EQ(sub2->ReadLog(), "{\"v\":42}\n");

  // $SYS counters are retained and published every second (sys_interval 1).
  ASSERT_EQ(RunCommand({"mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-C", "1", "-W", "10",
                        "-t", "$SYS/broker/publish/messages/dropped"},
                       dir.Sub("sys.log"), 20000),
            0);
  EXPECT_EQ(ReadFileOrEmpty(dir.Sub("sys.log")), "0\n");
  EXPECT_TRUE(mosq->process()->Running());
}

}  // namespace
}  // namespace sluice::testing
