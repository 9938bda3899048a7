// Kafka's RangeAssignor / RoundRobinAssignor semantics, checked against the examples in their
// Javadoc (apache/kafka clients/src/main/java/org/apache/kafka/clients/consumer/).
#include <gtest/gtest.h>

#include <set>

#include "cloud-broker/groups/assignor.h"

namespace sluice::broker {
namespace {

TopicPartition TP(const std::string& t, int32_t p) { return {TopicName(t), PartitionId(p)}; }
std::vector<TopicName> Topics(std::initializer_list<const char*> names) {
  std::vector<TopicName> v;
  for (const char* n : names) v.emplace_back(n);
  return v;
}

// RangeAssignor.java: "two consumers C0 and C1, two topics t0 and t1, and each topic has 3
// partitions ... C0: [t0p0, t0p1, t1p0, t1p1]  C1: [t0p2, t1p2]".
TEST(RangeAssignorTest, KafkaJavadocExample) {
  PartitionCounts counts = {{TopicName("t0"), 3}, {TopicName("t1"), 3}};
  Subscriptions subs = {{MemberId("C0"), Topics({"t0", "t1"})},
                        {MemberId("C1"), Topics({"t0", "t1"})}};
  Assignment a = RangeAssign(counts, subs);
  EXPECT_EQ(a[MemberId("C0")],
            (std::vector<TopicPartition>{TP("t0", 0), TP("t0", 1), TP("t1", 0), TP("t1", 1)}));
  EXPECT_EQ(a[MemberId("C1")], (std::vector<TopicPartition>{TP("t0", 2), TP("t1", 2)}));
}

// RoundRobinAssignor.java, identical subscriptions: "C0: [t0p0, t0p2, t1p1]
// C1: [t0p1, t1p0, t1p2]".
TEST(RoundRobinAssignorTest, KafkaJavadocIdenticalSubscriptions) {
  PartitionCounts counts = {{TopicName("t0"), 3}, {TopicName("t1"), 3}};
  Subscriptions subs = {{MemberId("C0"), Topics({"t0", "t1"})},
                        {MemberId("C1"), Topics({"t0", "t1"})}};
  Assignment a = RoundRobinAssign(counts, subs);
  EXPECT_EQ(a[MemberId("C0")],
            (std::vector<TopicPartition>{TP("t0", 0), TP("t0", 2), TP("t1", 1)}));
  EXPECT_EQ(a[MemberId("C1")],
            (std::vector<TopicPartition>{TP("t0", 1), TP("t1", 0), TP("t1", 2)}));
}

// RoundRobinAssignor.java, differing subscriptions: t0/t1/t2 with 1/2/3 partitions; C0 on t0,
// C1 on t0,t1, C2 on t0,t1,t2 -> "C0: [t0p0] C1: [t1p0] C2: [t1p1, t2p0, t2p1, t2p2]".
TEST(RoundRobinAssignorTest, KafkaJavadocDifferingSubscriptions) {
  PartitionCounts counts = {{TopicName("t0"), 1}, {TopicName("t1"), 2}, {TopicName("t2"), 3}};
  Subscriptions subs = {{MemberId("C0"), Topics({"t0"})},
                        {MemberId("C1"), Topics({"t0", "t1"})},
                        {MemberId("C2"), Topics({"t0", "t1", "t2"})}};
  Assignment a = RoundRobinAssign(counts, subs);
  EXPECT_EQ(a[MemberId("C0")], (std::vector<TopicPartition>{TP("t0", 0)}));
  EXPECT_EQ(a[MemberId("C1")], (std::vector<TopicPartition>{TP("t1", 0)}));
  EXPECT_EQ(a[MemberId("C2")],
            (std::vector<TopicPartition>{TP("t1", 1), TP("t2", 0), TP("t2", 1), TP("t2", 2)}));
}

// Range with more members than partitions: the first members (sorted by id) get one each, the
// rest none; members are sorted lexicographically ("m10" < "m2"), as Java's String order.
TEST(RangeAssignorTest, MoreMembersThanPartitionsAndLexicographicOrder) {
  PartitionCounts counts = {{TopicName("t"), 2}};
  Subscriptions subs = {{MemberId("m2"), Topics({"t"})},
                        {MemberId("m10"), Topics({"t"})},
                        {MemberId("m3"), Topics({"t"})}};
  Assignment a = RangeAssign(counts, subs);
  EXPECT_EQ(a[MemberId("m10")], (std::vector<TopicPartition>{TP("t", 0)}));
  EXPECT_EQ(a[MemberId("m2")], (std::vector<TopicPartition>{TP("t", 1)}));
  EXPECT_TRUE(a[MemberId("m3")].empty());
}

// Both assignors: every partition of every subscribed topic exactly once; unknown topics skipped.
TEST(AssignorTest, CompleteAndDisjoint) {
  PartitionCounts counts = {{TopicName("a"), 7}, {TopicName("b"), 4}};
  Subscriptions subs = {{MemberId("x"), Topics({"a", "b", "ghost"})},
                        {MemberId("y"), Topics({"a", "b"})},
                        {MemberId("z"), Topics({"a", "b"})}};
  for (AssignStrategy s : {AssignStrategy::kRange, AssignStrategy::kRoundRobin}) {
    Assignment a = Assign(s, counts, subs);
    std::multiset<TopicPartition> all;
    size_t smallest = 100, largest = 0;
    for (const auto& [m, tps] : a) {
      all.insert(tps.begin(), tps.end());
      smallest = std::min(smallest, tps.size());
      largest = std::max(largest, tps.size());
    }
    EXPECT_EQ(all.size(), 11u) << AssignStrategyName(s);
    EXPECT_EQ(std::set<TopicPartition>(all.begin(), all.end()).size(), 11u);
    if (s == AssignStrategy::kRoundRobin) {
      EXPECT_LE(largest - smallest, 1u);  // identical subscriptions: within one
    }
  }
}

TEST(AssignorTest, StrategyNames) {
  AssignStrategy s;
  EXPECT_TRUE(ParseAssignStrategy("range", &s));
  EXPECT_EQ(s, AssignStrategy::kRange);
  EXPECT_TRUE(ParseAssignStrategy("roundrobin", &s));
  EXPECT_EQ(s, AssignStrategy::kRoundRobin);
  EXPECT_FALSE(ParseAssignStrategy("sticky", &s));
  EXPECT_TRUE(IsValidGroupId("my-group_1.a"));
  EXPECT_FALSE(IsValidGroupId("../etc"));
  EXPECT_FALSE(IsValidGroupId(""));
  EXPECT_FALSE(IsValidGroupId(".."));
}

}  // namespace
}  // namespace sluice::broker
