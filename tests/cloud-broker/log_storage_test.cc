// The partition log's storage features: Kafka .index/.timeindex files, index rebuild on start,
// timestamp lookup, roll by age, retention by age and size, group commit, the interval flush
// policy, disk full (fault-injecting FileOps) and a corrupt batch in the middle of an old
// segment.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cloud-broker/log/file_ops.h"
#include "cloud-broker/log/partition_log.h"
#include "cloud-broker/log/segment.h"
#include "cloud-broker/log/topic_store.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::Be;
using testing::EncodeRecords;
using testing::MakeRecord;
namespace fs = std::filesystem;

constexpr int64_t kT0 = 1'700'000'000'000;

// One batch of `n` records with timestamps kT0 + first*10, kT0 + (first+1)*10, ...
std::string Batch(int64_t first, int n) {
  std::vector<Record> recs;
  for (int i = 0; i < n; ++i) {
    int64_t k = first + i;
    recs.push_back(MakeRecord("dev-" + std::to_string(k % 5), "DE", kT0 + k * 10,
                              "{\"k\":" + std::to_string(k) + ",\"pad\":\"" +
                                  std::string(100, 'p') + "\"}"));
  }
  return EncodeRecords(recs);
}

void Fill(PartitionLog& log, int batches, int per_batch) {
  for (int b = 0; b < batches; ++b) {
    int64_t first = log.next_offset();
    Result<int64_t> base = log.Append(Batch(first, per_batch));
    ASSERT_TRUE(base.ok()) << base.status().ToString();
    ASSERT_EQ(*base, first);
  }
}

std::vector<std::string> Files(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

LogOptions Small() {
  LogOptions o;
  o.segment_bytes = 4096;
  o.index_interval_bytes = 600;
  return o;
}

// Checks every offset-index and time-index entry against the .log itself, reading the files
// with Kafka's rules only (big-endian, relative offsets, positions of batch starts).
void CheckIndexFiles(const std::string& dir) {
  for (const std::string& log_path : Files(dir, ".log")) {
    const std::string stem = log_path.substr(0, log_path.size() - 4);
    const int64_t base = std::stoll(fs::path(stem).filename().string());
    const std::string log = Slurp(log_path);
    const std::string index = Slurp(stem + ".index");
    const std::string time = Slurp(stem + ".timeindex");
    ASSERT_EQ(index.size() % 8, 0u) << stem;
    ASSERT_EQ(time.size() % 12, 0u) << stem;
    if (log.empty()) {
      continue;
    }
    ASSERT_GE(index.size(), 8u);
    EXPECT_EQ(Be(index, 4, 4), 0u) << "first entry points at position 0";
    for (size_t i = 0; i < index.size(); i += 8) {
      uint64_t rel = Be(index, i, 4);
      uint64_t pos = Be(index, i + 4, 4);
      ASSERT_LT(pos + 12, log.size());
      EXPECT_EQ(static_cast<int64_t>(Be(log, pos, 8)), base + static_cast<int64_t>(rel))
          << "index entry " << i / 8 << " of " << stem << " names the batch at its position";
    }
    int64_t last_ts = -1;
    for (size_t i = 0; i < time.size(); i += 12) {
      int64_t ts = static_cast<int64_t>(Be(time, i, 8));
      EXPECT_GT(ts, last_ts);
      last_ts = ts;
    }
  }
}

TEST(LogStorageTest, WritesKafkaIndexFilesAndRollsBySize) {
  sluice::testing::TempDir dir;
  auto log = PartitionLog::Open(dir.Sub("t-0"), Small());
  ASSERT_TRUE(log.ok());
  Fill(**log, 60, 5);
  ASSERT_TRUE((*log)->Flush().ok());  // the active segment's indexes are written at Flush/roll
  EXPECT_GT((*log)->segment_count(), 3u);
  EXPECT_EQ(Files(dir.Sub("t-0"), ".index").size(), (*log)->segment_count());
  EXPECT_EQ(Files(dir.Sub("t-0"), ".timeindex").size(), (*log)->segment_count());
  CheckIndexFiles(dir.Sub("t-0"));
  // Sparse: fewer entries than batches, more than one per segment somewhere.
  std::string index = Slurp(Files(dir.Sub("t-0"), ".index").front());
  EXPECT_GT(index.size() / 8, 1u);
  EXPECT_LT(index.size() / 8, 20u);
  // An old segment's last time-index entry is its largest timestamp (Kafka, for retention).
  std::string first_log = Slurp(Files(dir.Sub("t-0"), ".log").front());
  std::string first_time = Slurp(Files(dir.Sub("t-0"), ".timeindex").front());
  int64_t max_ts = 0;
  for (size_t pos = 0; pos < first_log.size(); pos += 12 + Be(first_log, pos + 8, 4)) {
    max_ts = std::max<int64_t>(max_ts, static_cast<int64_t>(Be(first_log, pos + 35, 8)));
  }
  EXPECT_EQ(static_cast<int64_t>(Be(first_time, first_time.size() - 12, 8)), max_ts);
}

TEST(LogStorageTest, RollsByAge) {
  sluice::testing::TempDir dir;
  ManualClock clock;
  LogOptions o;
  o.segment_ms = 1000;
  o.clock = &clock;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  Fill(**log, 3, 2);
  EXPECT_EQ((*log)->segment_count(), 1u);
  clock.AdvanceMs(1001);
  Fill(**log, 1, 2);
  EXPECT_EQ((*log)->segment_count(), 2u);
}

TEST(LogStorageTest, MissingOrDamagedIndexesAreRebuiltOnStart) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  std::map<std::string, std::string> good;
  {
    auto log = PartitionLog::Open(d, Small());
    ASSERT_TRUE(log.ok());
    Fill(**log, 40, 5);
    ASSERT_TRUE((*log)->Flush().ok());
  }
  for (const auto& e : fs::directory_iterator(d)) {
    good[e.path().string()] = Slurp(e.path().string());
  }
  std::vector<std::string> idx = Files(d, ".index");
  std::vector<std::string> tidx = Files(d, ".timeindex");
  ASSERT_GE(idx.size(), 3u);
  fs::remove(idx[0]);                                   // missing
  Spit(idx[1], good[idx[1]] + "abc");                   // size not a multiple of 8
  std::string bad = good[tidx[1]];
  std::swap(bad[0], bad[12]);                           // not monotonic (old segment 1's time)
  Spit(tidx[1], bad);
  std::string beyond = good[idx.back()];
  beyond += std::string("\x00\x00\x00\x01\x7f\x00\x00\x00", 8);  // past the end of the log
  Spit(idx.back(), beyond);

  auto log = PartitionLog::Open(d, Small());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->rebuilt_indexes(), 3u);
  for (const std::string& path : {idx[0], idx[1], tidx[1], idx.back()}) {
    EXPECT_EQ(Slurp(path), good[path]) << path << " rebuilt exactly";
  }
  auto r = (*log)->Read(0, 100000, 64 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->records.size(), 200u);
  log->reset();
  auto again = PartitionLog::Open(d, Small());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->rebuilt_indexes(), 0u);
}

