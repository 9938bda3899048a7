// PartitionLog: append/read across segment rolls, restart, and recovery of torn or corrupt
// tails; plus a generic Kafka log-format reader that checks the bytes on disk.
#include "cloud-broker/log/partition_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cloud-broker/log/segment.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::EncodeRecords;
using testing::MakeRecord;
namespace fs = std::filesystem;

std::string Payload(int64_t i) { return "{\"n\":" + std::to_string(i) + ",\"pad\":\"" +
                                        std::string(60, 'x') + "\"}"; }

// Appends `batches` batches of `per_batch` records; record i has payload Payload(i).
void Fill(PartitionLog& log, int batches, int per_batch, int64_t first = 0) {
  for (int b = 0; b < batches; ++b) {
    std::vector<Record> recs;
    for (int i = 0; i < per_batch; ++i) {
      int64_t n = first + b * per_batch + i;
      recs.push_back(MakeRecord("dev-" + std::to_string(n % 7), "DE", 1'700'000'000'000 + n,
                                Payload(n)));
    }
    Result<int64_t> base = log.Append(EncodeRecords(recs));
    ASSERT_TRUE(base.ok()) << base.status().ToString();
    ASSERT_EQ(*base, first + b * per_batch);
  }
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".log") {  // not the .index/.timeindex siblings
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Reads every record of the log and checks offsets 0..n-1 and their payloads.
void ExpectAll(const PartitionLog& log, int64_t n) {
  Result<LogReadResult> r = log.Read(0, 100000, 64 << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(static_cast<int64_t>(r->records.size()), n);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(r->records[i].offset, i);
    EXPECT_EQ(*r->records[i].record.value, Payload(i));
  }
  EXPECT_EQ(r->next_offset, n);
  EXPECT_EQ(r->end_offset, n);
}

LogOptions SmallSegments() {
  LogOptions o;
  o.segment_bytes = 1024;
  o.index_interval_bytes = 512;
  return o;
}

TEST(PartitionLogTest, AppendsAndReadsAcrossSegmentRolls) {
  sluice::testing::TempDir dir;
  auto log = PartitionLog::Open(dir.Sub("t-0"), SmallSegments());
  ASSERT_TRUE(log.ok());
  Fill(**log, 40, 3);
  EXPECT_EQ((*log)->next_offset(), 120);
  EXPECT_GT((*log)->segment_count(), 5u);
  ExpectAll(**log, 120);

  // From the middle of a batch, limited by records.
  auto r = (*log)->Read(77, 10, 1 << 20);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 10u);
  EXPECT_EQ(r->records.front().offset, 77);
  EXPECT_EQ(r->records.back().offset, 86);
  EXPECT_EQ(r->next_offset, 87);

  // max_bytes smaller than one batch still returns that batch (progress), and no more.
  r = (*log)->Read(30, 1000, 1);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 3u);
  EXPECT_EQ(r->next_offset, 33);

  // At the end: nothing, and outside the log: an error.
  r = (*log)->Read(120, 10, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->records.empty());
  EXPECT_EQ((*log)->Read(121, 10, 1 << 20).status().code(), StatusCode::kInvalidArgument);

  // Segment names are 20-digit base offsets; each file starts at its base offset.
  for (const std::string& path : SegmentFiles(dir.Sub("t-0"))) {
    std::string name = fs::path(path).filename().string();
    ASSERT_EQ(name.size(), 24u) << name;
    std::string bytes = ReadFile(path);
    ASSERT_GE(bytes.size(), kBatchHeaderSize);
    EXPECT_EQ(std::stoll(name.substr(0, 20)), static_cast<int64_t>(testing::Be(bytes, 0, 8)));
  }
}

TEST(PartitionLogTest, ReopenKeepsRecordsAndNextOffset) {
  sluice::testing::TempDir dir;
  {
    auto log = PartitionLog::Open(dir.Sub("t-0"), SmallSegments());
    ASSERT_TRUE(log.ok());
    Fill(**log, 20, 2);
  }
  auto log = PartitionLog::Open(dir.Sub("t-0"), SmallSegments());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->recovery_truncated_bytes(), 0u);
  EXPECT_EQ((*log)->next_offset(), 40);
  ExpectAll(**log, 40);
  Fill(**log, 5, 2, 40);
  ExpectAll(**log, 50);
}

TEST(PartitionLogTest, TornTailIsCutAndAppendsContinue) {
  sluice::testing::TempDir dir;
  std::string last;
  uint64_t size_before_last = 0;
  {
    auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
    ASSERT_TRUE(log.ok());
    Fill(**log, 4, 3);
    last = SegmentFiles(dir.Sub("t-0")).back();
    size_before_last = fs::file_size(last);
    Fill(**log, 1, 3, 12);
  }
  // Crash mid-write: only part of the last batch reached the disk.
  uint64_t full = fs::file_size(last);
  fs::resize_file(last, size_before_last + (full - size_before_last) / 2);

  auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ((*log)->recovery_truncated_bytes(), (full - size_before_last) / 2);
  EXPECT_EQ(fs::file_size(last), size_before_last);
  EXPECT_EQ((*log)->next_offset(), 12);
  ExpectAll(**log, 12);
  Fill(**log, 2, 3, 12);
  ExpectAll(**log, 18);
}

