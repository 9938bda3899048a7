// PartitionLog::TruncateTo: inside a segment, at a segment boundary, in an older segment (later
// ones deleted), then appends and a restart; edge cases; and crashes mid-truncate (a failing
// FileOps, and the truncation-checkpoint left behind) that Open must complete.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <random>
#include <thread>

#include "cloud-broker/log/checkpoint_file.h"
#include "cloud-broker/log/partition_log.h"
#include "tests/cloud-broker/replica_test_util.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::FilesWith;
using testing::SmallLog;
using testing::Tagged;
using testing::Values;
namespace fs = std::filesystem;

// Appends `batches` batches of 3 records tagged "<prefix><i>", epoch 1 for the first half and
// 2 after. Batch i holds offsets [3i, 3i+2].
void Fill(PartitionLog& log, int batches, const std::string& prefix = "b") {
  for (int i = 0; i < batches; ++i) {
    const int32_t epoch = i < batches / 2 ? 1 : 2;
    Result<int64_t> base = log.Append(Tagged(prefix + std::to_string(i), 3), epoch);
    ASSERT_TRUE(base.ok()) << base.status().ToString();
  }
}

std::vector<int64_t> SegmentBases(const std::string& dir) {
  std::vector<int64_t> out;
  for (const auto& [name, bytes] : FilesWith(dir, ".log")) {
    out.push_back(std::stoll(name.substr(0, 20)));
  }
  return out;
}

// The expected values after truncating a Fill(n)'d log to `end` and appending `extra` batches.
std::vector<std::string> Expected(int64_t end, int extra) {
  std::vector<std::string> out;
  for (int64_t o = 0; o < end; ++o) {
    out.push_back(std::to_string(o) + ":b" + std::to_string(o / 3) + "/" + std::to_string(o % 3));
  }
  for (int i = 0; i < extra; ++i) {
    for (int k = 0; k < 3; ++k) {
      out.push_back(std::to_string(end + 3 * i + k) + ":n" + std::to_string(i) + "/" +
                    std::to_string(k));
    }
  }
  return out;
}

// Truncates a fresh 20-batch log to `offset`, checks the end, appends 2 batches, reopens and
// reads everything back.
void TruncateAppendReopen(int64_t offset, int64_t want_end, size_t* segments_before,
                          size_t* segments_after) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  {
    auto log = PartitionLog::Open(d, SmallLog());
    ASSERT_TRUE(log.ok());
    Fill(**log, 20);
    *segments_before = (*log)->segment_count();
    ASSERT_TRUE((*log)->TruncateTo(offset).ok());
    *segments_after = (*log)->segment_count();
    EXPECT_EQ((*log)->log_end_offset(), want_end);
    EXPECT_EQ((*log)->end_offset(), want_end);
    EXPECT_EQ((*log)->durable_end_offset(), want_end);
    EXPECT_EQ(Values(**log), Expected(want_end, 0)) << "no truncated record is readable";
    EXPECT_EQ((*log)->Read(want_end + 1, 10, 1 << 20).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_EQ(SegmentBases(d).size(), *segments_after);
    EXPECT_LE(SegmentBases(d).back(), want_end);
    for (int i = 0; i < 2; ++i) {
      Result<int64_t> base = (*log)->Append(Tagged("n" + std::to_string(i), 3), 3);
      ASSERT_TRUE(base.ok());
      EXPECT_EQ(*base, want_end + 3 * i);
    }
    EXPECT_EQ(Values(**log), Expected(want_end, 2));
  }
  auto log = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->rebuilt_indexes(), 0u) << "the cut segment's indexes were rewritten";
  EXPECT_EQ((*log)->recovery_truncated_bytes(), 0u);
  EXPECT_EQ(Values(**log), Expected(want_end, 2));
  EXPECT_EQ((*log)->latest_epoch(), 3);
  EXPECT_EQ((*log)->EndOffsetForEpoch(3), (EpochEndOffset{3, want_end + 6}));
  EXPECT_FALSE(fs::exists(d + "/truncation-checkpoint"));
}

TEST(PartitionLogTruncateTest, InsideTheActiveSegment) {
  size_t before = 0;
  size_t after = 0;
  // 20 batches of ~450 bytes in 1024-byte segments: 2 per segment; offset 58 is in the last.
  TruncateAppendReopen(58, 57, &before, &after);
  EXPECT_EQ(before, after);
}

TEST(PartitionLogTruncateTest, InsideAnOlderSegmentDeletesTheLaterOnes) {
  size_t before = 0;
  size_t after = 0;
  TruncateAppendReopen(22, 21, &before, &after);  // batch [21,23]
  EXPECT_GT(before, after + 4);
}

