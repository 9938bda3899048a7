// sluice-broker: the regional cloud broker. Thin main: flags, config, signals; the work is in
// broker::Broker (cloud-broker/server/broker.h).
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "cloud-broker/log/sync_journal_file_ops.h"
#include "cloud-broker/server/broker.h"
#include "cloud-broker/server/broker_options.h"
#include "core/allocator_tuning.h"
#include "core/cli_args.h"
#include "core/config.h"
#include "core/http.h"
#include "core/logging.h"

int main(int argc, char** argv) {
  sluice::TuneAllocatorForLargeBuffers();
  using namespace sluice;
  const std::string usage_line =
      "sluice-broker --config config/broker-eu-central.yaml [--set key.path=value]...";
  std::string error;
  std::optional<CliArgs> args = ParseCliArgs(argc, argv, {}, &error);
  if (!args) {
    std::cerr << "sluice-broker: " << error << "\n" << CliUsage(usage_line, {});
    return 2;
  }
  if (args->help) {
    std::cout << CliUsage(usage_line, {});
    return 0;
  }

  if (args->config_path.empty()) {
    std::cerr << "sluice-broker: --config FILE is required\n" << CliUsage(usage_line, {});
    return 2;
  }

  broker::BrokerOptions options;
  try {
    Config config = Config::Load(args->config_path, args->overrides);
    options = broker::LoadBrokerOptions(config);
  } catch (const ConfigError& e) {
    std::cerr << "sluice-broker: " << e.what() << std::endl;
    return 2;
  }
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(options.log_level, &level);
  SetLogLevel(level);

  // Block the stop signals before any thread starts, so only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  // Crash tests only: journal what every fsync made durable (sync_journal_file_ops.h).
  std::unique_ptr<broker::SyncJournalFileOps> sync_journal;
  if (const char* journal = std::getenv("SLUICE_TEST_SYNC_JOURNAL"); journal && *journal) {
    try {
      sync_journal = std::make_unique<broker::SyncJournalFileOps>(journal);
    } catch (const std::runtime_error& e) {
      std::cerr << "sluice-broker: " << e.what() << std::endl;
      return 2;
    }
    options.file_ops = sync_journal.get();
    LogWarn("broker", std::string("SLUICE_TEST_SYNC_JOURNAL: journaling every fsync to ") +
                          journal + " (a crash-test seam; not for production)");
  }

  InitHttpThreads(options.http_threads);
  Result<std::unique_ptr<broker::Broker>> b = broker::Broker::Start(options);
  if (!b.ok()) {
    std::cerr << "sluice-broker: " << b.status().message() << std::endl;
    return 1;
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  LogInfo("broker", std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                        ", stopping");
  (*b)->Stop();
  b.value().reset();
  LogInfo("broker", "stopped");
  std::cerr.flush();
  return 0;
}
