// The gateway killed with SIGKILL at random (seeded) moments under mixed MQTT + HTTP load from
// sluice-sim, restarted each time (issue 4). At the end: every HTTP-acknowledged event is stored
// exactly once, nothing at all is stored twice, and each device's events are in sequence order
// within their partition. Real Mosquitto, broker, gateway and simulator processes.
#include <signal.h>

#include <chrono>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/integration/eo_harness.h"
#include "tests/integration/fleet_check.h"

namespace sluice::testing {
namespace {

constexpr int kRounds = 5;
constexpr uint32_t kSeed = 20261122;

TEST(GatewayCrashTest, SigkillRoundsLoseNoAckedEventAndDuplicateNothing) {
  TempDir dir;
  std::string error;
  // scripts/setup installs Mosquitto; a machine without it skips (ctest shows the binary as
  // skipped, cmake/SluiceModule.cmake), but one that has it and cannot start it fails.
  if (MosquittoBinary().empty()) {
    GTEST_SKIP() << "mosquitto is not installed (scripts/setup installs it)";
  }
  auto mosquitto = Mosquitto::Start(dir);
  ASSERT_NE(mosquitto, nullptr) << "mosquitto is installed but did not start (its log is above)";
  const int eu_port = FreePort();
  auto eu = StartRegionBroker(dir, "eu-central", eu_port, dir.Sub("eu"), &error);
  ASSERT_NE(eu, nullptr) << error;

  GatewaySpec gs;
  gs.port = FreePort();
  gs.data_dir = dir.Sub("gw");
  gs.eu_url = "http://127.0.0.1:" + std::to_string(eu_port);
  gs.us_url = "http://127.0.0.1:" + std::to_string(FreePort());
  gs.mqtt_uri = mosquitto->uri();
  gs.extra_sets = {"forward.batch_max_records=200", "forward.linger=5ms"};

  // One site, DE/FR devices, half MQTT half HTTP. One HTTP worker and no HTTP retries: each
  // device's requests go one after another (so payload seq order is the gateway's arrival
  // order), and an event is never sent twice by the simulator itself.
  const std::string sim_yaml = dir.Sub("sim.yaml");
  ASSERT_TRUE(WriteFile(sim_yaml, "sim:\n  seed: 7\n  devices: 16\n  duration: 9s\n"
                                  "  rate_per_device: 25\n  sensors: [temperature]\n"
                                  "  payload_bytes: 120\n  http_workers: 1\n"
                                  "  http_max_attempts: 1\n  http_timeout: 3s\n"
                                  "sites:\n  - name: de\n    countries: [DE, FR]\n"
                                  "    transport: mixed\n"
                                  "    mqtt_uri: " + mosquitto->uri() + "\n"
                                  "    mqtt_topic_prefix: site-de/sensors\n"
                                  "    http_url: http://127.0.0.1:" + std::to_string(gs.port) +
                                  "\n"));
  const std::string manifest = dir.Sub("manifest.json");

  std::unique_ptr<ChildProcess> gw = StartDeGateway(dir, gs, "gateway-0.log", &error);
  ASSERT_NE(gw, nullptr) << error;
  auto sim = ChildProcess::Start({BinPath("sluice-sim"), "--config", sim_yaml, "--set",
                                  "sim.manifest=" + manifest},
                                 dir.Sub("sim.log"));
  ASSERT_NE(sim, nullptr);

  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> run_ms(300, 1300);
  for (int round = 1; round <= kRounds; ++round) {
    // The load runs for a random while (the stimulus, not a wait), then the gateway dies.
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(rng)));
    gw->Stop(SIGKILL, 10000);
    gw = StartDeGateway(dir, gs, "gateway-" + std::to_string(round) + ".log", &error);
    ASSERT_NE(gw, nullptr) << "round " << round << ": " << error;
  }
  ASSERT_EQ(sim->WaitExit(60000), 0) << ReadFileOrEmpty(dir.Sub("sim.log"));

  std::vector<ManifestDevice> devices;
  ManifestTotals totals;
  ASSERT_TRUE(LoadManifest(manifest, &devices, &totals, &error)) << error;
  ASSERT_GT(totals.http_acked, 0u);
  ASSERT_GT(totals.mqtt_sent, 0u);

  // Everything the gateway holds drains; then compare with the manifest.
  ASSERT_TRUE(WaitFor([&] { return GatewayBuffered(gs.port, "eu-central") == 0; }, 60000, 100))
      << gw->ReadLog();
  std::vector<StoredRecord> stored;
  ASSERT_TRUE(FetchAll(eu_port, &stored, &error)) << error;
  const size_t distinct = CheckNoDuplicatesInOrder(stored);

  std::set<std::pair<std::string, int64_t>> have;
  uint64_t mqtt_stored = 0;
  for (const StoredRecord& r : stored) {
    have.insert({r.device, r.payload_seq});
  }
  uint64_t lost = 0, checked = 0;
  for (const ManifestDevice& d : devices) {
    if (d.transport == "http") {
      for (uint64_t s : d.acked) {
        ++checked;
        if (have.count({d.id, static_cast<int64_t>(s)}) == 0 && ++lost <= 5) {
          ADD_FAILURE() << "acknowledged event lost: " << d.id << " seq " << s;
        }
      }
    } else {
      for (uint64_t s = 1; s <= d.sent; ++s) {
        mqtt_stored += have.count({d.id, static_cast<int64_t>(s)});
      }
    }
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(checked, totals.http_acked);
  EXPECT_GT(mqtt_stored, 0u);
  std::string metrics;
  ASSERT_EQ(HttpGet(eu_port, "/metrics", &metrics), 200);
  std::cout << kRounds << " SIGKILL rounds: sim sent " << totals.sent << " (HTTP acked "
            << totals.http_acked << ", failed " << totals.http_failed << "; MQTT "
            << totals.mqtt_sent << "), broker stores " << stored.size() << " (" << distinct
            << " distinct; MQTT " << mqtt_stored << "), re-sent duplicates skipped "
            << MetricSum(metrics, "sluice_broker_duplicates_total") << "\n";
}

}  // namespace
}  // namespace sluice::testing
