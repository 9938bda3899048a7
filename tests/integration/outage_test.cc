// Store and forward across a regional outage: with the us-east broker down, the gateways still
// acknowledge events (durably buffered), keep every US-owned event until the region is back,
// then deliver it exactly once; eu-central traffic is not held up meanwhile.
#include <signal.h>

#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/integration/cluster.h"
#include "tests/integration/fleet_check.h"

namespace sluice::testing {
namespace {

TEST(OutageTest, RegionDownIsBufferedThenDeliveredExactlyOnce) {
  TempDir dir;
  std::string error;
  auto cluster = Cluster::Start(dir, &error);
  ASSERT_NE(cluster, nullptr) << error;
  ASSERT_TRUE(cluster->StopBroker("us-east"));

  const std::string manifest_path = dir.Sub("manifest.json");
  ASSERT_EQ(cluster->RunSim(manifest_path,
                            {"sim.devices=40", "sim.duration=2s", "sim.rate_per_device=5"},
                            120000),
            0)
      << "sluice-sim failed:\n"
      << ReadFileOrEmpty(dir.Sub("sim.log")) << cluster->LogTails();
  std::vector<ManifestDevice> devices;
  ManifestTotals totals;
  ASSERT_TRUE(LoadManifest(manifest_path, &devices, &totals, &error)) << error;
  // The edge accepts everything although a region is down: that is what the buffer is for.
  EXPECT_EQ(totals.http_failed, 0u);
  EXPECT_EQ(totals.mqtt_errors, 0u);

  uint64_t eu_delivered = 0, us_delivered = 0;
  for (const ManifestDevice& d : devices) {
    (RegionOfCountry(d.country) == "us-east" ? us_delivered : eu_delivered) += d.delivered();
  }
  ASSERT_GT(eu_delivered, 0u);
  ASSERT_GT(us_delivered, 0u);

  // eu-central gets its records while us-east is down; the gateways hold exactly the rest.
  const int eu = cluster->broker_port("eu-central");
  int64_t eu_stored = -1;
  double buffered = -1;
  bool split = WaitFor(
      [&] {
        eu_stored = Matched(eu, "limit=1");
        buffered = cluster->GatewayBufferedRecords();
        return eu_stored == static_cast<int64_t>(eu_delivered) &&
               buffered == static_cast<double>(us_delivered);
      },
      60000, 250);
  std::cout << "during the outage: eu-central holds " << eu_stored << " of " << eu_delivered
            << "; gateways buffer " << buffered << " of " << us_delivered
            << " us-east records" << std::endl;
  EXPECT_TRUE(split) << cluster->LogTails();

  ASSERT_TRUE(cluster->RestartBroker("us-east", &error)) << error;
  int64_t stored = -1;
  bool drained = WaitFor(
      [&] {
        stored = StoredInBrokers(*cluster);
        buffered = cluster->GatewayBufferedRecords();
        return buffered == 0 && stored >= static_cast<int64_t>(eu_delivered + us_delivered);
      },
      120000, 250);
  std::cout << "after the restart: brokers hold " << stored << " of "
            << eu_delivered + us_delivered << "; gateways buffer " << buffered << std::endl;
  EXPECT_TRUE(drained) << cluster->LogTails();
  EXPECT_EQ(cluster->DeadProcesses(), "");

  CheckFleetStored(*cluster, devices, totals, MosquittoDropped(dir, cluster->mqtt_port()));
  EXPECT_EQ(cluster->StopGracefully(), "");
}

}  // namespace
}  // namespace sluice::testing
