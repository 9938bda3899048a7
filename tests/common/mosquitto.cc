// Mosquitto::Start: a private Mosquitto on a free loopback port, configured like
// config/mosquitto.conf (raised queue limits, persistence under <dir>/mosquitto-data-<port>/),
// logging to <dir>/mosquitto.log.
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "tests/common/test_env.h"

namespace sluice::testing {

namespace {

const char* const kMosquittoPaths[] = {"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto",
                                       "/usr/bin/mosquitto"};

// mosquitto.conf(5): run as root, Mosquitto switches to `user` (default `mosquitto`, else
// `nobody`) after reading its config; run as anyone else, `user` has no effect. That switch is
// a credential change, which clears PR_SET_PDEATHSIG, so a root Mosquitto would outlive a
// crashed test. Run as root we therefore say `user root` (no switch: it stays on loopback, in
// the test's own directory, for the test's lifetime only).
std::string Config(int port, const std::string& persistence_dir) {
  return std::string(::geteuid() == 0 ? "user root\n" : "") + "listener " + std::to_string(port) +
         " 127.0.0.1\n"
         "allow_anonymous true\n"
         "max_queued_messages 100000\n"
         "max_inflight_messages 1000\n"
         "persistence true\n"
         "persistence_location " + persistence_dir + "/\n"
         "autosave_interval 60\n"
         "log_dest stderr\n"
         "log_type error\n"
         "log_type warning\n"
         "log_type notice\n"
         "log_type information\n"
         "log_type subscribe\n"
         "connection_messages true\n"
         "sys_interval 1\n";
}

}  // namespace

std::string MosquittoBinary() {
  for (const char* p : kMosquittoPaths) {
    if (::access(p, X_OK) == 0) {
      return p;
    }
  }
  return "";
}

std::unique_ptr<Mosquitto> Mosquitto::Start(const TempDir& dir) {
  const std::string bin = MosquittoBinary();
  if (bin.empty()) {
    std::cerr << "Mosquitto::Start: no mosquitto binary (run scripts/setup)" << std::endl;
    return nullptr;
  }
  // Another process may grab the port between FreePort() and Mosquitto's bind: retry.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto m = std::unique_ptr<Mosquitto>(new Mosquitto());
    m->port_ = FreePort();
    const std::string conf = dir.Sub("mosquitto-" + std::to_string(m->port_) + ".conf");
    const std::string data = dir.Sub("mosquitto-data-" + std::to_string(m->port_));
    std::error_code ec;
    std::filesystem::create_directories(data, ec);
    if (!WriteFile(conf, Config(m->port_, data))) {
      std::cerr << "Mosquitto::Start: cannot write " << conf << std::endl;
      return nullptr;
    }
    m->proc_ = ChildProcess::Start({bin, "-c", conf}, dir.Sub("mosquitto.log"));
    if (m->proc_ == nullptr) {
      return nullptr;
    }
    const int port = m->port_;
    ChildProcess* proc = m->proc_.get();
    bool up = WaitFor([&] { return !proc->Running() || PortAcceptsConnections(port); }, 10000);
    if (up && proc->Running()) {
      return m;
    }
    std::cerr << "Mosquitto::Start: attempt " << attempt << " on port " << port
              << " failed; log:\n"
              << proc->ReadLog() << std::endl;
  }
  return nullptr;
}

bool Mosquitto::WaitSubscribed(const std::string& client_id, const std::string& topic_filter,
                               int64_t timeout_ms) {
  // Mosquitto 2.0 logs a subscription as "<time>: <client id> <qos> <topic filter>".
  return WaitFor(
      [&] {
        const std::string log = proc_->ReadLog();
        for (const char* qos : {" 0 ", " 1 ", " 2 "}) {
          if (log.find(": " + client_id + qos + topic_filter + "\n") != std::string::npos) {
            return true;
          }
        }
        return false;
      },
      timeout_ms, 20);
}

}  // namespace sluice::testing
