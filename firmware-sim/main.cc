// sluice-sim: simulated device fleet. See README.md.
#include <csignal>
#include <cstdio>
#include <iostream>

#include "core/cli_args.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/http.h"
#include "core/logging.h"
#include "firmware-sim/sim_config.h"
#include "firmware-sim/simulator.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  const std::vector<sluice::CliFlag> flags;
  const std::string usage_line =
      "sluice-sim [--config FILE] [--set key.path=value]...\n\n"
      "Simulates a device fleet sending events over MQTT and HTTP (config: config/sim.yaml)\n"
      "and writes a manifest of what was sent and acknowledged.";
  std::string error;
  auto args = sluice::ParseCliArgs(argc, argv, flags, &error);
  if (!args) {
    std::cerr << "sluice-sim: " << error << "\n" << sluice::CliUsage(usage_line, flags);
    return 2;
  }
  if (args->help) {
    std::cout << sluice::CliUsage(usage_line, flags);
    return 0;
  }
  if (!args->positional.empty()) {
    std::cerr << "sluice-sim: unexpected argument '" << args->positional[0] << "'\n";
    return 2;
  }
  sluice::sim::SimConfig config;
  try {
    config = sluice::sim::LoadSimConfig(sluice::Config::Load(args->config_path, args->overrides));
  } catch (const sluice::ConfigError& e) {
    std::cerr << "sluice-sim: " << e.what() << "\n";
    return 2;
  }
  sluice::LogLevel level;
  if (!sluice::ParseLogLevel(config.log_level, &level)) {
    std::cerr << "sluice-sim: log_level: unknown level '" << config.log_level << "'\n";
    return 2;
  }
  sluice::SetLogLevel(level);
  sluice::InitHttpThreads(std::max(2, config.http_workers));
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  auto report = sluice::sim::RunSimulation(config, sluice::SystemClock::Instance(), &g_stop);
  if (!report.ok()) {
    std::cerr << "sluice-sim: " << report.status().message() << "\n";
    return 1;
  }
  std::cout << sluice::sim::FormatSummary(*report);
  if (!config.manifest.empty()) std::cout << "  manifest: " << config.manifest << "\n";
  return 0;
}