TEST(LogStorageTest, FindsFirstOffsetAtOrAfterATimestamp) {
  sluice::testing::TempDir dir;
  auto log = PartitionLog::Open(dir.Sub("t-0"), Small());
  ASSERT_TRUE(log.ok());
  Fill(**log, 60, 5);  // offset k has timestamp kT0 + 10k
  for (int64_t k : {0, 1, 7, 99, 150, 299}) {
    auto off = (*log)->OffsetForTimestamp(kT0 + k * 10);
    ASSERT_TRUE(off.ok());
    EXPECT_EQ(*off, k);
    off = (*log)->OffsetForTimestamp(kT0 + k * 10 - 5);  // between records: the next one
    ASSERT_TRUE(off.ok());
    EXPECT_EQ(*off, k);
  }
  EXPECT_EQ(*(*log)->OffsetForTimestamp(0), 0);
  EXPECT_EQ(*(*log)->OffsetForTimestamp(kT0 + 300 * 10), 300);  // none: the end offset
}

TEST(LogStorageTest, RetentionDeletesWholeOldSegmentsBySizeAndAge) {
  sluice::testing::TempDir dir;
  ManualClock clock(kT0);
  LogOptions o = Small();
  o.clock = &clock;
  o.retention_bytes = 8192;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  Fill(**log, 80, 5);
  const size_t before = (*log)->segment_count();
  EXPECT_GT((*log)->size_bytes(), 8192u);
  EXPECT_GT((*log)->ApplyRetention(), 0u);
  EXPECT_LT((*log)->segment_count(), before);
  EXPECT_GE((*log)->size_bytes(), 8192u - 4096u);
  const int64_t start = (*log)->start_offset();
  EXPECT_GT(start, 0);
  EXPECT_EQ(Files(dir.Sub("t-0"), ".log").size(), (*log)->segment_count());
  EXPECT_EQ(Files(dir.Sub("t-0"), ".index").size(), (*log)->segment_count());
  // Below the start: refused with the range; from the start: everything to the end.
  EXPECT_EQ((*log)->Read(0, 10, 1 << 20).status().code(), StatusCode::kInvalidArgument);
  auto r = (*log)->Read(start, 100000, 64 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(static_cast<int64_t>(r->records.size()), 400 - start);
  EXPECT_EQ(r->records.front().offset, start);

  // By age: every record is at most kT0 + 4000; a week later only the active segment is left.
  sluice::testing::TempDir dir2;
  LogOptions a = Small();
  a.clock = &clock;
  a.retention_ms = 60'000;
  auto aged = PartitionLog::Open(dir2.Sub("t-0"), a);
  ASSERT_TRUE(aged.ok());
  Fill(**aged, 40, 5);
  EXPECT_EQ((*aged)->ApplyRetention(), 0u);  // clock at kT0: nothing is older than a minute
  clock.AdvanceMs(7LL * 24 * 3600 * 1000);
  const size_t segs = (*aged)->segment_count();
  EXPECT_EQ((*aged)->ApplyRetention(), segs - 1);
  EXPECT_EQ((*aged)->segment_count(), 1u);
  EXPECT_EQ((*aged)->end_offset(), 200);
  // Reopening keeps the advanced start offset.
  aged->reset();
  auto reopened = PartitionLog::Open(dir2.Sub("t-0"), a);
  ASSERT_TRUE(reopened.ok());
  EXPECT_GT((*reopened)->start_offset(), 0);
  EXPECT_EQ((*reopened)->end_offset(), 200);
}

// A FileOps that counts fsyncs, to show concurrent appends share them.
class CountingOps final : public FileOps {
 public:
  ssize_t PWrite(int fd, const void* b, size_t n, off_t o) override {
    return FileOps::Default().PWrite(fd, b, n, o);
  }
  int DataSync(int fd) override {
    syncs.fetch_add(1);
    return FileOps::Default().DataSync(fd);
  }
  int Truncate(int fd, off_t s) override { return FileOps::Default().Truncate(fd, s); }
  std::atomic<int> syncs{0};
};

// A FileOps whose fdatasync blocks while its gate is closed (a slow disk), counting calls.
class GatedSyncOps final : public FileOps {
 public:
  ssize_t PWrite(int fd, const void* b, size_t n, off_t o) override {
    return FileOps::Default().PWrite(fd, b, n, o);
  }
  int DataSync(int fd) override {
    syncs.fetch_add(1);
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return open_; });
    return FileOps::Default().DataSync(fd);
  }
  int Truncate(int fd, off_t s) override { return FileOps::Default().Truncate(fd, s); }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  std::atomic<int> syncs{0};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
};

