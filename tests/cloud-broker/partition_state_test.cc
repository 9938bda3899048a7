// PartitionState / TopicAssignment codecs, etcd key layout and Kafka-style replica placement.
#include "cloud-broker/replication/partition_state.h"

#include <gtest/gtest.h>

#include <map>

namespace sluice::broker {
namespace {

TEST(PartitionStateTest, RoundTripsAndRefusesInconsistentStates) {
  PartitionState s;
  s.replicas = {"b1", "b2", "b3"};
  s.leader = "b2";
  s.leader_epoch = 7;
  s.isr = {"b2", "b3"};
  s.controller_epoch = 42;
  s.version = 9;
  Result<PartitionState> back = ParsePartitionState(PartitionStateJson(s));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  EXPECT_TRUE(back->InIsr("b3"));
  EXPECT_FALSE(back->InIsr("b1"));

  PartitionState offline = s;
  offline.leader = "";
  offline.isr = {};
  EXPECT_TRUE(ParsePartitionState(PartitionStateJson(offline)).ok());

  PartitionState bad = s;
  bad.leader = "b1";  // not in the ISR: never a leader
  EXPECT_EQ(ParsePartitionState(PartitionStateJson(bad)).status().code(),
            StatusCode::kCorruption);
  bad = s;
  bad.isr = {"b2", "b9"};  // not a replica
  EXPECT_FALSE(ParsePartitionState(PartitionStateJson(bad)).ok());
  EXPECT_FALSE(ParsePartitionState("{\"replicas\":[]}").ok());
  EXPECT_FALSE(ParsePartitionState("[]").ok());
}

TEST(PartitionStateTest, KeysParseBack) {
  const std::string key = PartitionKey("eu-central", "sensor.readings", 12);
  EXPECT_EQ(key, "/sluice/regions/eu-central/partitions/sensor.readings/12");
  std::string topic;
  int32_t p = -1;
  ASSERT_TRUE(ParsePartitionKey("eu-central", key, &topic, &p));
  EXPECT_EQ(topic, "sensor.readings");
  EXPECT_EQ(p, 12);
  EXPECT_FALSE(ParsePartitionKey("us-east", key, &topic, &p));
  EXPECT_FALSE(ParsePartitionKey("eu-central", PartitionsPrefix("eu-central") + "t/x", &topic, &p));
  EXPECT_FALSE(ParsePartitionKey("eu-central", PartitionsPrefix("eu-central") + "t/-1", &topic,
                                 &p));
}

TEST(PartitionStateTest, PlacementSpreadsLeadersAndNeverRepeatsABrokerInAPartition) {
  auto a = AssignReplicas({"b3", "b1", "b2"}, 6, 3);
  ASSERT_TRUE(a.ok());
  std::map<std::string, int> leaders;
  for (const auto& replicas : *a) {
    ASSERT_EQ(replicas.size(), 3u);
    EXPECT_NE(replicas[0], replicas[1]);
    EXPECT_NE(replicas[1], replicas[2]);
    EXPECT_NE(replicas[0], replicas[2]);
    leaders[replicas[0]]++;
  }
  EXPECT_EQ(leaders["b1"], 2);
  EXPECT_EQ(leaders["b2"], 2);
  EXPECT_EQ(leaders["b3"], 2);
  EXPECT_EQ(AssignReplicas({"b1", "b2"}, 1, 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(AssignReplicas({"b1"}, 1, 0).ok());
  auto single = AssignReplicas({"b1", "b1"}, 2, 1);  // duplicates count once
  ASSERT_TRUE(single.ok());
  EXPECT_EQ((*single)[1], std::vector<std::string>{"b1"});
}

TEST(PartitionStateTest, TopicAssignmentRoundTrips) {
  TopicAssignment t{"sensors", 4, 3};
  auto back = ParseTopicAssignment(TopicAssignmentJson(t));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->name, "sensors");
  EXPECT_EQ(back->partitions, 4);
  EXPECT_EQ(back->replication_factor, 3);
  EXPECT_FALSE(back->config.retention_ms.has_value());
  // Overrides travel with it; an assignment written before they did still parses.
  t.config.retention_ms = 3600000;
  t.config.flush = FlushPolicy::kInterval;
  back = ParseTopicAssignment(TopicAssignmentJson(t));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->config.retention_ms, 3600000);
  EXPECT_EQ(back->config.flush, FlushPolicy::kInterval);
  EXPECT_EQ(back->config.partitions, 4);
  EXPECT_TRUE(
      ParseTopicAssignment("{\"name\":\"x\",\"partitions\":1,\"replication_factor\":1}").ok());
  EXPECT_FALSE(ParseTopicAssignment("{\"name\":\"x\",\"partitions\":0,\"replication_factor\":1}")
                   .ok());
}

}  // namespace
}  // namespace sluice::broker
