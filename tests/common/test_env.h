// Test support shared by every suite: temp dirs, free ports, real child processes cleaned up by
// PID, polling with deadlines (tests never sleep to wait), and a real Mosquitto.
// Thread-safety: not thread-safe; use from the test's main thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sluice::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction unless
// SLUICE_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free when asked (bound to port 0, then released). Ports are
// not handed out twice within one test process.
int FreePort();

// Polls `cond` every `poll_ms` until it is true or `timeout_ms` passes. Returns cond's last value.
bool WaitFor(const std::function<bool()>& cond, int64_t timeout_ms, int64_t poll_ms = 20);

// Path of a built binary ("sluice-broker", ...): $SLUICE_BIN_DIR/<name>.
std::string BinPath(const std::string& name);
// Path inside the source tree: $SLUICE_SOURCE_DIR/<rel>.
std::string SourcePath(const std::string& rel);

// A child process started with fork/exec; stdout and stderr go to `log_path`. The destructor
// sends SIGKILL to the process group if it is still running and reaps it.
class ChildProcess {
 public:
  static std::unique_ptr<ChildProcess> Start(const std::vector<std::string>& argv,
                                             const std::string& log_path,
                                             const std::map<std::string, std::string>& env = {});
  ~ChildProcess();
  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `sig` and waits up to timeout_ms for exit; returns the exit status as from waitpid
  // (or -1 if it did not exit in time, in which case it is SIGKILLed).
  int Stop(int sig = 15, int64_t timeout_ms = 10000);
  // Waits up to timeout_ms for the process to exit by itself; returns its exit code (128+N if
  // killed by signal N), or -1 if it is still running.
  int WaitExit(int64_t timeout_ms);
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  ChildProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  bool reaped_ = false;
  int status_ = 0;
  std::string log_path_;
};

// Runs argv to completion (output to log_path); returns its exit code as WaitExit, or -1 if it
// could not start or ran past timeout_ms (it is then killed).
int RunCommand(const std::vector<std::string>& argv, const std::string& log_path,
               int64_t timeout_ms, const std::map<std::string, std::string>& env = {});

// Waits until GET http://127.0.0.1:<port><path> answers 200, or timeout.
bool WaitHttpOk(int port, const std::string& path, int64_t timeout_ms);

// GET http://127.0.0.1:<port><path_and_query> over a plain socket (independent of core/http.h).
// Returns the HTTP status and fills *body (if non-null), or -1 on a transport error/timeout.
int HttpGet(int port, const std::string& path_and_query, std::string* body,
            int64_t timeout_ms = 10000);

// Sum of every sample of metric `name` (any labels) in Prometheus text; *found (if non-null)
// tells whether any sample was present.
double MetricSum(const std::string& prometheus_text, const std::string& name,
                 bool* found = nullptr);

// True if a TCP connect to 127.0.0.1:<port> succeeds right now.
bool PortAcceptsConnections(int port);

// Whole file contents, or "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);
// Replaces the file's contents; false on error.
bool WriteFile(const std::string& path, const std::string& content);

// A real sluice-broker from a shipped config (`config_rel`, e.g. "config/broker-eu-central.yaml")
// listening on `port` with its data in dir/data, plus `extra_args` (e.g. {"--set", "k=v"}); waits
// for its /healthz. nullptr if it did not answer within 30 s (*log, if given, gets its log).
std::unique_ptr<ChildProcess> StartShippedBroker(const TempDir& dir, const std::string& config_rel,
                                                 int port,
                                                 const std::vector<std::string>& extra_args = {},
                                                 std::string* log = nullptr);

// Writes the shipped residency policy (config/residency.yaml) to `path` with each region's
// brokers replaced: `eu_urls` / `us_urls` are comma-separated base URLs. Returns `path`, or ""
// if the shipped policy lacks the expected broker lines. Gateways take it with
// --set residency.policy_file=<path> (the brokers keep the shipped one: same regions and
// countries, only the URLs differ).
std::string WritePolicyWithBrokers(const std::string& path, const std::string& eu_urls,
                                   const std::string& us_urls);

// Path of the mosquitto broker binary, or "" if it is not installed.
std::string MosquittoBinary();

// A real Mosquitto on 127.0.0.1:<port> with the raised queue limits of config/mosquitto.conf,
// logging to <dir>/mosquitto.log and publishing $SYS counters every second. Works run as root
// (Mosquitto then drops to user `mosquitto`) and as any other user.
class Mosquitto {
 public:
  // Returns nullptr (and logs why) if /usr/sbin/mosquitto cannot be started.
  static std::unique_ptr<Mosquitto> Start(const TempDir& dir);
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  ChildProcess* process() { return proc_.get(); }
  // Waits until Mosquitto has logged that `client_id` subscribed to `topic_filter` (the config
  // sets `log_type subscribe`), so a test can publish knowing the subscriber will get it.
  bool WaitSubscribed(const std::string& client_id, const std::string& topic_filter,
                      int64_t timeout_ms);

 private:
  int port_ = 0;
  std::unique_ptr<ChildProcess> proc_;
};

}  // namespace sluice::testing