TEST(PartitionLogTest, GarbageAfterLastBatchIsCut) {
  sluice::testing::TempDir dir;
  std::string last;
  {
    auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
    ASSERT_TRUE(log.ok());
    Fill(**log, 3, 2);
    last = SegmentFiles(dir.Sub("t-0")).back();
  }
  uint64_t good = fs::file_size(last);
  std::ofstream(last, std::ios::binary | std::ios::app) << std::string(37, '\x5a');
  auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->recovery_truncated_bytes(), 37u);
  EXPECT_EQ(fs::file_size(last), good);
  EXPECT_EQ((*log)->next_offset(), 6);
  Fill(**log, 1, 2, 6);
  ExpectAll(**log, 8);
}

TEST(PartitionLogTest, CorruptByteInTailBatchCutsFromThatBatch) {
  sluice::testing::TempDir dir;
  std::string last;
  uint64_t before_last = 0;
  {
    auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
    ASSERT_TRUE(log.ok());
    Fill(**log, 3, 2);
    last = SegmentFiles(dir.Sub("t-0")).back();
    before_last = fs::file_size(last);
    Fill(**log, 1, 2, 6);
  }
  std::string bytes = ReadFile(last);
  bytes[before_last + kBatchHeaderSize + 5] ^= 0x01;  // inside the last batch's first record
  WriteFile(last, bytes);

  auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->recovery_truncated_bytes(), bytes.size() - before_last);
  EXPECT_EQ(fs::file_size(last), before_last);
  EXPECT_EQ((*log)->next_offset(), 6);
  ExpectAll(**log, 6);
}

TEST(PartitionLogTest, BatchWithNonIncreasingOffsetIsCut) {
  sluice::testing::TempDir dir;
  std::string last;
  uint64_t good = 0;
  {
    auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
    ASSERT_TRUE(log.ok());
    Fill(**log, 2, 2);
    last = SegmentFiles(dir.Sub("t-0")).back();
    good = fs::file_size(last);
  }
  // A valid batch (good CRC) whose base offset goes backwards.
  std::string batch = EncodeRecords({MakeRecord("d", "DE", 1, Payload(0))});
  SetBaseOffset(batch, 1);
  std::ofstream(last, std::ios::binary | std::ios::app) << batch;
  auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(fs::file_size(last), good);
  EXPECT_EQ((*log)->next_offset(), 4);
}

TEST(PartitionLogTest, EmptyOrGarbageOnlySegmentStarts) {
  sluice::testing::TempDir dir;
  fs::create_directories(dir.Sub("t-0"));
  WriteFile(dir.Sub("t-0/" + Segment::FileName(0)), "garbage");
  auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->next_offset(), 0);
  EXPECT_EQ((*log)->recovery_truncated_bytes(), 7u);
  Fill(**log, 1, 1);
  ExpectAll(**log, 1);
}

TEST(PartitionLogTest, RejectsBytesThatAreNotOneBatch) {
  sluice::testing::TempDir dir;
  auto log = PartitionLog::Open(dir.Sub("t-0"), LogOptions{});
  ASSERT_TRUE(log.ok());
  std::string batch = EncodeRecords({MakeRecord("d", "DE", 1, "x")});
  EXPECT_FALSE((*log)->Append(batch + "x").ok());
  EXPECT_FALSE((*log)->Append(batch.substr(0, 30)).ok());
  EXPECT_EQ((*log)->next_offset(), 0);
}

TEST(PartitionLogTest, ParallelAppendsToDifferentPartitions) {
  sluice::testing::TempDir dir;
  LogOptions o = SmallSegments();
  o.flush = FlushPolicy::kNever;
  auto a = PartitionLog::Open(dir.Sub("t-0"), o);
  auto b = PartitionLog::Open(dir.Sub("t-1"), o);
  ASSERT_TRUE(a.ok() && b.ok());
  std::thread ta([&] { Fill(**a, 30, 2); });
  std::thread tb([&] { Fill(**b, 30, 2); });
  ta.join();
  tb.join();
  ExpectAll(**a, 60);
  ExpectAll(**b, 60);
}

TEST(PartitionLogTest, ReadsWhileAppendingSeeWholeBatches) {
  sluice::testing::TempDir dir;
  LogOptions o = SmallSegments();
  o.flush = FlushPolicy::kNever;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  std::atomic<bool> done{false};
  std::thread writer([&] {
    Fill(**log, 60, 2);
    done = true;
  });
  int reads = 0;
  while (!done || reads == 0) {
    auto r = (*log)->Read(0, 100000, 64 << 20);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->records.size() % 2, 0u);  // never half a batch
    for (size_t i = 0; i < r->records.size(); ++i) {
      ASSERT_EQ(r->records[i].offset, static_cast<int64_t>(i));
    }
    ++reads;
  }
  writer.join();
  ExpectAll(**log, 120);
}

}  // namespace
}  // namespace sluice::broker
