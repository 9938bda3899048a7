// ReconcilePartition: the controller's per-partition decision after broker failures (pure).
#include "cloud-broker/replication/leader_election.h"

#include <gtest/gtest.h>

#include <map>

namespace sluice::broker {
namespace {

PartitionState State(std::vector<std::string> replicas, std::string leader, int32_t epoch,
                     std::vector<std::string> isr) {
  PartitionState s;
  s.replicas = std::move(replicas);
  s.leader = std::move(leader);
  s.leader_epoch = epoch;
  s.isr = std::move(isr);
  s.controller_epoch = 7;
  s.version = 4;
  return s;
}

TEST(LeaderElectionTest, NothingChangesWhileEveryReplicaIsLive) {
  EXPECT_FALSE(ReconcilePartition(State({"a", "b", "c"}, "a", 3, {"a", "b", "c"}),
                                   {"a", "b", "c"}, 9)
                   .has_value());
  // A follower out of the ISR that is dead changes nothing either.
  EXPECT_FALSE(ReconcilePartition(State({"a", "b", "c"}, "a", 3, {"a", "b"}), {"a", "b"}, 9)
                   .has_value());
}

// A leader that restarted (registered under another incarnation than it was elected as) while
// no controller saw it gone (the controller itself moved meanwhile: found by the replication
// checker, where the restarted leader, its log cut back to its last fsync, led epoch 3 again).
// It must not lead that epoch again: a new election, possibly of the same broker, epoch + 1.
TEST(LeaderElectionTest, ARestartedLeaderIsElectedAnewWithTheNextEpoch) {
  PartitionState s = State({"a", "b", "c"}, "a", 3, {"a", "b", "c"});
  s.leader_incarnation = 100;
  const std::map<std::string, int64_t> registered{{"a", 250}, {"b", 120}, {"c", 130}};
  auto next = ReconcilePartition(s, {"a", "b", "c"}, 9, false, registered);
  ASSERT_TRUE(next.has_value()) << "the restart went unnoticed: the same epoch, another leader";
  EXPECT_EQ(next->leader, "a");  // first eligible in replica order: itself, in a new epoch
  EXPECT_EQ(next->leader_epoch, 4);
  EXPECT_EQ(next->leader_incarnation, 250);
  // Elected as the current incarnation: nothing more to do.
  EXPECT_FALSE(ReconcilePartition(*next, {"a", "b", "c"}, 9, false, registered).has_value());
  // A state from before incarnations were recorded gets the live leader's, same epoch.
  PartitionState old = State({"a", "b", "c"}, "b", 5, {"a", "b", "c"});
  auto recorded = ReconcilePartition(old, {"a", "b", "c"}, 9, false, registered);
  ASSERT_TRUE(recorded.has_value());
  EXPECT_EQ(recorded->leader, "b");
  EXPECT_EQ(recorded->leader_epoch, 5);
  EXPECT_EQ(recorded->leader_incarnation, 120);
}

// Fails if the new leader is not taken from the ISR in replica order, or if the epoch, version
// or controller epoch are not bumped.
TEST(LeaderElectionTest, DeadLeaderIsReplacedByTheFirstLiveIsrMemberInReplicaOrder) {
  // c precedes b in the ISR list, but b precedes c in replica order.
  auto next = ReconcilePartition(State({"a", "b", "c"}, "a", 3, {"a", "c", "b"}), {"b", "c"}, 9);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->leader, "b");
  EXPECT_EQ(next->leader_epoch, 4);
  EXPECT_EQ(next->isr, (std::vector<std::string>{"c", "b"}));
  EXPECT_EQ(next->version, 5);
  EXPECT_EQ(next->controller_epoch, 9);
  EXPECT_EQ(next->replicas, (std::vector<std::string>{"a", "b", "c"}));
}

// Fails if a live replica outside the ISR is elected (unclean election by default).
TEST(LeaderElectionTest, LiveReplicaOutsideTheIsrIsNotElectedByDefault) {
  auto next = ReconcilePartition(State({"a", "b", "c"}, "a", 3, {"a", "b"}), {"c"}, 9);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->leader, "");
  EXPECT_EQ(next->leader_epoch, 4);
  EXPECT_EQ(next->isr, (std::vector<std::string>{"a"}));  // the last leader only
}

TEST(LeaderElectionTest, DeadFollowerLeavesTheIsrWithTheSameLeaderAndEpoch) {
  auto next = ReconcilePartition(State({"a", "b", "c"}, "a", 3, {"a", "b", "c"}), {"a", "c"}, 9);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->leader, "a");
  EXPECT_EQ(next->leader_epoch, 3);
  EXPECT_EQ(next->isr, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(next->version, 5);
}

// Fails if an offline partition elects a replica that was not in the ISR, or stays offline
// when its last ISR member is back.
TEST(LeaderElectionTest, OfflinePartitionWaitsForItsIsrMember) {
  PartitionState offline = State({"a", "b", "c"}, "", 4, {"a"});
  EXPECT_FALSE(ReconcilePartition(offline, {"b", "c"}, 9).has_value());
  auto back = ReconcilePartition(offline, {"a", "c"}, 9);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->leader, "a");
  EXPECT_EQ(back->leader_epoch, 5);
  EXPECT_EQ(back->isr, (std::vector<std::string>{"a"}));
}

TEST(LeaderElectionTest, UncleanElectionPicksALiveReplicaWhenAllowed) {
  auto next = ReconcilePartition(State({"a", "b", "c"}, "a", 3, {"a", "b"}), {"c"}, 9, true);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->leader, "c");
  EXPECT_EQ(next->leader_epoch, 4);
  EXPECT_EQ(next->isr, (std::vector<std::string>{"c"}));
  // An ISR member is still preferred when one is live.
  next = ReconcilePartition(State({"a", "b", "c"}, "a", 3, {"a", "c"}), {"b", "c"}, 9, true);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->leader, "c");
  // Offline partitions too.
  next = ReconcilePartition(State({"a", "b", "c"}, "", 4, {"a"}), {"b"}, 9, true);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->leader, "b");
  EXPECT_EQ(next->leader_epoch, 5);
}

}  // namespace
}  // namespace sluice::broker