// flush: always acknowledges no append before an fsync covering it, and appends written while
// one fsync runs share the next one (as the gateway's GroupCommitTest): 1 + 1 fsyncs for 33
// appends, not one each.
TEST(LogStorageTest, FlushAlwaysGroupCommitsConcurrentAppends) {
  sluice::testing::TempDir dir;
  GatedSyncOps ops;
  LogOptions o;
  o.file_ops = &ops;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  const int syncs_at_open = ops.syncs.load();
  ops.Close();  // the disk stalls in the first fsync
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    EXPECT_TRUE((*log)->Append(Batch(0, 3)).ok());
    ++acked;
  });
  ASSERT_TRUE(sluice::testing::WaitFor([&] { return ops.syncs.load() == syncs_at_open + 1; },
                                       10000));
  constexpr int kFollowers = 32;
  for (int t = 0; t < kFollowers; ++t) {
    threads.emplace_back([&] {
      EXPECT_TRUE((*log)->Append(Batch(0, 3)).ok());
      ++acked;
    });
  }
  // Every batch is written (in the file, offsets assigned) and waits for an fsync.
  const uint64_t batch_bytes = Batch(0, 3).size();
  ASSERT_TRUE(sluice::testing::WaitFor(
      [&] { return (*log)->size_bytes() == (1 + kFollowers) * batch_bytes; }, 10000));
  EXPECT_EQ(acked.load(), 0) << "acknowledged before its fsync";
  EXPECT_EQ((*log)->end_offset(), 0) << "readable before its fsync";
  ops.Open();
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(acked.load(), 1 + kFollowers);
  // The stalled fsync covered the first batch only; the 32 written meanwhile share one.
  EXPECT_EQ(ops.syncs.load() - syncs_at_open, 2);
  EXPECT_EQ((*log)->end_offset(), (1 + kFollowers) * 3);
  auto r = (*log)->Read(0, 100000, 64 << 20);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), static_cast<size_t>((1 + kFollowers) * 3));
  for (size_t i = 0; i < r->records.size(); ++i) {
    ASSERT_EQ(r->records[i].offset, static_cast<int64_t>(i));
  }
}

