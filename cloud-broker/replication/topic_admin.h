// Topic creation in a region (Kafka's ZooKeeper-era AdminUtils.createTopic, with etcd): places
// the replicas on the region's registered brokers only (a record never leaves its region, not
// even as a replica) and writes the topic key and every partition's initial state in one
// transaction guarded by the topic key being absent, so two creators cannot race.
// Thread-safety: free functions over a thread-safe EtcdClient.
#pragma once

#include <cstdint>
#include <string>

#include "cloud-broker/replication/etcd_client.h"
#include "cloud-broker/replication/partition_state.h"
#include "cloud-broker/residency/residency_policy.h"
#include "core/status.h"

namespace sluice::broker {

// One transaction holds the topic key and every partition: etcd's default --max-txn-ops is 128.
constexpr int32_t kMaxPartitionsPerTopic = 127;

// The replication factor a caller picks when none is configured: min(3, live brokers).
int32_t DefaultReplicationFactor(size_t live_brokers);

// Creates `name` with `partitions` partitions of `replication_factor` replicas each. Partition
// p's initial state: replicas from AssignReplicas (leaders spread; the start broker is derived
// from the name so topics do not all lead on one broker), leader = first replica,
// leader_epoch 0, isr = replicas, controller_epoch 0, version 0.
// Errors: kInvalidArgument (bad name, partitions outside 1..kMaxPartitionsPerTopic, factor < 1
// or above the live brokers),
// kFailedPrecondition (the topic exists), kUnavailable (etcd unreachable: retry).
// On success returns the assignment written.
// `config`: the topic's log overrides (retention, flush; its partitions are `partitions`), kept
// in the topic key for every replica to apply.
// Placement takes the broker's residency (its region and the deployment's policy), never a bare
// region string: replicas are only brokers registered in that region (a registration that names
// another region is not a member, broker_registry.h), so no copy of a record leaves it.
Result<TopicAssignment> CreateTopic(EtcdClient& etcd, const ResidencyPolicy& residency,
                                    const std::string& name, int32_t partitions,
                                    int32_t replication_factor, const TopicConfig& config = {});

}  // namespace sluice::broker
