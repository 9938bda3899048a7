// Exactly-once from gateway to broker with real processes (issue 4):
//  - lost acknowledgements: a proxy between gateway and broker drops every 3rd response after
//    the broker stored the batch; the gateway retries and the broker holds each event once;
//  - per-destination isolation: with us-east unreachable and both regions holding backlog,
//    eu-central receives everything while us-east's share stays buffered;
//  - drain at once: when us-east comes back, its backlog arrives (exactly once, in order).
#include <gtest/gtest.h>

#include <iostream>

#include "tests/common/test_env.h"
#include "tests/integration/eo_harness.h"
#include "tests/integration/lossy_proxy.h"

namespace sluice::testing {
namespace {

TEST(ExactlyOnceTest, LostAcksNoDuplicatesAndADeadRegionStallsNoOther) {
  TempDir dir;
  std::string error;
  const int eu_port = FreePort();
  const int us_port = FreePort();  // nothing listens here until the end
  auto eu = StartRegionBroker(dir, "eu-central", eu_port, dir.Sub("eu"), &error);
  ASSERT_NE(eu, nullptr) << error;
  auto proxy = LossyProxy::Start(FreePort(), eu_port, /*drop_every_n=*/3);
  ASSERT_NE(proxy, nullptr);

  GatewaySpec gs;
  gs.port = FreePort();
  gs.data_dir = dir.Sub("gw");
  gs.eu_url = "http://127.0.0.1:" + std::to_string(proxy->port());
  gs.us_url = "http://127.0.0.1:" + std::to_string(us_port);
  gs.extra_sets = {"forward.batch_max_records=40"};
  auto gw = StartDeGateway(dir, gs, "gateway.log", &error);
  ASSERT_NE(gw, nullptr) << error;

  // 30 requests of 10 DE + 2 US devices, one event each per request: 300 + 60 events.
  constexpr int kRequests = 30;
  for (int k = 1; k <= kRequests; ++k) {
    std::string body;
    for (int d = 0; d < 10; ++d) {
      body += EventLine("de-" + std::to_string(d), "DE", k);
    }
    body += EventLine("us-0", "US", k) + EventLine("us-1", "US", k);
    ASSERT_EQ(PostEvents(gs.port, body), 202) << "request " << k;
  }

  // eu-central gets all of its 300 events although us-east is down and holds a backlog.
  std::vector<StoredRecord> eu_records;
  bool done = WaitFor(
      [&] {
        return FetchAll(eu_port, &eu_records, &error) && eu_records.size() >= 300 &&
               GatewayBuffered(gs.port, "eu-central") == 0;
      },
      60000, 100);
  ASSERT_TRUE(done) << "eu-central holds " << eu_records.size() << " of 300; " << error << "\n"
                    << gw->ReadLog();
  EXPECT_EQ(GatewayBuffered(gs.port, "us-east"), 60);
  EXPECT_EQ(eu_records.size(), 300u);
  EXPECT_EQ(CheckNoDuplicatesInOrder(eu_records), 300u);
  EXPECT_GE(proxy->dropped(), 3) << "the proxy must have lost some acknowledgements";
  std::string metrics;
  ASSERT_EQ(HttpGet(eu_port, "/metrics", &metrics), 200);
  EXPECT_GT(MetricSum(metrics, "sluice_broker_duplicates_total"), 0)
      << "retries after lost acks must have reached the broker";
  std::cout << "lost acks: proxy dropped " << proxy->dropped() << " of " << proxy->responses()
            << " responses; broker skipped "
            << MetricSum(metrics, "sluice_broker_duplicates_total") << " duplicate records\n";

  // us-east comes back: its backlog is delivered exactly once, in order.
  auto us = StartRegionBroker(dir, "us-east", us_port, dir.Sub("us"), &error);
  ASSERT_NE(us, nullptr) << error;
  std::vector<StoredRecord> us_records;
  done = WaitFor(
      [&] {
        return FetchAll(us_port, &us_records, &error) && us_records.size() >= 60 &&
               GatewayBuffered(gs.port, "us-east") == 0;
      },
      60000, 100);
  ASSERT_TRUE(done) << "us-east holds " << us_records.size() << " of 60; " << error;
  EXPECT_EQ(us_records.size(), 60u);
  EXPECT_EQ(CheckNoDuplicatesInOrder(us_records), 60u);
}

}  // namespace
}  // namespace sluice::testing
