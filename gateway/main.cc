// sluice-gateway: the edge gateway. Thin: parse flags, load and validate the config, run
// GatewayApp until SIGTERM/SIGINT (exit 0) or until a buffer write fails (exit 75).
// `--check-buffer` prints the buffer report (CheckBuffer) of <gateway.data_dir>/buffer and
// exits 0, or 1 if the DB cannot be opened.
#include <csignal>
#include <cstdio>
#include <iostream>

#include "core/allocator_tuning.h"
#include "core/cli_args.h"
#include "core/config.h"
#include "core/http.h"
#include "core/logging.h"
#include "gateway/app/gateway_app.h"
#include "gateway/buffer/buffer_check.h"

int main(int argc, char** argv) {
  sluice::TuneAllocatorForLargeBuffers();
  using namespace sluice;
  // Block the stop signals in every thread (threads inherit the mask); main waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string usage =
      "sluice-gateway --config FILE [--set key.path=value]... [--check-buffer]";
  const std::vector<CliFlag> flags = {
      {"check-buffer", false,
       "print per-region counts/bytes, quarantined entries and dead letters of the buffer, "
       "then exit (0; 1 if the buffer cannot be opened)"}};
  std::string error;
  std::optional<CliArgs> args = ParseCliArgs(argc, argv, flags, &error);
  if (!args) {
    std::cerr << "sluice-gateway: " << error << "\n" << CliUsage(usage, flags);
    return 2;
  }
  if (args->help) {
    std::cout << CliUsage(usage, flags);
    return 0;
  }
  gateway::GatewayConfig config;
  try {
    Config cfg = Config::Load(args->config_path, args->overrides);
    config = gateway::GatewayConfig::FromConfig(cfg);
  } catch (const ConfigError& e) {
    std::cerr << "sluice-gateway: " << e.what() << "\n";
    return 2;
  }
  if (args->Has("check-buffer")) {
    Status st = gateway::CheckBuffer(config.data_dir + "/buffer", std::cout);
    if (!st.ok()) {
      std::cerr << "sluice-gateway: " << st.ToString() << "\n";
      return 1;
    }
    return 0;
  }
  SetLogLevel(config.log_level);
  InitHttpThreads(config.http_threads);

  gateway::GatewayApp app(config);
  Status st = app.Start();
  if (!st.ok()) {
    LogError("gateway", "start failed: " + st.ToString());
    app.Stop();
    return 1;
  }
  while (true) {
    const timespec poll{0, 200'000'000};
    const int sig = sigtimedwait(&stop_signals, nullptr, &poll);
    if (sig > 0) {
      LogInfo("gateway", std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                             ", shutting down");
      break;
    }
    const Status failed = app.buffer()->write_failure();
    if (!failed.ok()) {
      // Fail-stop (gateway/README.md, "Guarantees"): a restart reopens the
      // buffer, which recovers everything acknowledged; a supervisor restarts on exit code 75.
      LogError("gateway", failed.message() + "; exiting with code 75");
      app.Stop();
      return 75;  // EX_TEMPFAIL
    }
  }
  app.Stop();
  return 0;
}
