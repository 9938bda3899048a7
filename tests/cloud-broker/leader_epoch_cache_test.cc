// LeaderEpochCache (KIP-101 / KIP-279): assignment, EndOffsetFor, truncation from either end,
// Kafka's checkpoint text format, a randomised comparison with a naive model, the log's rebuild
// and fitting of the checkpoint at Open, and the KIP-101 divergence scenario on two real logs.
#include "cloud-broker/log/leader_epoch_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "cloud-broker/log/checkpoint_file.h"
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
using Entries = std::vector<EpochEntry>;
namespace fs = std::filesystem;

TEST(LeaderEpochCacheTest, AssignIgnoresOldEpochsAndReplacesOverlappingStarts) {
  LeaderEpochCache c("", &FileOps::Default());
  ASSERT_TRUE(c.Assign(2, 10).ok());
  ASSERT_TRUE(c.Assign(2, 15).ok());  // same epoch: its start stays
  ASSERT_TRUE(c.Assign(1, 20).ok());  // older epoch: ignored
  ASSERT_TRUE(c.Assign(-1, 20).ok());
  ASSERT_TRUE(c.Assign(4, 20).ok());
  ASSERT_TRUE(c.Assign(5, 30).ok());
  EXPECT_EQ(c.entries(), (Entries{{2, 10}, {4, 20}, {5, 30}}));
  ASSERT_TRUE(c.Assign(7, 20).ok());  // starts at or below 4's and 5's start: replaces them
  EXPECT_EQ(c.entries(), (Entries{{2, 10}, {7, 20}}));
  EXPECT_EQ(c.latest(), (EpochEntry{7, 20}));
  EXPECT_EQ(c.latest_epoch(), 7);
}

TEST(LeaderEpochCacheTest, EndOffsetForFollowsKip279) {
  LeaderEpochCache c("", &FileOps::Default());
  EXPECT_TRUE(c.EndOffsetFor(0, 100).undefined()) << "empty";
  ASSERT_TRUE(c.Assign(2, 10).ok());
  ASSERT_TRUE(c.Assign(4, 20).ok());
  ASSERT_TRUE(c.Assign(5, 30).ok());
  EXPECT_EQ(c.EndOffsetFor(1, 100), (EpochEndOffset{-1, -1})) << "below the first epoch";
  EXPECT_EQ(c.EndOffsetFor(2, 100), (EpochEndOffset{2, 20}));
  EXPECT_EQ(c.EndOffsetFor(3, 100), (EpochEndOffset{2, 20})) << "largest epoch <= 3";
  EXPECT_EQ(c.EndOffsetFor(4, 100), (EpochEndOffset{4, 30}));
  EXPECT_EQ(c.EndOffsetFor(5, 100), (EpochEndOffset{5, 100})) << "latest: the log end";
  EXPECT_EQ(c.EndOffsetFor(9, 100), (EpochEndOffset{5, 100}));
}

TEST(LeaderEpochCacheTest, TruncatesFromEitherEnd) {
  LeaderEpochCache c("", &FileOps::Default());
  ASSERT_TRUE(c.Reset({{1, 0}, {3, 10}, {4, 20}, {6, 30}}).ok());
  ASSERT_TRUE(c.TruncateFromEnd(31).ok());
  EXPECT_EQ(c.entries().size(), 4u);
  ASSERT_TRUE(c.TruncateFromEnd(20).ok());  // entries starting at or after 20 go
  EXPECT_EQ(c.entries(), (Entries{{1, 0}, {3, 10}}));
  ASSERT_TRUE(c.Reset({{1, 0}, {3, 10}, {4, 20}, {6, 30}}).ok());
  ASSERT_TRUE(c.TruncateFromStart(0).ok());
  EXPECT_EQ(c.entries().size(), 4u);
  ASSERT_TRUE(c.TruncateFromStart(15).ok());  // epoch 3 now starts at 15; epoch 1 is gone
  EXPECT_EQ(c.entries(), (Entries{{3, 15}, {4, 20}, {6, 30}}));
  ASSERT_TRUE(c.TruncateFromStart(20).ok());
  EXPECT_EQ(c.entries(), (Entries{{4, 20}, {6, 30}}));
  ASSERT_TRUE(c.TruncateFromStart(99).ok());
  EXPECT_EQ(c.entries(), (Entries{{6, 99}}));
  EXPECT_EQ(c.Reset({{2, 5}, {2, 6}}).code(), StatusCode::kInvalidArgument);
}

