// GroupCoordinator's generation/rebalance state machine, driven by a ManualClock and Tick().
#include "cloud-broker/groups/group_coordinator.h"
#include "cloud-broker/groups/offset_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = OffsetStore::Open(dir_.Sub("groups"), clock_);
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    NewCoordinator();
  }
  void NewCoordinator(GroupOptions options = {}) {
    coord_ = std::make_unique<GroupCoordinator>(
        options, *store_,
        [](const TopicName& t) { return t.value() == "t" ? 4 : (t.value() == "u" ? 2 : -1); },
        clock_, metrics_);
  }
  JoinResult Join(const std::string& member = "", int64_t timeout_ms = 1000,
                  AssignStrategy s = AssignStrategy::kRange) {
    JoinResult out;
    GroupStatus st = TryJoin(g_, member, timeout_ms, s, &out);
    EXPECT_TRUE(st.ok()) << st.message;
    return out;
  }
  GroupStatus TryJoin(const GroupId& g, const std::string& member, int64_t timeout_ms = 1000,
                      AssignStrategy s = AssignStrategy::kRange, JoinResult* out = nullptr) {
    JoinRequest r;
    if (!member.empty()) r.member_id = MemberId(member);
    r.topics = {TopicName("t")};
    r.strategy = s;
    r.session_timeout_ms = timeout_ms;
    JoinResult ignored;
    return coord_->Join(g, r, out != nullptr ? out : &ignored);
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

// Kafka's group.max.size: one group cannot grow without bound (every join is a rebalance over
// all members, so an unbounded group is also unbounded CPU). Members already in the group
// re-join freely; a place freed by a leave or an expiry can be taken again.
TEST_F(GroupCoordinatorTest, AJoinPastTheMemberLimitIsRefused) {
  GroupOptions o;
  o.max_members_per_group = 3;
  NewCoordinator(o);
  Join("a");
  Join("b");
  JoinResult c = Join("c");
  GroupStatus full = TryJoin(g_, "d");
  EXPECT_EQ(full.code, GroupErrc::kGroupFull);
  EXPECT_NE(full.message.find("groups.max_members"), std::string::npos) << full.message;
  EXPECT_EQ(GroupErrcHttpStatus(GroupErrc::kGroupFull), 409);
  EXPECT_STREQ(GroupErrcName(GroupErrc::kGroupFull), "group_max_size_reached");
  EXPECT_EQ(TryJoin(g_, "").code, GroupErrc::kGroupFull);  // a broker-chosen id too
  EXPECT_EQ(Info()->members.size(), 3u);
  EXPECT_EQ(Info()->generation, 3);  // the refusals started no rebalance
  EXPECT_TRUE(TryJoin(g_, "a").ok());  // a member re-joining is not a new member
  ASSERT_TRUE(coord_->Leave(g_, c.member_id).ok());
  EXPECT_TRUE(TryJoin(g_, "d").ok());
  EXPECT_EQ(Info()->members.size(), 3u);
}

// The groups a broker keeps members of are bounded (groups.max_groups), and a group whose last
// member left or expired is forgotten (its committed offsets stay), so a client cycling through
// group ids cannot grow the broker's memory or the reaper's work without bound.
TEST_F(GroupCoordinatorTest, GroupsAreBoundedAndEmptyGroupsAreForgotten) {
  GroupOptions o;
  o.max_groups = 2;
  NewCoordinator(o);
  JoinResult a1, b1;
  ASSERT_TRUE(TryJoin(GroupId("g1"), "a", 1000, AssignStrategy::kRange, &a1).ok());
  ASSERT_TRUE(TryJoin(GroupId("g2"), "b", 1000, AssignStrategy::kRange, &b1).ok());
  ASSERT_TRUE(coord_->Commit(GroupId("g1"), a1.member_id, 1, {C(0, 7)}).ok());
  GroupStatus over = TryJoin(GroupId("g3"), "c");
  EXPECT_EQ(over.code, GroupErrc::kTooManyGroups);
  EXPECT_NE(over.message.find("groups.max_groups"), std::string::npos) << over.message;
  EXPECT_EQ(GroupErrcHttpStatus(GroupErrc::kTooManyGroups), 503);
  EXPECT_TRUE(TryJoin(GroupId("g1"), "a2").ok());  // an existing group still takes members
  // g1 empties by leaves: forgotten at once; its offsets stay.
  ASSERT_TRUE(coord_->Leave(GroupId("g1"), a1.member_id).ok());
  ASSERT_TRUE(coord_->Leave(GroupId("g1"), MemberId("a2")).ok());
  EXPECT_EQ(coord_->group_count(), 1u);
  std::optional<GroupInfo> g1;
  ASSERT_TRUE(coord_->Describe(GroupId("g1"), &g1).ok());
  ASSERT_TRUE(g1.has_value());
  EXPECT_EQ(g1->state, "empty");
  std::vector<CommittedOffset> kept;
  ASSERT_TRUE(coord_->Offsets(GroupId("g1"), std::nullopt, &kept).ok());
  EXPECT_EQ(kept, (std::vector<CommittedOffset>{C(0, 7)}));
  EXPECT_TRUE(TryJoin(GroupId("g3"), "c").ok());
  // g2 and g3 empty by expiry: the reaper forgets them.
  clock_.AdvanceMs(1500);
  coord_->Tick();
  EXPECT_EQ(coord_->group_count(), 0u);
  // A refused join leaves nothing behind either.
  EXPECT_EQ(TryJoin(GroupId("g4"), "x", 5).code, GroupErrc::kInvalidRequest);
  EXPECT_EQ(coord_->group_count(), 0u);
  EXPECT_TRUE(TryJoin(GroupId("n0"), "m").ok());
  EXPECT_TRUE(TryJoin(GroupId("n1"), "m").ok());
  EXPECT_EQ(TryJoin(GroupId("n9"), "m").code, GroupErrc::kTooManyGroups);
}

// Offsets retention (Kafka's offsets.retention.minutes): the offsets of a group without members
// are forgotten once it was inactive for the retention, durably (not back after a reopen); a
// group with members, or one that committed within the retention, keeps them.
TEST_F(GroupCoordinatorTest, OffsetsOfGroupsInactiveForTheRetentionAreForgotten) {
  constexpr int64_t kDayMs = 24LL * 3600 * 1000;
  GroupOptions o;
  o.offsets_retention_ms = 7 * kDayMs;
  o.max_session_timeout_ms = 30 * kDayMs;
  NewCoordinator(o);
  auto commit_once = [&](const std::string& group, int64_t session_ms, bool stay) {
    JoinResult j;
    ASSERT_TRUE(TryJoin(GroupId(group), "m", session_ms, AssignStrategy::kRange, &j).ok());
    ASSERT_TRUE(coord_->Commit(GroupId(group), j.member_id, j.generation, {C(0, 5)}).ok());
    if (!stay) {
      ASSERT_TRUE(coord_->Leave(GroupId(group), j.member_id).ok());
    }
  };
  commit_once("idle", 1000, false);
  commit_once("member", 20 * kDayMs, true);  // keeps a member (a long session) throughout
  clock_.AdvanceMs(6 * kDayMs);
  commit_once("recent", 1000, false);
  EXPECT_EQ(coord_->ExpireOffsets(), 0u);  // nothing is 7 days inactive yet
  clock_.AdvanceMs(2 * kDayMs);  // idle: 8 days; recent: 2 days; member: has a member
  EXPECT_EQ(coord_->ExpireOffsets(), 1u);
  std::vector<CommittedOffset> got;
  ASSERT_TRUE(coord_->Offsets(GroupId("idle"), std::nullopt, &got).ok());
  EXPECT_TRUE(got.empty());
  ASSERT_TRUE(coord_->Offsets(GroupId("recent"), std::nullopt, &got).ok());
  EXPECT_EQ(got.size(), 1u);
  ASSERT_TRUE(coord_->Offsets(GroupId("member"), std::nullopt, &got).ok());
  EXPECT_EQ(got.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("groups/idle.offsets")));
  EXPECT_EQ(metrics_.GetCounter("sluice_broker_group_offsets_expired_total", "").Value(), 1u);
  // Durable: a reopened store (a restart, members forgotten) has no "idle"; "member" was written
  // down as active when it was seen with members, so the restart does not expire it either.
  auto reopened = OffsetStore::Open(dir_.Sub("groups"), clock_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_TRUE((*reopened)->Get(GroupId("idle")).empty());
  clock_.AdvanceMs(6 * kDayMs);
  EXPECT_TRUE((*reopened)->Expire(o.offsets_retention_ms, {}).size() == 1u);  // recent: 8 days
  EXPECT_EQ((*reopened)->Get(GroupId("member")).size(), 1u);
  EXPECT_TRUE((*reopened)->Get(GroupId("recent")).empty());
}

// Groups with members are written down as active at most 64 per pass (each is a synced
// rewrite that commits wait for); the next pass writes the rest.
TEST_F(GroupCoordinatorTest, ActiveGroupsAreWrittenDownAFewPerPass) {
  constexpr int64_t kRetentionMs = 10000;
  std::set<GroupId> live;
  for (int i = 0; i < 100; ++i) {
    std::string name = "g";  // not "g" + to_string: GCC 12 warns falsely (-Wrestrict)
    name += std::to_string(i);
    ASSERT_TRUE(store_->Commit(GroupId(name), {C(0, i)}).ok());
    live.insert(GroupId(name));
  }
  clock_.AdvanceMs(kRetentionMs / 10 + 1);
  EXPECT_TRUE(store_->Expire(kRetentionMs, live).empty());  // writes 64 down
  // A restart now (members forgotten), looked at 9.5 s later: the groups not written down are
  // 10.5 s inactive by their last commit and expire; the others are 9.5 s inactive.
  auto expired_after_restart = [&] {
    sluice::testing::TempDir copy;
    std::filesystem::copy(dir_.Sub("groups"), copy.Sub("groups"));
    ManualClock later(clock_.NowMs() + kRetentionMs - kRetentionMs / 20);
    auto reopened = OffsetStore::Open(copy.Sub("groups"), later);
    EXPECT_TRUE(reopened.ok());
    return reopened.ok() ? (*reopened)->Expire(kRetentionMs, {}).size() : 0u;
  };
  EXPECT_EQ(expired_after_restart(), 36u);  // the 36 not written down yet
  EXPECT_TRUE(store_->Expire(kRetentionMs, live).empty());  // the next pass writes the rest
  EXPECT_EQ(expired_after_restart(), 0u);
}

// Offsets files written before retention (version 1 entries, no time) are read, and count as
// active from when the store opened: an upgrade forgets nothing early.
TEST_F(GroupCoordinatorTest, OffsetsWrittenBeforeRetentionCountFromTheUpgrade) {
  ASSERT_TRUE(sluice::testing::WriteFile(dir_.Sub("groups/old.offsets"),
                                         OffsetStore::EncodeEntry({C(1, 9)})));
  auto s = OffsetStore::Open(dir_.Sub("groups"), clock_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Get(GroupId("old")), (std::vector<CommittedOffset>{C(1, 9)}));
  clock_.AdvanceMs(1000);
  EXPECT_TRUE((*s)->Expire(5000, {}).empty());
  clock_.AdvanceMs(5000);
  EXPECT_EQ((*s)->Expire(5000, {}).size(), 1u);
}

}  // namespace
}  // namespace sluice::broker