TEST(LogStorageTest, IntervalPolicyAcksAfterWriteAndFsyncsByBytesAndTime) {
  sluice::testing::TempDir dir;
  CountingOps ops;
  ManualClock clock;
  LogOptions o;
  o.file_ops = &ops;
  o.clock = &clock;
  o.flush = FlushPolicy::kInterval;
  o.flush_ms = 1000;
  o.flush_bytes = 10000;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  const int base = ops.syncs.load();
  ASSERT_TRUE((*log)->Append(Batch(0, 5)).ok());  // ~800 bytes
  EXPECT_EQ(ops.syncs.load(), base) << "acknowledged without fsync";
  EXPECT_EQ((*log)->end_offset(), 5) << "readable at once";
  ASSERT_TRUE((*log)->MaybeFlush().ok());
  EXPECT_EQ(ops.syncs.load(), base) << "not yet flush_ms old";
  clock.AdvanceMs(1001);
  ASSERT_TRUE((*log)->MaybeFlush().ok());
  EXPECT_EQ(ops.syncs.load(), base + 1);
  ASSERT_TRUE((*log)->MaybeFlush().ok());
  EXPECT_EQ(ops.syncs.load(), base + 1) << "nothing new to flush";
  for (int i = 0; i < 14; ++i) {
    ASSERT_TRUE((*log)->Append(Batch(0, 5)).ok());
  }
  EXPECT_EQ(ops.syncs.load(), base + 2) << "flush_bytes crossed once";
}

TEST(LogStorageTest, DiskFullFailsTheAppendCleanlyAndRecovers) {
  sluice::testing::TempDir dir;
  FaultInjectingFileOps ops;
  LogOptions o = Small();
  o.file_ops = &ops;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  Fill(**log, 10, 5);
  const uint64_t size = (*log)->size_bytes();
  ops.SetWriteBudget(100);  // the next batch is cut short at 100 bytes, then ENOSPC
  Result<int64_t> r = (*log)->Append(Batch(50, 5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  EXPECT_TRUE(r.status().retryable());
  EXPECT_EQ((*log)->size_bytes(), size) << "the partial write was cut back";
  EXPECT_EQ((*log)->end_offset(), 50);
  EXPECT_FALSE((*log)->Append(Batch(50, 5)).ok());
  auto read = (*log)->Read(0, 1000, 1 << 20);  // reads go on
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->records.size(), 50u);
  ops.SetWriteBudget(-1);  // space is back
  Fill(**log, 5, 5);
  EXPECT_EQ((*log)->end_offset(), 75);
  log->reset();
  auto reopened = PartitionLog::Open(dir.Sub("t-0"), Small());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->recovery_truncated_bytes(), 0u) << "nothing torn was left behind";
  EXPECT_EQ((*reopened)->rebuilt_indexes(), 0u);
  auto all = (*reopened)->Read(0, 1000, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->records.size(), 75u);
  for (size_t i = 0; i < all->records.size(); ++i) {
    ASSERT_EQ(all->records[i].offset, static_cast<int64_t>(i));
  }
}

// Flips one byte inside the batch at `offset` (found through the .log's framing).
void CorruptBatch(const std::string& dir, int64_t offset, size_t byte_in_batch) {
  for (const std::string& path : Files(dir, ".log")) {
    std::string log = Slurp(path);
    for (size_t pos = 0; pos + 12 <= log.size(); pos += 12 + Be(log, pos + 8, 4)) {
      if (static_cast<int64_t>(Be(log, pos, 8)) == offset) {
        log[pos + byte_in_batch] ^= 0x5a;
        Spit(path, log);
        return;
      }
    }
  }
  FAIL() << "no batch at offset " << offset;
}