TEST(PartitionLogTruncateTest, AtASegmentBoundary) {
  sluice::testing::TempDir dir;
  std::vector<int64_t> bases;
  {
    auto log = PartitionLog::Open(dir.Sub("t-0"), SmallLog());
    ASSERT_TRUE(log.ok());
    Fill(**log, 20);
    bases = SegmentBases(dir.Sub("t-0"));
  }
  ASSERT_GT(bases.size(), 4u);
  size_t before = 0;
  size_t after = 0;
  TruncateAppendReopen(bases[3], bases[3], &before, &after);
  EXPECT_EQ(after, 4u) << "the segment at the target stays, empty, as the active one";
}

TEST(PartitionLogTruncateTest, ToTheStartAndPastTheEnd) {
  size_t before = 0;
  size_t after = 0;
  TruncateAppendReopen(0, 0, &before, &after);
  EXPECT_EQ(after, 1u);

  sluice::testing::TempDir dir;
  auto log = PartitionLog::Open(dir.Sub("t-0"), SmallLog());
  ASSERT_TRUE(log.ok());
  Fill(**log, 4);
  const auto files = FilesWith(dir.Sub("t-0"), ".log");
  EXPECT_TRUE((*log)->TruncateTo(12).ok()) << "at the end: no-op";
  EXPECT_TRUE((*log)->TruncateTo(500).ok()) << "past the end: no-op";
  EXPECT_EQ((*log)->log_end_offset(), 12);
  EXPECT_TRUE(FilesWith(dir.Sub("t-0"), ".log") == files);
  EXPECT_EQ((*log)->TruncateTo(-1).code(), StatusCode::kInvalidArgument);
}

TEST(PartitionLogTruncateTest, BelowTheStartAfterRetentionIsRefused) {
  sluice::testing::TempDir dir;
  LogOptions o = SmallLog();
  o.retention_bytes = 2048;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  Fill(**log, 20);
  ASSERT_GT((*log)->ApplyRetention(), 0u);
  const int64_t start = (*log)->start_offset();
  ASSERT_GT(start, 30) << "retention went past epoch 1's start";
  EXPECT_EQ((*log)->TruncateTo(start - 1).code(), StatusCode::kInvalidArgument);
  // Retention moved the epoch entries up: epoch 1 is gone, epoch 2 starts at the log start.
  EXPECT_EQ((*log)->epoch_entries(), (std::vector<EpochEntry>{{2, start}}));
  ASSERT_TRUE((*log)->TruncateTo(start).ok());
  EXPECT_EQ((*log)->log_end_offset(), start);
  EXPECT_TRUE((*log)->epoch_entries().empty());
}

TEST(PartitionLogTruncateTest, EpochEntriesPastTheCutAreDropped) {
  sluice::testing::TempDir dir;
  auto log = PartitionLog::Open(dir.Sub("t-0"), SmallLog());
  ASSERT_TRUE(log.ok());
  Fill(**log, 10);  // epoch 1 at 0, epoch 2 at 15
  ASSERT_EQ((*log)->epoch_entries(), (std::vector<EpochEntry>{{1, 0}, {2, 15}}));
  ASSERT_TRUE((*log)->TruncateTo(16).ok());  // batch [15,17]: end 15
  EXPECT_EQ((*log)->epoch_entries(), (std::vector<EpochEntry>{{1, 0}}));
  EXPECT_EQ(testing::Slurp(dir.Sub("t-0/leader-epoch-checkpoint")), "0\n1\n1 0\n");
}

// Fails ftruncate(2) once armed: TruncateTo stops after deleting the later segments, before the
// containing one is cut (a crash at that point, as far as the disk can tell).
class FailTruncateOps final : public FileOps {
 public:
  ssize_t PWrite(int fd, const void* buf, size_t n, off_t offset) override {
    return FileOps::Default().PWrite(fd, buf, n, offset);
  }
  int DataSync(int fd) override { return FileOps::Default().DataSync(fd); }
  int Truncate(int fd, off_t size) override {
    if (armed) {
      errno = EIO;
      return -1;
    }
    return FileOps::Default().Truncate(fd, size);
  }
  bool armed = false;
};

