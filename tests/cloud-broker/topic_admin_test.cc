// Partition-state compare-and-swap and topic creation against a real etcd.
#include "cloud-broker/replication/topic_admin.h"

#include <gtest/gtest.h>

#include <map>

#include "cloud-broker/replication/broker_registry.h"
#include "cloud-broker/replication/partition_state_store.h"
#include "tests/cloud-broker/test_residency.h"
#include "tests/common/etcd.h"

namespace sluice::broker {
namespace {

using sluice::testing::EtcdCluster;
using sluice::testing::TempDir;

class TopicAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = EtcdCluster::Start(dir_);
    ASSERT_NE(etcd_, nullptr) << "etcd did not start (scripts/setup installs etcd-server)";
    client_ = std::move(EtcdClient::Create(etcd_->endpoints()).value());
  }
  void Register(const std::string& id, const std::string& region) {
    RegistrationOptions o;
    o.lease_ttl_s = 2;
    o.keepalive_interval_ms = 300;
    auto r = BrokerRegistration::Start(*client_, {id, region, "http://" + id, 0}, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    brokers_.push_back(std::move(r).value());
  }
  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<EtcdClient> client_;
  std::vector<std::unique_ptr<BrokerRegistration>> brokers_;
};

// Fails if the swap ignores the mod revision (two writers of one read would both win), or if a
// failed guard is reported as a stale partition (a fenced writer would retry instead of stop).
TEST_F(TopicAdminTest, CompareAndSwapTellsStaleFromGuardFailed) {
  Register("b1", "eu");
  ASSERT_TRUE(CreateTopic(*client_, Residency("eu"), "t", 1, 1).ok());
  auto read = ReadPartitionState(*client_, "eu", "t", 0);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->state.leader, "b1");
  EXPECT_EQ(ReadPartitionState(*client_, "eu", "t", 1).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(client_->Put("/guard", "g").ok());
  const int64_t guard_rev = (*client_->Get("/guard"))->create_revision;
  PartitionState next = read->state;
  next.version++;
  int64_t new_rev = 0;
  auto first = CompareAndSwap(*client_, "eu", "t", 0, read->mod_revision, next,
                              {EtcdCompare::CreateRevisionIs("/guard", guard_rev)}, &new_rev);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, CasOutcome::kSwapped);
  EXPECT_EQ(ReadPartitionState(*client_, "eu", "t", 0)->mod_revision, new_rev);

  // A second writer of the same read loses without an error.
  PartitionState other = read->state;
  other.leader_epoch = 99;
  auto second = CompareAndSwap(*client_, "eu", "t", 0, read->mod_revision, other);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, CasOutcome::kStale);

  // The guard key gone: kGuardFailed even with the right mod revision, and nothing written.
  ASSERT_TRUE(client_->Delete("/guard").ok());
  auto fenced = CompareAndSwap(*client_, "eu", "t", 0, new_rev, other,
                               {EtcdCompare::CreateRevisionIs("/guard", guard_rev)});
  ASSERT_TRUE(fenced.ok());
  EXPECT_EQ(*fenced, CasOutcome::kGuardFailed);
  EXPECT_EQ(ReadPartitionState(*client_, "eu", "t", 0)->state, next);

  auto all = ReadPartitionStates(*client_, "eu");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].topic, "t");
}

// Fails if placement takes brokers of another region, if leaders are not spread, if the
// initial state is not leader = first replica / ISR = replicas, or if the topic-absent guard is
// dropped (the second create would overwrite the first).
TEST_F(TopicAdminTest, CreateTopicPlacesOnTheRegionsBrokersOnceAndOnly) {
  Register("b1", "eu");
  Register("b2", "eu");
  Register("b3", "eu");
  Register("u1", "us");  // another region: never a replica of an eu topic
  auto created = CreateTopic(*client_, Residency("eu"), "orders", 6, 3);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->partitions, 6);
  auto topic = client_->Get(TopicKey("eu", "orders"));
  ASSERT_TRUE(topic.ok() && topic->has_value());
  EXPECT_EQ(ParseTopicAssignment((*topic)->value)->replication_factor, 3);

  auto states = ReadPartitionStates(*client_, "eu");
  ASSERT_TRUE(states.ok());
  ASSERT_EQ(states->size(), 6u);
  std::map<std::string, int> leaders;
  for (const VersionedPartitionState& p : *states) {
    ASSERT_EQ(p.state.replicas.size(), 3u);
    EXPECT_FALSE(p.state.IsReplica("u1"));
    EXPECT_EQ(p.state.leader, p.state.replicas[0]);
    EXPECT_EQ(p.state.isr, p.state.replicas);
    EXPECT_EQ(p.state.leader_epoch, 0);
    EXPECT_EQ(p.state.version, 0);
    leaders[p.state.leader]++;
  }
  EXPECT_EQ(leaders, (std::map<std::string, int>{{"b1", 2}, {"b2", 2}, {"b3", 2}}));

  const auto before = *states;
  auto again = CreateTopic(*client_, Residency("eu"), "orders", 2, 1);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  auto after = ReadPartitionStates(*client_, "eu");
  ASSERT_EQ(after->size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ((*after)[i].mod_revision, before[i].mod_revision);
  }

  EXPECT_EQ(CreateTopic(*client_, Residency("eu"), "big", 1, 4).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(client_->Get(TopicKey("eu", "big"))->has_value());
  EXPECT_EQ(CreateTopic(*client_, Residency("eu"), "a/b", 1, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateTopic(*client_, Residency("eu"), "none", 0, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DefaultReplicationFactor(2), 2);
  EXPECT_EQ(DefaultReplicationFactor(5), 3);

  // The us region has one broker: its topics live there only.
  auto us = CreateTopic(*client_, Residency("us"), "orders", 2, 1);
  ASSERT_TRUE(us.ok()) << us.status().ToString();
  auto us_states = ReadPartitionStates(*client_, "us");
  ASSERT_TRUE(us_states.ok());
  ASSERT_EQ(us_states->size(), 2u);
  for (const VersionedPartitionState& p : *us_states) {
    EXPECT_EQ(p.state.replicas, (std::vector<std::string>{"u1"}));
  }
  EXPECT_EQ(CreateTopic(*client_, Residency("us"), "wide", 1, 2).status().code(),
            StatusCode::kInvalidArgument);
}

// Issue 13: a registration under a region's prefix that names another region is not a member:
// never a replica there (a copy of the region's records would live with a broker configured
// for elsewhere).
TEST_F(TopicAdminTest, ABrokerRegisteredForAnotherRegionIsNeverPlaced) {
  Register("e1", "eu");
  ASSERT_TRUE(client_->Put(BrokersPrefix("eu") + "x1",
                           R"({"id":"x1","region":"us","url":"http://x1"})")
                  .ok());
  auto listed = ListBrokers(*client_, "eu");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, "e1");
  EXPECT_EQ(CreateTopic(*client_, Residency("eu"), "pair", 1, 2).status().code(),
            StatusCode::kInvalidArgument);  // only one member: factor 2 cannot be placed
  auto one = CreateTopic(*client_, Residency("eu"), "single", 4, 1);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  auto states = ReadPartitionStates(*client_, "eu");
  ASSERT_TRUE(states.ok());
  for (const VersionedPartitionState& p : *states) {
    EXPECT_EQ(p.state.replicas, (std::vector<std::string>{"e1"}));
  }
}

}  // namespace
}  // namespace sluice::broker
