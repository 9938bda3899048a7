// End to end: a simulated fleet sends over MQTT and HTTP to two edge gateways, which forward to
// the regional brokers; the test checks every acknowledged event against the simulator's
// manifest: stored exactly once, in the region that owns the device's country, nowhere else.
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/integration/cluster.h"
#include "tests/integration/fleet_check.h"

namespace sluice::testing {
namespace {

TEST(EndToEndTest, EveryAcknowledgedEventIsStoredOnceInItsRegion) {
  TempDir dir;
  std::string error;
  auto cluster = Cluster::Start(dir, &error);
  ASSERT_NE(cluster, nullptr) << error;

  // A small fleet: 60 devices over two sites, half MQTT and half HTTP, 5 events/s for 2 s.
  const std::string manifest_path = dir.Sub("manifest.json");
  const int sim_rc = cluster->RunSim(
      manifest_path, {"sim.devices=60", "sim.duration=2s", "sim.rate_per_device=5"}, 120000);
  ASSERT_EQ(sim_rc, 0) << "sluice-sim failed:\n"
                       << ReadFileOrEmpty(dir.Sub("sim.log")) << cluster->LogTails();

  std::vector<ManifestDevice> devices;
  ManifestTotals totals;
  ASSERT_TRUE(LoadManifest(manifest_path, &devices, &totals, &error)) << error;
  ASSERT_EQ(devices.size(), 60u);
  std::cout << "manifest: sent=" << totals.sent << " mqtt_sent=" << totals.mqtt_sent
            << " http_acked=" << totals.http_acked << " http_failed=" << totals.http_failed
            << " mqtt_errors=" << totals.mqtt_errors << std::endl;
  // With every service up, nothing may be refused or fail at the edge.
  EXPECT_EQ(totals.http_failed, 0u);
  EXPECT_EQ(totals.mqtt_errors, 0u);
  EXPECT_GT(totals.http_acked, 0u);
  EXPECT_GT(totals.mqtt_sent, 0u);

  // Wait until the brokers hold at least what the fleet delivered and the gateways have
  // forwarded everything they buffered.
  const int64_t expected = static_cast<int64_t>(totals.mqtt_sent + totals.http_acked);
  int64_t stored = 0;
  bool arrived = WaitFor(
      [&] {
        stored = StoredInBrokers(*cluster);
        return stored >= expected;
      },
      90000, 250);
  double buffered = -1;
  bool drained = WaitFor(
      [&] {
        buffered = cluster->GatewayBufferedRecords();
        return buffered == 0;
      },
      30000, 250);
  std::cout << "stored in brokers: " << stored << " of " << expected
            << " delivered; gateway buffered_records=" << buffered << std::endl;
  EXPECT_TRUE(drained) << "gateway buffers did not drain (sluice_gateway_buffered_records="
                       << buffered << ")";
  EXPECT_EQ(cluster->DeadProcesses(), "");
  const int64_t dropped = MosquittoDropped(dir, cluster->mqtt_port());
  std::cout << "mosquitto $SYS/broker/publish/messages/dropped = " << dropped << std::endl;
  EXPECT_GE(dropped, 0) << "could not read Mosquitto's dropped counter";
  if (!arrived) {
    ADD_FAILURE() << "only " << stored << " of " << expected << " records arrived\n"
                  << cluster->LogTails();
  }

  CheckFleetStored(*cluster, devices, totals, dropped);
  EXPECT_EQ(cluster->StopGracefully(), "");
}

}  // namespace
}  // namespace sluice::testing
