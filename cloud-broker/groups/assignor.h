// Partition assignors with the semantics of Kafka's RangeAssignor and RoundRobinAssignor
// (apache/kafka clients/src/main/java/org/apache/kafka/clients/consumer/RangeAssignor.java and
// RoundRobinAssignor.java). Members are ordered by id (byte-wise, as Java's String order for
// ASCII ids), partitions by topic name then number.
//  - Range: per topic, the members subscribed to it get contiguous runs of
//    partitions/members partitions; the first partitions%members members get one extra.
//  - RoundRobin: all partitions of all subscribed topics, sorted, dealt in turn to the sorted
//    members, skipping a member not subscribed to that partition's topic.
// Topics missing from `partitions` (unknown) are skipped, as Kafka does.
// Thread-safety: pure functions.
#pragma once

#include <map>
#include <vector>

#include "cloud-broker/groups/group_types.h"

namespace sluice::broker {

using PartitionCounts = std::map<TopicName, int32_t>;
using Subscriptions = std::map<MemberId, std::vector<TopicName>>;
// Every member of `subscriptions` has an entry (possibly empty); each list is sorted.
using Assignment = std::map<MemberId, std::vector<TopicPartition>>;

Assignment RangeAssign(const PartitionCounts& partitions, const Subscriptions& subscriptions);
Assignment RoundRobinAssign(const PartitionCounts& partitions, const Subscriptions& subscriptions);
Assignment Assign(AssignStrategy strategy, const PartitionCounts& partitions,
                  const Subscriptions& subscriptions);

}  // namespace sluice::broker