TEST(LeaderEpochCacheTest, PersistsInKafkasCheckpointFormat) {
  sluice::testing::TempDir dir;
  const std::string path = dir.Sub("leader-epoch-checkpoint");
  LeaderEpochCache c(path, &FileOps::Default());
  EXPECT_EQ(c.Load().code(), StatusCode::kNotFound);
  ASSERT_TRUE(c.Assign(0, 0).ok());
  ASSERT_TRUE(c.Assign(3, 1234).ok());
  EXPECT_EQ(Slurp(path), "0\n2\n0 0\n3 1234\n");
  LeaderEpochCache loaded(path, &FileOps::Default());
  ASSERT_TRUE(loaded.Load().ok());
  EXPECT_EQ(loaded.entries(), c.entries());
  for (const char* bad : {"1\n0\n", "0\n2\n0 0\n", "0\n1\n0\n", "0\n1\n0 x\n", "0\n2\n3 5\n2 9\n",
                          "0\n1\n-1 4\n", ""}) {
    std::ofstream(path, std::ios::trunc) << bad;
    EXPECT_EQ(loaded.Load().code(), StatusCode::kCorruption) << "'" << bad << "'";
    EXPECT_TRUE(loaded.entries().empty());
  }
}

// The naive model: a list rewritten by the rules as the brief states them.
TEST(LeaderEpochCacheTest, PropertyRandomOperationsMatchANaiveModel) {
  sluice::testing::TempDir dir;
  const std::string path = dir.Sub("leader-epoch-checkpoint");
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    LeaderEpochCache c(path, &FileOps::Default());
    ASSERT_TRUE(c.Reset({}).ok());
    std::vector<std::pair<int32_t, int64_t>> model;
    for (int step = 0; step < 40; ++step) {
      const int32_t e = static_cast<int32_t>(rng() % 12);
      const int64_t o = static_cast<int64_t>(rng() % 100);
      switch (rng() % 4) {
        case 0:
        case 1:
          ASSERT_TRUE(c.Assign(e, o).ok());
          if (model.empty() || e > model.back().first) {
            std::erase_if(model, [o](const auto& m) { return m.second >= o; });
            model.push_back({e, o});
          }
          break;
        case 2:
          ASSERT_TRUE(c.TruncateFromEnd(o).ok());
          std::erase_if(model, [o](const auto& m) { return m.second >= o; });
          break;
        default: {
          ASSERT_TRUE(c.TruncateFromStart(o).ok());
          int last_below = -1;
          for (size_t i = 0; i < model.size(); ++i) {
            if (model[i].second <= o) {
              last_below = static_cast<int>(i);
            }
          }
          if (last_below >= 0) {
            model.erase(model.begin(), model.begin() + last_below);
            model.front().second = o;
          }
        }
      }
      ASSERT_TRUE(LeaderEpochCache::Valid(c.entries()));
      ASSERT_EQ(c.entries().size(), model.size());
      for (size_t i = 0; i < model.size(); ++i) {
        ASSERT_EQ(c.entries()[i], (EpochEntry{model[i].first, model[i].second}));
      }
      for (int32_t q = 0; q < 13; ++q) {  // EndOffsetFor by linear search
        EpochEndOffset want;
        for (size_t i = 0; i < model.size(); ++i) {
          if (model[i].first <= q) {
            want = {model[i].first, i + 1 < model.size() ? model[i + 1].second : 1000};
          }
        }
        ASSERT_EQ(c.EndOffsetFor(q, 1000), want) << "epoch " << q;
      }
      LeaderEpochCache reloaded(path, &FileOps::Default());
      ASSERT_TRUE(reloaded.Load().ok());
      ASSERT_EQ(reloaded.entries(), c.entries());
    }
  }
}

