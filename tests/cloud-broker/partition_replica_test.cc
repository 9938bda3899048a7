// PartitionLog's replication primitives: leader epoch stamping, follower append at the leader's
// offsets (byte-identical logs, gaps and overlaps refused), raw batch reads, and the high
// watermark (automatic for a single broker, managed and checkpointed for a replica).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/partition_log.h"
#include "tests/cloud-broker/replica_test_util.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::CatchUp;
using testing::FilesWith;
using testing::SmallLog;
using testing::Slurp;
using testing::Tagged;
using testing::Values;
namespace fs = std::filesystem;

// partitionLeaderEpoch of every stored batch, in order.
std::vector<int32_t> StoredEpochs(const PartitionLog& log) {
  Result<LogBatches> all = log.ReadBatches(log.start_offset(), 1 << 30);
  EXPECT_TRUE(all.ok());
  std::vector<int32_t> out;
  for (const std::string& b : all->batches) {
    BatchFrame f;
    EXPECT_TRUE(PeekBatchFrame(b, &f));
    EXPECT_TRUE(DecodeBatch(b).ok()) << "CRC still valid after stamping";
    out.push_back(f.leader_epoch);
  }
  return out;
}

TEST(PartitionLogReplicaTest, LeaderAppendStampsItsEpochAndRecordsEpochStarts) {
  sluice::testing::TempDir dir;
  auto log = PartitionLog::Open(dir.Sub("t-0"), SmallLog());
  ASSERT_TRUE(log.ok());
  PartitionLog& l = **log;
  // No epoch yet: Append keeps whatever the client sent (a single-broker region).
  ASSERT_EQ(*l.Append(Tagged("a", 2)), 0);
  ASSERT_EQ(*l.Append(Tagged("b", 2, /*epoch=*/9)), 2);
  EXPECT_EQ(l.latest_epoch(), -1);
  EXPECT_FALSE(fs::exists(dir.Sub("t-0/leader-epoch-checkpoint")));
  // The leader's epoch overwrites the client's; plain Append then uses the latest epoch.
  ASSERT_EQ(*l.Append(Tagged("c", 3, 7), 3), 4);
  ASSERT_EQ(*l.Append(Tagged("d", 1, 7)), 7);
  ASSERT_EQ(*l.Append(Tagged("e", 2), 5), 8);
  ASSERT_EQ(*l.Append(Tagged("f", 1), 5), 10);
  EXPECT_EQ(StoredEpochs(l), (std::vector<int32_t>{-1, 9, 3, 3, 5, 5}));
  EXPECT_EQ(l.epoch_entries(), (std::vector<EpochEntry>{{3, 4}, {5, 8}}));
  EXPECT_EQ(l.latest_epoch(), 5);
  EXPECT_EQ(Slurp(dir.Sub("t-0/leader-epoch-checkpoint")), "0\n2\n3 4\n5 8\n");
  // A deposed leader's epoch and a negative one are refused; nothing is stored.
  EXPECT_EQ(l.Append(Tagged("g", 1), 4).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(l.Append(Tagged("g", 1), -2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(l.log_end_offset(), 11);
  EXPECT_EQ(l.EndOffsetForEpoch(3), (EpochEndOffset{3, 8}));
  EXPECT_EQ(l.EndOffsetForEpoch(5), (EpochEndOffset{5, 11}));
  EXPECT_EQ(l.EndOffsetForEpoch(4), (EpochEndOffset{3, 8}));
  EXPECT_TRUE(l.EndOffsetForEpoch(2).undefined());
}

TEST(PartitionLogReplicaTest, FollowerBuiltFromLeaderBatchesIsByteIdentical) {
  sluice::testing::TempDir dir;
  auto leader = PartitionLog::Open(dir.Sub("leader/t-0"), SmallLog());
  auto follower = PartitionLog::Open(dir.Sub("follower/t-0"), SmallLog());
  ASSERT_TRUE(leader.ok() && follower.ok());
  for (int i = 0; i < 30; ++i) {
    const int32_t epoch = i < 10 ? 1 : (i < 22 ? 2 : 4);
    ASSERT_TRUE((*leader)->Append(Tagged("r" + std::to_string(i), 1 + i % 3), epoch).ok());
    if (i % 7 == 0) {
      CatchUp(**leader, **follower);  // the follower fetches while the leader appends
    }
  }
  CatchUp(**leader, **follower);
  ASSERT_EQ((*follower)->log_end_offset(), (*leader)->log_end_offset());
  ASSERT_TRUE((*leader)->Flush().ok() && (*follower)->Flush().ok());
  std::map<std::string, std::string> l = FilesWith(dir.Sub("leader/t-0"), ".log");
  std::map<std::string, std::string> f = FilesWith(dir.Sub("follower/t-0"), ".log");
  ASSERT_GT(l.size(), 3u);
  EXPECT_TRUE(l == f) << "segment files differ";
  EXPECT_TRUE(FilesWith(dir.Sub("leader/t-0"), ".index") ==
              FilesWith(dir.Sub("follower/t-0"), ".index"));
  EXPECT_EQ((*follower)->epoch_entries(), (*leader)->epoch_entries());
  EXPECT_EQ((*follower)->epoch_entries().size(), 3u);
  EXPECT_EQ(Slurp(dir.Sub("leader/t-0/leader-epoch-checkpoint")),
            Slurp(dir.Sub("follower/t-0/leader-epoch-checkpoint")));
  EXPECT_EQ(Values(**follower), Values(**leader));
  // And after a restart.
  follower->reset();
  auto again = PartitionLog::Open(dir.Sub("follower/t-0"), SmallLog());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Values(**again), Values(**leader));
  EXPECT_EQ((*again)->epoch_entries(), (*leader)->epoch_entries());
}

TEST(PartitionLogReplicaTest, FollowerAppendRefusesGapOverlapAndBadBytes) {
  sluice::testing::TempDir dir;
  auto leader = PartitionLog::Open(dir.Sub("l"), SmallLog());
  auto follower = PartitionLog::Open(dir.Sub("f"), SmallLog());
  ASSERT_TRUE(leader.ok() && follower.ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*leader)->Append(Tagged("x" + std::to_string(i), 3), 1).ok());
  }
  Result<LogBatches> all = (*leader)->ReadBatches(0, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->batches.size(), 4u);  // offsets [0,2] [3,5] [6,8] [9,11]
  ASSERT_TRUE((*follower)->AppendAsFollower(all->batches[0]).ok());
  ASSERT_TRUE((*follower)->AppendAsFollower(all->batches[1]).ok());
  const auto files_before = FilesWith(dir.Sub("f"), ".log");

  Result<int64_t> gap = (*follower)->AppendAsFollower(all->batches[3]);
  EXPECT_EQ(gap.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(gap.status().message().find("[9, 11] does not start at the log end 6 (a gap of 3"),
            std::string::npos)
      << gap.status().message();
  Result<int64_t> overlap = (*follower)->AppendAsFollower(all->batches[1]);
  EXPECT_EQ(overlap.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(overlap.status().message().find("(overlaps 3 stored offsets)"), std::string::npos)
      << overlap.status().message();
  std::string partly = all->batches[2];
  SetBaseOffset(partly, 4);  // [4,6]: two stored offsets, and one new
  overlap = (*follower)->AppendAsFollower(partly);
  EXPECT_NE(overlap.status().message().find("(overlaps 2 stored offsets)"), std::string::npos)
      << overlap.status().message();
  std::string corrupt = all->batches[2];
  corrupt[corrupt.size() - 3] ^= 0x5a;
  EXPECT_EQ((*follower)->AppendAsFollower(corrupt).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*follower)->AppendAsFollower(all->batches[2].substr(0, 70)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*follower)->log_end_offset(), 6);
  EXPECT_TRUE(FilesWith(dir.Sub("f"), ".log") == files_before) << "nothing stored";
  ASSERT_EQ(*(*follower)->AppendAsFollower(all->batches[2]), 6);
}

TEST(PartitionLogReplicaTest, ReadBatchesReturnsWholeBatchesPastTheHighWatermark) {
  sluice::testing::TempDir dir;
  LogOptions o = SmallLog();
  o.managed_high_watermark = true;
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE((*log)->Append(Tagged("x", 2), 1).ok());
  }
  // From the middle of a batch: that whole batch; max_bytes 1 still returns one.
  Result<LogBatches> r = (*log)->ReadBatches(3, 1);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->batches.size(), 1u);
  EXPECT_EQ(static_cast<int64_t>(sluice::broker::testing::Be(r->batches[0], 0, 8)), 2);
  EXPECT_EQ(r->next_offset, 4);
  EXPECT_EQ(r->high_watermark, 0);
  EXPECT_EQ(r->log_end_offset, 12);
  r = (*log)->ReadBatches(4, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->batches.size(), 4u);
  EXPECT_EQ(r->next_offset, 12);
  EXPECT_TRUE((*log)->ReadBatches(12, 100)->batches.empty());
  EXPECT_EQ((*log)->ReadBatches(13, 100).status().code(), StatusCode::kInvalidArgument);
}