TEST(LogStorageTest, CorruptBatchInAnOldSegmentIsSkippedAndCounted) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  {
    auto log = PartitionLog::Open(d, Small());
    ASSERT_TRUE(log.ok());
    Fill(**log, 60, 5);
    ASSERT_GT((*log)->segment_count(), 3u);
  }
  CorruptBatch(d, 10, 200);  // a record byte: the CRC fails, the framing is sane
  CorruptBatch(d, 45, 9);    // batchLength: the framing itself is bad
  const uint64_t corrupt_before = PartitionLog::CorruptBatchesTotal();
  auto log = PartitionLog::Open(d, Small());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->recovery_truncated_bytes(), 0u) << "old segments are never cut";
  auto r = (*log)->Read(0, 100000, 64 << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::set<int64_t> offsets;
  for (const LogRecord& rec : r->records) {
    offsets.insert(rec.offset);
  }
  for (int64_t k = 10; k < 15; ++k) {
    EXPECT_EQ(offsets.count(k), 0u) << k;
  }
  EXPECT_EQ(offsets.count(9), 1u);
  EXPECT_EQ(offsets.count(15), 1u);
  EXPECT_EQ(offsets.count(45), 0u);
  EXPECT_EQ(offsets.count(299), 1u) << "the read went on past both";
  EXPECT_GT(offsets.size(), 250u);
  EXPECT_EQ(PartitionLog::CorruptBatchesTotal(), corrupt_before + 2);
  // Reading again does not count them again; a read starting right at one skips it too.
  auto r2 = (*log)->Read(10, 3, 1 << 20);
  ASSERT_TRUE(r2.ok());
  ASSERT_FALSE(r2->records.empty());
  EXPECT_EQ(r2->records.front().offset, 15);
  EXPECT_EQ(PartitionLog::CorruptBatchesTotal(), corrupt_before + 2);
  auto ts = (*log)->OffsetForTimestamp(kT0 + 12 * 10);
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(*ts, 15);
}

// A record timestamped INT64_MAX (stored before produce refused such timestamps, or written by
// a producer with a broken clock) made its segment's largest timestamp never age, and since
// retention deletes from the oldest segment on, stopped time retention of the whole partition.
// A segment's age now counts from its last append at the latest (after a restart: the file's
// modification time), as Kafka's segment.ms bounds how long a segment stays active.
TEST(LogStorageTest, OneFutureTimestampDoesNotStopTimeRetention) {
  const int64_t kWeekMs = 7LL * 24 * 3600 * 1000;
  for (bool restart : {false, true}) {
    sluice::testing::TempDir dir;
    ManualClock clock(kT0);
    LogOptions o = Small();
    o.clock = &clock;
    o.retention_ms = 60'000;
    auto log = PartitionLog::Open(dir.Sub("t-0"), o);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(EncodeRecords({MakeRecord("dev-1", "DE",
                                                         std::numeric_limits<int64_t>::max(),
                                                         "{}")}))
                    .ok());
    Fill(**log, 40, 5);
    const size_t segs = (*log)->segment_count();
    ASSERT_GT(segs, 2u);
    clock.AdvanceMs(kWeekMs);
    if (restart) {
      log->reset();
      for (const std::string& f : Files(dir.Sub("t-0"), ".log")) {
        fs::last_write_time(f, fs::file_time_type::clock::now() -
                                   std::chrono::hours(24 * 365 * 10));  // long ago
      }
      log = PartitionLog::Open(dir.Sub("t-0"), o);
      ASSERT_TRUE(log.ok());
    }
    EXPECT_EQ((*log)->ApplyRetention(), segs - 1) << (restart ? "after a restart" : "");
    EXPECT_EQ((*log)->segment_count(), 1u);
  }
}

// The store's maintenance thread applies each topic's own retention, every
// retention_check_interval_ms, and the topic's config survives a reopen.
TEST(LogStorageTest, MaintenanceThreadAppliesPerTopicRetention) {
  sluice::testing::TempDir dir;
  TopicStoreOptions so;
  so.data_dir = dir.path();
  so.log = Small();
  so.retention_check_interval_ms = 20;
  {
    auto store = TopicStore::Open(so);
    ASSERT_TRUE(store.ok());
    TopicConfig keep_small;
    keep_small.partitions = 1;
    keep_small.retention_bytes = 8192;
    auto small = (*store)->Create(TopicName("small"), keep_small);
    auto all = (*store)->Create(TopicName("all"), 1);
    ASSERT_TRUE(small.ok() && all.ok());
    Fill(*(*small)->partition(0), 60, 5);
    Fill(*(*all)->partition(0), 60, 5);
    // Wait for the bound itself: a pass that ran while Fill was still writing already moved the
    // start offset, so the start offset alone does not show the final pass has run.
    ASSERT_TRUE(sluice::testing::WaitFor(
        [&] {
          return (*small)->partition(0)->start_offset() > 0 &&
                 (*small)->partition(0)->size_bytes() <= 8192u + 4096u;
        },
        10000))
        << "size " << (*small)->partition(0)->size_bytes();
    EXPECT_EQ((*all)->partition(0)->start_offset(), 0) << "no retention on the other topic";
  }
  auto store = TopicStore::Open(so);
  ASSERT_TRUE(store.ok());
  const Topic* small = (*store)->Find(TopicName("small"));
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->partition(0)->options().retention_bytes, 8192);
  EXPECT_GT(small->partition(0)->start_offset(), 0);
}

}  // namespace
}  // namespace sluice::broker
