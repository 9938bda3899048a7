// GroupCoordinator's generation/rebalance state machine, driven by a ManualClock and Tick().
#include "cloud-broker/groups/group_coordinator.h"
#include "cloud-broker/groups/offset_store.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OffsetStore::Open(dir_.Sub("groups"));
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    NewCoordinator();
  }
  void NewCoordinator() {
    coord_ = std::make_unique<GroupCoordinator>(
        GroupOptions{}, *store_,
        [](const TopicName& t) { return t.value() == "t" ? 4 : (t.value() == "u" ? 2 : -1); },
        clock_, metrics_);
  }
  JoinResult Join(const std::string& member = "", int64_t timeout_ms = 1000,
                  AssignStrategy s = AssignStrategy::kRange) {
    JoinRequest r;
    if (!member.empty()) r.member_id = MemberId(member);
    r.topics = {TopicName("t")};
    r.strategy = s;
    r.session_timeout_ms = timeout_ms;
    JoinResult out;
    GroupStatus st = coord_->Join(g_, r, &out);
    EXPECT_TRUE(st.ok()) << st.message;
    return out;
  }
  static std::set<TopicPartition> Set(const std::vector<TopicPartition>& v) {
    return {v.begin(), v.end()};
  }
  std::optional<GroupInfo> Info() {
    std::optional<GroupInfo> info;
    EXPECT_TRUE(coord_->Describe(g_, &info).ok());
    return info;
  }
  CommittedOffset C(int32_t p, int64_t o) { return {{TopicName("t"), PartitionId(p)}, Offset(o)}; }

  sluice::testing::TempDir dir_;
  ManualClock clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<OffsetStore> store_;
  std::unique_ptr<GroupCoordinator> coord_;
  const GroupId g_{"g"};
};

TEST_F(GroupCoordinatorTest, JoinAssignsIdAndAllPartitions) {
  JoinResult a = Join();
  EXPECT_FALSE(a.member_id.value().empty());
  EXPECT_EQ(a.generation, 1);
  EXPECT_EQ(a.assignment.size(), 4u);
  EXPECT_TRUE(coord_->Heartbeat(g_, a.member_id, 1).ok());
  EXPECT_EQ(Info()->state, "stable");
}

TEST_F(GroupCoordinatorTest, SecondJoinRebalancesAndFirstRejoinsViaHeartbeat) {
  JoinResult a = Join("a");
  JoinResult b = Join("b");
  EXPECT_EQ(b.generation, 2);
  EXPECT_EQ(Info()->state, "rebalancing");
  // a learns of the rebalance from its heartbeat, and cannot commit at the old generation.
  EXPECT_EQ(coord_->Heartbeat(g_, a.member_id, 1).code, GroupErrc::kRebalanceInProgress);
  EXPECT_EQ(coord_->Commit(g_, a.member_id, 1, {C(0, 1)}).code, GroupErrc::kIllegalGeneration);
  EXPECT_EQ(coord_->Commit(g_, a.member_id, 2, {C(0, 1)}).code, GroupErrc::kRebalanceInProgress);
  JoinResult a2 = Join("a");
  EXPECT_EQ(a2.generation, 2);
  EXPECT_EQ(Info()->state, "stable");
  // Range over 4 partitions, members sorted: a gets 0,1 and b gets 2,3.
  EXPECT_EQ(Set(a2.assignment), (std::set<TopicPartition>{C(0, 0).tp, C(1, 0).tp}));
  EXPECT_EQ(Set(b.assignment), (std::set<TopicPartition>{C(2, 0).tp, C(3, 0).tp}));
  EXPECT_TRUE(coord_->Heartbeat(g_, a.member_id, 2).ok());
  EXPECT_TRUE(coord_->Heartbeat(g_, b.member_id, 2).ok());
}

TEST_F(GroupCoordinatorTest, CommitRules) {
  JoinResult a = Join("a");
  JoinResult b = Join("b");
  Join("a");
  EXPECT_TRUE(coord_->Commit(g_, a.member_id, 2, {C(0, 10), C(1, 3)}).ok());
  EXPECT_EQ(coord_->Commit(g_, a.member_id, 2, {C(2, 10)}).code, GroupErrc::kNotAssigned);
  EXPECT_EQ(coord_->Commit(g_, a.member_id, 2, {C(0, -1)}).code, GroupErrc::kInvalidRequest);
  EXPECT_EQ(coord_->Commit(g_, MemberId("zz"), 2, {C(0, 1)}).code, GroupErrc::kUnknownMember);
  EXPECT_TRUE(coord_->Commit(g_, b.member_id, 2, {C(3, 4)}).ok());
  // The stale-generation commit did not move anything; the others are durable.
  NewCoordinator();
  auto reopened = OffsetStore::Open(dir_.Sub("groups"));
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->Get(g_), (std::vector<CommittedOffset>{C(0, 10), C(1, 3), C(3, 4)}));
}

