// LeaderUplink against fake brokers: each partition's records go to its leader, a batch is
// stored only when every part is, stale leaders are read again, a single broker gets the batch
// whole with its pipelining header.
#include "gateway/forward/leader_uplink.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "core/partitioner.h"
#include "core/record_batch.h"
#include "tests/common/fake_http_server.h"

namespace sluice::gateway {
namespace {

using sluice::testing::FakeHttpServer;

std::string Batch(int n) {
  RecordBatch b;
  b.producer_id = 42;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.timestamp_ms = 1'700'000'000'000 + i;
    r.key = "dev-" + std::to_string(i);
    r.value = "{}";
    r.headers = {{kHeaderCountry, "DE"}, {kHeaderGatewaySeq, std::to_string(i)}};
    b.records.push_back(std::move(r));
  }
  return EncodeBatch(b);
}

// A fake broker: GET /v1/metadata answers `*metadata`; produce answers `status` and records
// the keys it got.
struct FakeBroker {
  explicit FakeBroker(const std::string* metadata, std::atomic<int>* status)
      : server([this, metadata, status](const HttpRequest& req) {
          if (req.path == "/v1/metadata") {
            std::lock_guard<std::mutex> lock(mu);
            return HttpResponse::Json(200, *metadata);
          }
          Result<RecordBatch> b = DecodeBatch(req.body);
          std::lock_guard<std::mutex> lock(mu);
          if (b.ok()) {
            EXPECT_EQ(b->producer_id, 42);
            for (const Record& r : b->records) {
              keys.push_back(*r.key);
            }
          }
          after_seq.push_back(req.Header("sluice-after-seq"));
          return HttpResponse::Json(status->load(), "{}");
        }) {}
  std::mutex mu;
  std::vector<std::string> keys;
  std::vector<std::string> after_seq;
  FakeHttpServer server;
};

std::string Metadata(bool replicated, const std::string& p0, const std::string& p1) {
  return std::string("{\"replicated\":") + (replicated ? "true" : "false") +
         ",\"brokers\":[],\"topics\":[{\"name\":\"sensors\",\"partitions\":["
         "{\"partition\":0,\"leader_url\":\"" + p0 + "\"},"
         "{\"partition\":1,\"leader_url\":\"" + p1 + "\"}]}]}";
}

class LeaderUplinkTest : public ::testing::Test {
 protected:
  std::string metadata_;
  std::atomic<int> ok_{200};
  FakeBroker a_{&metadata_, &ok_};
  FakeBroker b_{&metadata_, &ok_};
};

TEST_F(LeaderUplinkTest, EachPartitionsRecordsGoToItsLeader) {
  metadata_ = Metadata(true, a_.server.url(), b_.server.url());
  LeaderUplink up({a_.server.url()}, 5000);
  Result<UplinkResponse> r = up.SendBatch("sensors", Batch(40));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(a_.keys.size() + b_.keys.size(), 40u);
  for (const std::string& k : a_.keys) {
    EXPECT_EQ(PartitionForKey(k, 2), 0) << k;
  }
  for (const std::string& k : b_.keys) {
    EXPECT_EQ(PartitionForKey(k, 2), 1) << k;
  }
  EXPECT_FALSE(a_.keys.empty());
  EXPECT_FALSE(b_.keys.empty());
}

TEST_F(LeaderUplinkTest, APartitionWithoutALeaderIsRetriedWithFreshMetadata) {
  // Read while partition 1's leader was dead: no leader. The batch is not stored whole (503);
  // the next attempt must read the metadata again, not keep the stale answer forever.
  metadata_ = Metadata(true, a_.server.url(), "");
  LeaderUplink up({a_.server.url()}, 5000);
  Result<UplinkResponse> first = up.SendBatch("sensors", Batch(40));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status, 503) << first->body;
  {
    std::lock_guard<std::mutex> lock(a_.mu);
    metadata_ = Metadata(true, a_.server.url(), b_.server.url());
  }
  Result<UplinkResponse> second = up.SendBatch("sensors", Batch(40));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, 200) << second->body;
  EXPECT_FALSE(b_.keys.empty());
  EXPECT_GE(up.refreshes(), 2u);
}

TEST_F(LeaderUplinkTest, ANotLeaderAnswerFailsTheBatchAndAPermanentRefusalIsPassedOn) {
  metadata_ = Metadata(true, a_.server.url(), b_.server.url());
  LeaderUplink up({a_.server.url()}, 5000);
  ok_ = 421;
  Result<UplinkResponse> moved = up.SendBatch("sensors", Batch(10));
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->status, 503);  // retryable: resent whole later
  ok_ = 451;
  Result<UplinkResponse> refused = up.SendBatch("sensors", Batch(10));
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 451);  // permanent: dead-lettered by the forwarder
}

TEST_F(LeaderUplinkTest, ASingleBrokerRegionGetsTheBatchWholeWithItsPipeliningHeader) {
  metadata_ = Metadata(false, a_.server.url(), a_.server.url());
  LeaderUplink up({a_.server.url()}, 5000);
  Result<UplinkResponse> r{Status::Unavailable("not called")};
  up.SendBatchAsync("sensors", Batch(10), 7, [&](Result<UplinkResponse> x) { r = std::move(x); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  std::lock_guard<std::mutex> lock(a_.mu);
  EXPECT_EQ(a_.keys.size(), 10u);
  ASSERT_EQ(a_.after_seq.size(), 1u);
  EXPECT_EQ(a_.after_seq[0], "7");
}

}  // namespace
}  // namespace sluice::gateway
