// ProduceService without any transport: typed results and errors, exactly-once on a retry, and
// nothing stored when a check fails.
#include "cloud-broker/produce/produce_service.h"

#include <gtest/gtest.h>

#include "cloud-broker/producers/producer_table.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::EncodeRecords;
using testing::MakeRecord;

class ProduceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(true); }

  void Open(bool auto_create) {
    service_.reset();
    store_.reset();
    TopicStoreOptions o;
    o.data_dir = dir_.path();
    o.default_partitions = 4;
    o.auto_create = auto_create;
    store_ = std::move(TopicStore::Open(o).value());
    ProduceServiceOptions so;
    so.producers = &producers_;
    so.on_appended = [this](const std::string&, size_t n, size_t) { appended_ += n; };
    service_ = std::make_unique<ProduceService>(so, *store_, policy_);
  }

  // Records of devices d0..d(n-1), gateway_seq first..first+n-1, all in `country`.
  static std::vector<Record> Records(int n, int first_seq, const std::string& country = "DE") {
    std::vector<Record> recs;
    for (int i = 0; i < n; ++i) {
      Record r = MakeRecord("d" + std::to_string(i), country, 1'700'000'000'000 + i, "{}");
      for (auto& [k, v] : r.headers) {
        if (k == kHeaderGatewaySeq) {
          v = std::to_string(first_seq + i);
        }
      }
      recs.push_back(std::move(r));
    }
    return recs;
  }

  int64_t StoredRecords() {
    int64_t n = 0;
    for (Topic* t : store_->Topics()) {
      for (int32_t p = 0; p < t->partition_count(); ++p) {
        n += t->partition(p)->end_offset() - t->partition(p)->start_offset();
      }
    }
    return n;
  }

  sluice::testing::TempDir dir_;
  ResidencyPolicy policy_{RegionId("eu-central"), {CountryCode("DE"), CountryCode("FR")}};
  ProducerTable producers_{1000};
  std::unique_ptr<TopicStore> store_;
  std::unique_ptr<ProduceService> service_;
  size_t appended_ = 0;
};

TEST_F(ProduceServiceTest, StoresAndAnswersOffsetsPerPartitionThenSkipsARetry) {
  ProduceRequest req{"sensors", EncodeRecords(Records(20, 100), 7)};
  ProduceOutcome first = service_->Produce(req);
  ASSERT_TRUE(first.ok()) << first.error->message;
  EXPECT_EQ(first.result.records, 20u);
  EXPECT_EQ(first.result.duplicates, 0u);
  int64_t total = 0;
  int32_t last_partition = -1;
  for (const PartitionAppend& p : first.result.partitions) {
    EXPECT_GT(p.partition, last_partition);  // ascending
    last_partition = p.partition;
    EXPECT_EQ(p.base_offset, 0);
    total += p.last_offset - p.base_offset + 1;
  }
  EXPECT_EQ(total, 20);
  EXPECT_EQ(appended_, 20u);

  ProduceOutcome retry = service_->Produce(req);  // the answer was lost; the producer resends
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry.result.duplicates, 20u);
  ASSERT_EQ(retry.result.partitions.size(), first.result.partitions.size());
  for (size_t i = 0; i < retry.result.partitions.size(); ++i) {
    EXPECT_EQ(retry.result.partitions[i].base_offset, first.result.partitions[i].base_offset);
    EXPECT_EQ(retry.result.partitions[i].last_offset, first.result.partitions[i].last_offset);
  }
  EXPECT_EQ(StoredRecords(), 20);
}

TEST_F(ProduceServiceTest, RefusalsAreTypedAndStoreNothing) {
  std::vector<Record> recs = Records(5, 0);
  recs[3] = MakeRecord("d3", "US", 1'700'000'000'000, "{}");
  ProduceOutcome residency = service_->Produce({"sensors", EncodeRecords(recs)});
  ASSERT_FALSE(residency.ok());
  EXPECT_EQ(residency.error->code, ProduceErrc::kResidency);
  EXPECT_EQ(residency.error->index, 3);
  EXPECT_EQ(residency.error->field, "headers.country");
  EXPECT_EQ(residency.error->country, "US");
  EXPECT_EQ(residency.error->records, 5u);
  EXPECT_FALSE(IsRetryable(residency.error->code));

  recs = Records(3, 0);
  recs[1].key = "";
  ProduceOutcome keyless = service_->Produce({"sensors", EncodeRecords(recs)});
  ASSERT_FALSE(keyless.ok());
  EXPECT_EQ(keyless.error->code, ProduceErrc::kInvalidRecord);
  EXPECT_EQ(keyless.error->index, 1);
  EXPECT_EQ(keyless.error->field, "key");
  EXPECT_STREQ(ProduceErrorName(keyless.error->code), "invalid_record");

  ProduceOutcome garbage = service_->Produce({"sensors", "not a batch"});
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error->code, ProduceErrc::kCorruptBatch);

  ProduceOutcome bad_name = service_->Produce({"a/b", EncodeRecords(Records(1, 0))});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error->code, ProduceErrc::kInvalidTopic);

  ProduceRequest follows{"sensors", EncodeRecords(Records(1, 0)), /*after_seq=*/5};
  ProduceOutcome no_producer = service_->Produce(follows);
  ASSERT_FALSE(no_producer.ok());
  EXPECT_EQ(no_producer.error->code, ProduceErrc::kInvalidHeader);
  EXPECT_EQ(no_producer.error->field, "after_seq");

  EXPECT_EQ(StoredRecords(), 0);
  EXPECT_EQ(appended_, 0u);
  EXPECT_TRUE(store_->Topics().empty()) << "a refused batch created its topic";
}

TEST_F(ProduceServiceTest, UnknownTopicWithoutAutoCreate) {
  Open(false);
  ProduceOutcome out = service_->Produce({"nowhere", EncodeRecords(Records(2, 0))});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error->code, ProduceErrc::kUnknownTopic);
  EXPECT_EQ(out.error->field, "topic");
  EXPECT_EQ(out.error->records, 2u);
}

TEST_F(ProduceServiceTest, ABatchFollowingOneNotStoredIsOutOfOrderAndRetryable) {
  ProduceServiceOptions so;
  so.producers = &producers_;
  so.after_seq_wait_ms = 50;
  ProduceService service(so, *store_, policy_);
  ProduceRequest req{"sensors", EncodeRecords(Records(2, 10), 9), /*after_seq=*/5};
  ProduceOutcome out = service.Produce(req);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error->code, ProduceErrc::kOutOfOrderSequence);
  EXPECT_TRUE(IsRetryable(out.error->code));
  EXPECT_EQ(StoredRecords(), 0);
}

}  // namespace
}  // namespace sluice::broker