TEST(PartitionLogReplicaTest, UnmanagedHighWatermarkFollowsTheDurableEnd) {
  sluice::testing::TempDir dir;
  LogOptions o = SmallLog();
  int visible = 0;
  o.on_visible = [&visible] { ++visible; };
  auto log = PartitionLog::Open(dir.Sub("always"), o);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(Tagged("a", 3)).ok());
  EXPECT_EQ((*log)->high_watermark(), 3);
  EXPECT_EQ((*log)->durable_end_offset(), 3);
  EXPECT_EQ((*log)->log_end_offset(), 3);
  EXPECT_EQ((*log)->end_offset(), 3);
  EXPECT_EQ(visible, 1);
  EXPECT_EQ((*log)->SetHighWatermark(1).status().code(), StatusCode::kFailedPrecondition);

  o.flush = FlushPolicy::kInterval;
  o.flush_ms = -1;
  auto interval = PartitionLog::Open(dir.Sub("interval"), o);
  ASSERT_TRUE(interval.ok());
  ASSERT_TRUE((*interval)->Append(Tagged("a", 3)).ok());
  EXPECT_EQ((*interval)->high_watermark(), 3);  // readable once written, as before
  EXPECT_EQ((*interval)->durable_end_offset(), 0);
  ASSERT_TRUE((*interval)->Flush().ok());
  EXPECT_EQ((*interval)->durable_end_offset(), 3);
  EXPECT_EQ(Values(**interval).size(), 3u);
}