TEST_F(GroupCoordinatorTest, LeaveReassignsToRemainingMember) {
  JoinResult a = Join("a");
  JoinResult b = Join("b");
  Join("a");
  ASSERT_TRUE(coord_->Leave(g_, b.member_id).ok());
  EXPECT_EQ(coord_->Heartbeat(g_, a.member_id, 2).code, GroupErrc::kRebalanceInProgress);
  JoinResult a3 = Join("a");
  EXPECT_EQ(a3.generation, 3);
  EXPECT_EQ(a3.assignment.size(), 4u);
  EXPECT_EQ(coord_->Leave(g_, b.member_id).code, GroupErrc::kUnknownMember);
}

TEST_F(GroupCoordinatorTest, SessionExpiryReassigns) {
  JoinResult a = Join("a", 1000);
  JoinResult b = Join("b", 3000);
  Join("a", 1000);
  // b keeps heartbeating, a goes silent.
  for (int i = 0; i < 3; ++i) {
    clock_.AdvanceMs(400);
    coord_->Tick();
    if (i < 2) {  // at 400 and 800 ms a is still a member
      EXPECT_TRUE(coord_->Heartbeat(g_, b.member_id, 2).ok()) << i;
      EXPECT_EQ(Info()->members.size(), 2u);
    }
  }
  // 1200 ms without a heartbeat from a (> 1000): a is gone, b must re-join and gets everything.
  auto info = Info();
  ASSERT_EQ(info->members.size(), 1u);
  EXPECT_EQ(info->members[0].member_id, b.member_id);
  EXPECT_EQ(coord_->Heartbeat(g_, b.member_id, 2).code, GroupErrc::kRebalanceInProgress);
  EXPECT_EQ(coord_->Heartbeat(g_, a.member_id, 2).code, GroupErrc::kUnknownMember);
  JoinResult b2 = Join("b", 3000);
  EXPECT_EQ(b2.generation, 3);
  EXPECT_EQ(b2.assignment.size(), 4u);
  EXPECT_EQ(metrics_.GetCounter("sluice_broker_group_members_expired_total", "").Value(), 1u);
}

TEST_F(GroupCoordinatorTest, MemberThatDoesNotRejoinIsRemovedAtRebalanceDeadline) {
  JoinResult a = Join("a", 1000);
  // b joins; a keeps heartbeating (so its session never expires) but never re-joins.
  Join("b", 1000);
  for (int i = 0; i < 4; ++i) {  // the deadline (1000 ms) passes on the 4th step
    clock_.AdvanceMs(300);
    EXPECT_EQ(coord_->Heartbeat(g_, a.member_id, 1).code, GroupErrc::kRebalanceInProgress);
    Join("b", 1000);  // b stays alive and current
    coord_->Tick();
  }
  auto info = Info();
  ASSERT_EQ(info->members.size(), 1u);
  EXPECT_EQ(info->members[0].member_id.value(), "b");
}

TEST_F(GroupCoordinatorTest, NoExpiryWhileHeartbeating) {
  JoinResult a = Join("a", 1000);
  for (int i = 0; i < 20; ++i) {
    clock_.AdvanceMs(500);
    ASSERT_TRUE(coord_->Heartbeat(g_, a.member_id, 1).ok());
    coord_->Tick();
  }
  EXPECT_EQ(Info()->generation, 1);
}

TEST_F(GroupCoordinatorTest, RefusesBadJoins) {
  JoinRequest r;
  JoinResult out;
  EXPECT_EQ(coord_->Join(g_, r, &out).code, GroupErrc::kInvalidRequest);  // no topics
  r.topics = {TopicName("nope")};
  EXPECT_EQ(coord_->Join(g_, r, &out).code, GroupErrc::kUnknownTopic);
  r.topics = {TopicName("t")};
  r.session_timeout_ms = 5;
  EXPECT_EQ(coord_->Join(g_, r, &out).code, GroupErrc::kInvalidRequest);
  Join("a", 1000, AssignStrategy::kRange);
  r.session_timeout_ms = 1000;
  r.strategy = AssignStrategy::kRoundRobin;
  EXPECT_EQ(coord_->Join(g_, r, &out).code, GroupErrc::kInconsistentStrategy);
}

// A lone member may switch assignor; that is a rebalance. A re-join without changes is not.
TEST_F(GroupCoordinatorTest, LoneMemberSwitchingStrategyRebalances) {
  Join("a", 1000, AssignStrategy::kRange);
  EXPECT_EQ(Join("a", 1000, AssignStrategy::kRange).generation, 1);
  EXPECT_EQ(Join("a", 1000, AssignStrategy::kRoundRobin).generation, 2);
  EXPECT_EQ(Info()->strategy, "roundrobin");
}

TEST_F(GroupCoordinatorTest, RoundRobinAcrossTwoTopics) {
  JoinRequest r;
  r.topics = {TopicName("t"), TopicName("u")};
  r.strategy = AssignStrategy::kRoundRobin;
  r.session_timeout_ms = 1000;
  JoinResult x, y;
  r.member_id = MemberId("x");
  ASSERT_TRUE(coord_->Join(g_, r, &x).ok());
  r.member_id = MemberId("y");
  ASSERT_TRUE(coord_->Join(g_, r, &y).ok());
  r.member_id = MemberId("x");
  ASSERT_TRUE(coord_->Join(g_, r, &x).ok());
  EXPECT_EQ(x.assignment.size(), 3u);
  EXPECT_EQ(y.assignment.size(), 3u);
}

}  // namespace
}  // namespace sluice::broker