TEST(LeaderEpochCacheTest, LogRebuildsAMissingOrDamagedCheckpointAndFitsAStaleOne) {
  sluice::testing::TempDir dir;
  const std::string d = dir.Sub("t-0");
  const std::string path = d + "/leader-epoch-checkpoint";
  const Entries want{{1, 0}, {4, 6}, {6, 10}};
  {
    auto log = PartitionLog::Open(d, SmallLog());
    ASSERT_TRUE(log.ok());
    for (int32_t e : {1, 1, 1, 4, 4, 6, 6, 6}) {
      ASSERT_TRUE((*log)->Append(Tagged("x", 2), e).ok());
    }
    ASSERT_EQ((*log)->epoch_entries(), want);
  }
  for (const char* damage : {"missing", "garbage"}) {
    if (std::string(damage) == "missing") {
      fs::remove(path);
    } else {
      std::ofstream(path, std::ios::trunc) << "0\n7\n1 x\n";
    }
    auto log = PartitionLog::Open(d, SmallLog());
    ASSERT_TRUE(log.ok());
    EXPECT_EQ((*log)->epoch_entries(), want) << damage;
    EXPECT_EQ(Slurp(path), "0\n3\n1 0\n4 6\n6 10\n") << damage << ": rewritten";
  }
  // Entries at or past the recovered end (the crash took their records) are dropped.
  ASSERT_TRUE(WriteCheckpointFile(path, {{1, 0}, {4, 6}, {6, 10}, {8, 16}, {9, 40}},
                                  FileOps::Default()).ok());
  auto log = PartitionLog::Open(d, SmallLog());
  ASSERT_TRUE(log.ok());
  EXPECT_EQ((*log)->epoch_entries(), want);
  EXPECT_EQ((*log)->EndOffsetForEpoch(6), (EpochEndOffset{6, 16}));
}

// KIP-101: A leads in epoch 1 and writes past what B replicated; A fails, B becomes leader in
// epoch 2 and writes different records at those offsets. A comes back as a follower: it asks
// B for the end of its latest epoch, truncates there, catches up, and both logs are identical.
TEST(LeaderEpochCacheTest, Kip101DivergedFollowerTruncatesByEpochAndConverges) {
  sluice::testing::TempDir dir;
  auto a = PartitionLog::Open(dir.Sub("a/t-0"), SmallLog());
  auto b = PartitionLog::Open(dir.Sub("b/t-0"), SmallLog());
  ASSERT_TRUE(a.ok() && b.ok());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE((*a)->Append(Tagged("a" + std::to_string(i), 2), 1).ok());
  }
  CatchUp(**a, **b);  // B has [0, 12)
  for (int i = 6; i < 9; ++i) {  // acknowledged by A alone (high watermark never got there)
    ASSERT_TRUE((*a)->Append(Tagged("a" + std::to_string(i), 2), 1).ok());
  }
  for (int i = 0; i < 5; ++i) {  // B leads in epoch 2
    ASSERT_TRUE((*b)->Append(Tagged("b" + std::to_string(i), 3), 2).ok());
  }
  ASSERT_EQ((*a)->log_end_offset(), 18);
  ASSERT_EQ((*b)->log_end_offset(), 27);
  std::vector<std::string> b_values = Values(**b);
  b_values.resize(18);
  ASSERT_NE(Values(**a), b_values);

  // A restarts as B's follower (reopened from disk, as after its failure).
  a->reset();
  a = PartitionLog::Open(dir.Sub("a/t-0"), SmallLog());
  ASSERT_TRUE(a.ok());
  const int32_t mine = (*a)->latest_epoch();
  ASSERT_EQ(mine, 1);
  EpochEndOffset answer = (*b)->EndOffsetForEpoch(mine);
  EXPECT_EQ(answer, (EpochEndOffset{1, 12}));
  ASSERT_TRUE((*a)->TruncateTo(std::min(answer.end_offset, (*a)->log_end_offset())).ok());
  EXPECT_EQ((*a)->log_end_offset(), 12);
  CatchUp(**b, **a);
  ASSERT_TRUE((*a)->Flush().ok() && (*b)->Flush().ok());
  EXPECT_EQ(Values(**a), Values(**b));
  EXPECT_TRUE(FilesWith(dir.Sub("a/t-0"), ".log") == FilesWith(dir.Sub("b/t-0"), ".log"));
  EXPECT_EQ((*a)->epoch_entries(), (Entries{{1, 0}, {2, 12}}));
  EXPECT_EQ((*a)->epoch_entries(), (*b)->epoch_entries());
}

}  // namespace
}  // namespace sluice::broker