TEST(PartitionLogReplicaTest, ManagedHighWatermarkBoundsReadsAndIsCheckpointed) {
  sluice::testing::TempDir dir;
  LogOptions o = SmallLog();
  o.managed_high_watermark = true;
  std::atomic<int> visible{0};
  o.on_visible = [&visible] { ++visible; };
  auto log = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(log.ok());
  PartitionLog& l = **log;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(l.Append(Tagged("v" + std::to_string(i), 2), 1).ok());
  }
  EXPECT_EQ(l.log_end_offset(), 10);
  EXPECT_EQ(l.durable_end_offset(), 10);
  EXPECT_EQ(l.high_watermark(), 0);
  EXPECT_EQ(l.end_offset(), 0);
  EXPECT_EQ(visible.load(), 0) << "appends do not make records visible";
  EXPECT_TRUE(Values(l).empty());
  EXPECT_EQ(l.Read(1, 10, 1 << 20).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*l.OffsetForTimestamp(0), 0);

  EXPECT_EQ(*l.SetHighWatermark(5), 5);
  EXPECT_EQ(visible.load(), 1);
  Result<LogReadResult> r = l.Read(0, 100, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->records.size(), 5u) << "stops inside a batch at the high watermark";
  EXPECT_EQ(r->end_offset, 5);
  EXPECT_EQ(*l.OffsetForTimestamp(1'700'000'000'001), 1);
  EXPECT_EQ(*l.SetHighWatermark(3), 5) << "monotonic";
  EXPECT_EQ(visible.load(), 1);
  EXPECT_EQ(*l.SetHighWatermark(99), 10) << "clamped to the log end";
  EXPECT_EQ(visible.load(), 2);
  ASSERT_TRUE(l.CheckpointHighWatermark().ok());
  EXPECT_EQ(Slurp(dir.Sub("t-0/high-watermark-checkpoint")), "0\n1\n10\n");
  ASSERT_TRUE(l.TruncateTo(7).ok());  // inside [6,7]: end 6
  EXPECT_EQ(l.high_watermark(), 6) << "truncation lowers it";
  EXPECT_EQ(l.log_end_offset(), 6);

  // Restart: the checkpoint (10) is clamped to the recovered end (6).
  log->reset();
  auto again = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->high_watermark(), 6);
  ASSERT_TRUE((*again)->Append(Tagged("w", 2), 2).ok());
  EXPECT_EQ(*(*again)->SetHighWatermark(7), 7);
  ASSERT_TRUE((*again)->CheckpointHighWatermark().ok());
  again->reset();
  auto third = PartitionLog::Open(dir.Sub("t-0"), o);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)->high_watermark(), 7);
  EXPECT_EQ(Values(**third).size(), 7u);
  // Unmanaged, the same directory opens readable to its end (the checkpoint is ignored).
  third->reset();
  auto unmanaged = PartitionLog::Open(dir.Sub("t-0"), SmallLog());
  ASSERT_TRUE(unmanaged.ok());
  EXPECT_EQ((*unmanaged)->high_watermark(), 8);
}

TEST(PartitionLogReplicaTest, SingleBrokerLogWithoutEpochsKeepsItsBytes) {
  sluice::testing::TempDir dir;
  std::map<std::string, std::string> before;
  {
    auto log = PartitionLog::Open(dir.Sub("t-0"), SmallLog());
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 12; ++i) {
      ASSERT_TRUE((*log)->Append(Tagged("s" + std::to_string(i), 2)).ok());
    }
    ASSERT_TRUE((*log)->Flush().ok());
    before = FilesWith(dir.Sub("t-0"), ".log");
  }
  auto log = PartitionLog::Open(dir.Sub("t-0"), SmallLog());
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(FilesWith(dir.Sub("t-0"), ".log") == before);
  EXPECT_EQ((*log)->latest_epoch(), -1);
  EXPECT_EQ((*log)->high_watermark(), 24);
  EXPECT_FALSE(fs::exists(dir.Sub("t-0/high-watermark-checkpoint")));
  EXPECT_FALSE(fs::exists(dir.Sub("t-0/truncation-checkpoint")));
  // The first start of a non-empty log without a checkpoint scans it once and records "none".
  EXPECT_EQ(Slurp(dir.Sub("t-0/leader-epoch-checkpoint")), "0\n0\n");
}

}  // namespace
}  // namespace sluice::broker
