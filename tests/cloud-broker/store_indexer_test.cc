// StoreIndexer: after each pass every partition's index answers exactly what a scan of the log
// answers (device and time ranges, paged), as records arrive, across a restart of the indexer,
// after retention deleted segments, and after the log was cut (TruncateTo) and written again.
#include "cloud-broker/index/store_indexer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::EncodeRecords;
using testing::MakeRecord;

class StoreIndexerTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(); }

  void OpenStore() {
    TopicStoreOptions o;
    o.data_dir = dir_.Sub("logs");
    o.log.segment_bytes = 16 * 1024;  // many segments, so retention has some to delete
    auto s = TopicStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  std::unique_ptr<StoreIndexer> NewIndexer() {
    return std::make_unique<StoreIndexer>(StoreIndexerOptions{dir_.Sub("index")}, *store_);
  }

  // `n` records of random devices and timestamps (some going backwards), in batches.
  void Append(PartitionLog& log, int n) {
    std::uniform_int_distribution<int> device(1, 12);
    std::uniform_int_distribution<int64_t> ts(1'700'000'000'000, 1'700'000'000'500);
    for (int b = 0; b < n / 10; ++b) {
      std::vector<Record> recs;
      for (int i = 0; i < 10; ++i) {
        recs.push_back(MakeRecord("dev-" + std::to_string(device(rng_)),
                                  recs.size() % 3 == 0 ? "FR" : "DE", ts(rng_), "{}"));
      }
      ASSERT_TRUE(log.Append(EncodeRecords(recs)).ok());
    }
  }

  // What a scan of the log answers for device (or all) in [from, to), by (ts, offset).
  std::vector<IndexHit> Scan(const PartitionLog& log, const std::string& device, int64_t from,
                             int64_t to) {
    std::vector<IndexHit> out;
    for (int64_t offset = log.start_offset(); offset < log.end_offset();) {
      auto read = log.Read(offset, 1000, 1 << 20);
      EXPECT_TRUE(read.ok()) << read.status().ToString();
      if (!read.ok()) break;
      for (const LogRecord& r : read->records) {
        if (r.record.timestamp_ms >= from && r.record.timestamp_ms < to &&
            (device.empty() || *r.record.key == device)) {
          const std::string* country = r.record.FindHeader(kHeaderCountry);
          out.push_back({r.record.timestamp_ms, r.offset, country ? *country : ""});
        }
      }
      offset = read->next_offset;
    }
    std::sort(out.begin(), out.end(), [](const IndexHit& a, const IndexHit& b) {
      return a.ts_ms != b.ts_ms ? a.ts_ms < b.ts_ms : a.offset < b.offset;
    });
    return out;
  }

  std::vector<IndexHit> Query(const PartitionIndex& index, const std::string& device,
                              int64_t from, int64_t to) {
    std::vector<IndexHit> all;
    std::optional<IndexCursor> after;
    while (true) {
      auto page = device.empty() ? index.Time(from, to, after, 7)
                                 : index.Device(device, from, to, after, 7);
      EXPECT_TRUE(page.ok());
      if (!page.ok() || page->empty()) break;
      all.insert(all.end(), page->begin(), page->end());
      after = IndexCursor{page->back().ts_ms, page->back().offset};
    }
    return all;
  }

  void ExpectIndexMatchesLog(StoreIndexer& indexer, const std::string& when) {
    ASSERT_TRUE(indexer.CatchUp().ok()) << when;
    EXPECT_EQ(indexer.lag(), 0) << when;
    Topic* t = store_->Find(TopicName("sensors"));
    ASSERT_NE(t, nullptr);
    std::uniform_int_distribution<int> device(0, 13);
    std::uniform_int_distribution<int64_t> ts(1'700'000'000'000 - 10, 1'700'000'000'510);
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      const PartitionIndex* index = indexer.Find("sensors", p);
      ASSERT_NE(index, nullptr) << when;
      EXPECT_EQ(index->covered(), t->partition(p)->end_offset()) << when;
      for (int q = 0; q < 20; ++q) {
        int64_t from = ts(rng_), to = ts(rng_);
        if (from > to) std::swap(from, to);
        const int d = device(rng_);
        const std::string dev = d == 0 ? "" : "dev-" + std::to_string(d);
        EXPECT_EQ(Query(*index, dev, from, to), Scan(*t->partition(p), dev, from, to))
            << when << ": partition " << p << " device '" << dev << "' [" << from << ", " << to
            << ")";
      }
    }
  }

  sluice::testing::TempDir dir_;
  std::unique_ptr<TopicStore> store_;
  std::mt19937_64 rng_{7};
};

TEST_F(StoreIndexerTest, IndexesFollowTheLogThroughRestartRetentionAndTruncation) {
  auto created = store_->Create(TopicName("sensors"), 2);
  ASSERT_TRUE(created.ok());
  PartitionLog& p0 = *(*created)->partition(0);
  PartitionLog& p1 = *(*created)->partition(1);
  auto indexer = NewIndexer();
  Append(p0, 500);
  Append(p1, 300);
  ASSERT_NO_FATAL_FAILURE(ExpectIndexMatchesLog(*indexer, "first pass"));
  Append(p0, 200);
  ASSERT_NO_FATAL_FAILURE(ExpectIndexMatchesLog(*indexer, "records arrived"));

  // A restarted indexer resumes from what each index covers.
  indexer.reset();
  Append(p1, 100);
  indexer = NewIndexer();
  ASSERT_NO_FATAL_FAILURE(ExpectIndexMatchesLog(*indexer, "after a restart"));

  // The log was cut (a follower's truncation) and other records written at those offsets.
  ASSERT_TRUE(p0.TruncateTo(350).ok());
  Append(p0, 100);
  ASSERT_NO_FATAL_FAILURE(ExpectIndexMatchesLog(*indexer, "after a truncation"));
}

TEST_F(StoreIndexerTest, RetentionDropsTheEntriesOfDeletedSegments) {
  TopicConfig config;
  config.partitions = 1;
  config.retention_bytes = 40 * 1024;  // a few 16 KiB segments
  auto created = store_->Create(TopicName("sensors"), config);
  ASSERT_TRUE(created.ok());
  PartitionLog& log = *(*created)->partition(0);
  auto indexer = NewIndexer();
  Append(log, 800);
  ASSERT_NO_FATAL_FAILURE(ExpectIndexMatchesLog(*indexer, "before retention"));
  ASSERT_GT(log.ApplyRetention(), 0u);
  ASSERT_GT(log.start_offset(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectIndexMatchesLog(*indexer, "after retention"));
  const PartitionIndex* index = indexer->Find("sensors", 0);
  auto all = index->Time(INT64_MIN, INT64_MAX, std::nullopt, 100000);
  ASSERT_TRUE(all.ok());
  for (const IndexHit& h : *all) {
    EXPECT_GE(h.offset, log.start_offset()) << "an entry of a deleted segment";
  }
}

}  // namespace
}  // namespace sluice::broker