TEST(PartitionLogTruncateTest, CrashMidTruncateIsCompletedOnOpen) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  FailTruncateOps ops;
  LogOptions o = SmallLog();
  o.file_ops = &ops;
  {
    auto log = PartitionLog::Open(d, o);
    ASSERT_TRUE(log.ok());
    Fill(**log, 20);
    ops.armed = true;
    Status st = (*log)->TruncateTo(23);  // batch [21,23]
    EXPECT_EQ(st.code(), StatusCode::kIOError) << st.ToString();
    EXPECT_EQ((*log)->Append(Tagged("late", 1)).status().code(), StatusCode::kUnavailable)
        << "a half-cut partition stops";
    EXPECT_TRUE(fs::exists(d + "/truncation-checkpoint"));
  }
  // The containing segment still holds records past the target: Open must cut them.
  auto log = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ((*log)->log_end_offset(), 21);
  EXPECT_EQ(Values(**log), Expected(21, 0));
  EXPECT_FALSE(fs::exists(d + "/truncation-checkpoint"));
  ASSERT_TRUE((*log)->Append(Tagged("n0", 3), 3).ok());
  log->reset();
  auto again = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Values(**again), Expected(21, 1)) << "the completed cut is not redone";
}

TEST(PartitionLogTruncateTest, CrashRightAfterTheCheckpointIsCompletedOnOpen) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  {
    auto log = PartitionLog::Open(d, SmallLog());
    ASSERT_TRUE(log.ok());
    Fill(**log, 20);
  }
  // Every later step of a truncation lost: only the target is on disk.
  ASSERT_TRUE(WriteCheckpointFile(d + "/truncation-checkpoint", {{9}}, FileOps::Default()).ok());
  auto log = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->log_end_offset(), 9);
  EXPECT_EQ(Values(**log), Expected(9, 0));
  EXPECT_EQ((*log)->epoch_entries(), (std::vector<EpochEntry>{{1, 0}}));
  EXPECT_FALSE(fs::exists(d + "/truncation-checkpoint"));
}

TEST(PartitionLogTruncateTest, PropertyRandomTruncatesAndAppendsMatchAModel) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  std::mt19937 rng(12345);
  std::vector<std::string> model;  // value tag of each offset
  auto log = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(log.ok());
  std::vector<std::pair<int64_t, int64_t>> batches;  // [base, last]
  for (int step = 0; step < 120; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 6 || model.empty()) {
      const int n = 1 + static_cast<int>(rng() % 4);
      const std::string tag = "s" + std::to_string(step);
      Result<int64_t> base = (*log)->Append(Tagged(tag, n), 1);
      ASSERT_TRUE(base.ok());
      ASSERT_EQ(*base, static_cast<int64_t>(model.size()));
      batches.push_back({*base, *base + n - 1});
      for (int i = 0; i < n; ++i) {
        model.push_back(std::to_string(model.size()) + ":" + tag + "/" + std::to_string(i));
      }
    } else if (op < 9) {
      const int64_t target = static_cast<int64_t>(rng() % (model.size() + 2));
      ASSERT_TRUE((*log)->TruncateTo(target).ok());
      while (!batches.empty() && batches.back().second >= target) {
        batches.pop_back();
      }
      model.resize(batches.empty() ? 0 : static_cast<size_t>(batches.back().second + 1));
    } else {
      log->reset();
      log = PartitionLog::Open(d, SmallLog());
      ASSERT_TRUE(log.ok());
    }
    ASSERT_EQ((*log)->log_end_offset(), static_cast<int64_t>(model.size())) << "step " << step;
    ASSERT_EQ(Values(**log), model) << "step " << step;
  }
}

TEST(PartitionLogTruncateTest, ConcurrentAppendsReadsAndTruncationsKeepTheEndsConsistent) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  auto log = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(log.ok());
  PartitionLog& l = **log;
  std::atomic<bool> stop{false};
  std::atomic<int> appended{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        Result<int64_t> r = l.Append(Tagged("c", 2), 1);
        if (r.ok()) {
          ++appended;
        } else {
          EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
          ++refused;
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      Result<LogReadResult> r = l.Read(0, 100000, 64 << 20);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      for (size_t i = 0; i < r->records.size(); ++i) {
        ASSERT_EQ(r->records[i].offset, static_cast<int64_t>(i));
        ASSERT_LT(r->records[i].offset, r->end_offset);
      }
    }
  });
  std::mt19937 rng(99);
  for (int i = 0; i < 40; ++i) {
    while (l.log_end_offset() < 10) {
      std::this_thread::yield();
    }
    ASSERT_TRUE(l.TruncateTo(static_cast<int64_t>(rng() % (l.log_end_offset() + 1))).ok());
    const int64_t hwm = l.high_watermark();
    EXPECT_LE(hwm, l.log_end_offset());
  }
  stop = true;
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_GT(appended.load(), 0);
  // Quiescent: every stored record is durable and readable.
  EXPECT_EQ(l.high_watermark(), l.log_end_offset());
  EXPECT_EQ(l.durable_end_offset(), l.log_end_offset());
  const std::vector<std::string> before = Values(l);
  EXPECT_EQ(static_cast<int64_t>(before.size()), l.log_end_offset());
  log->reset();
  auto again = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Values(**again), before);
}

}  // namespace
}  // namespace sluice::broker
