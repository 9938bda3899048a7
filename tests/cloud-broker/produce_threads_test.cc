// Produce to a topic of many partitions creates no thread per request (the partitions are
// appended on AppendPool's fixed threads and the request's own), and keeps answering when the
// system refuses new threads (the old per-partition std::thread aborted the broker then).
#include <gtest/gtest.h>

#include "cloud-broker/server/broker.h"
#include "core/http.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/cloud-broker/thread_probe.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

constexpr const char* kBatchType = "application/vnd.kafka.record-batch.v2";
constexpr int kPartitions = 32;

class ProduceThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE")};
    o.http_port = sluice::testing::FreePort();
    o.append_threads = 4;
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    client_ = std::make_unique<HttpClient>("http://127.0.0.1:" +
                                           std::to_string(broker_->port()));
    auto created = client_->Send("POST", "/v1/topics",
                                 R"({"name":"wide","partitions":)" +
                                     std::to_string(kPartitions) + "}");
    ASSERT_TRUE(created.ok());
    ASSERT_EQ(created->status, 201) << created->body;
  }

  // One batch of 200 devices: records for (nearly) every partition.
  HttpResponse Produce(int round) {
    std::vector<Record> recs;
    for (int d = 0; d < 200; ++d) {
      recs.push_back(testing::MakeRecord("dev-" + std::to_string(d), "DE",
                                         1'700'000'000'000 + round, "{\"v\":1}"));
    }
    auto r = client_->Send("POST", "/v1/topics/wide/records", testing::EncodeRecords(recs),
                           kBatchType);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }

  int64_t Stored() {
    int64_t n = 0;
    const Topic* t = broker_->store().Find(TopicName("wide"));
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      n += t->partition(p)->end_offset();
    }
    return n;
  }

  sluice::testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ProduceThreadsTest, ProduceToManyPartitionsCreatesNoThread) {
  ASSERT_EQ(Produce(0).status, 200);  // warm-up: the HTTP client and server pools exist now
  const int64_t before = testing::ThreadsCreated();
  for (int round = 1; round <= 20; ++round) {
    ASSERT_EQ(Produce(round).status, 200);
  }
  // The old code started one thread per extra partition per request: 20 x 31 here.
  EXPECT_EQ(testing::ThreadsCreated() - before, 0);
  EXPECT_EQ(Stored(), 21 * 200);
}

TEST_F(ProduceThreadsTest, ProduceAnswersWhileTheSystemRefusesThreads) {
  ASSERT_EQ(Produce(0).status, 200);
  // Let two threads through, then refuse every one (EAGAIN), as at a thread limit: the old
  // code's third std::thread threw with two joinable siblings, and std::terminate followed.
  testing::FailThreadCreationAfter(2);
  for (int round = 1; round <= 5; ++round) {
    EXPECT_EQ(Produce(round).status, 200);
  }
  testing::FailThreadCreationAfter(-1);
  EXPECT_EQ(Stored(), 6 * 200);
}

}  // namespace
}  // namespace sluice::broker
