// The replication state of a region in etcd (Kafka's ZooKeeper-era layout, one region per
// prefix). Every key is under /sluice/regions/<region>/:
//   brokers/<id>                 {"id","region","url"}, under the broker's lease
//                                (broker_registry.h; create revision = incarnation)
//   controller                   the controller election's name (etcd election API); the
//                                leader key's create revision is the controller epoch
//   topics/<topic>               {"name","partitions","replication_factor"}
//   partitions/<topic>/<p>       PartitionState JSON, changed only by compare-and-swap on its
//                                mod revision, guarded by the writer's own leader key
// Replicas are brokers of the same region only: a record never leaves its region, not even as a
// replica (placement takes the region's registered brokers, nothing else).
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud-broker/log/topic_config.h"
#include "core/status.h"

namespace sluice::broker {

struct PartitionState {
  std::vector<std::string> replicas;  // assigned replicas, preferred leader first
  std::string leader;                 // broker id; empty: offline (no eligible replica)
  int32_t leader_epoch = 0;           // +1 at every leader change (and leader restart)
  // The leader's incarnation (its registration's create revision) when it was elected; 0: not
  // recorded. A leader registered under another incarnation restarted since: it must not lead
  // this epoch again (its log may have lost an unsynced tail), so the controller elects anew.
  int64_t leader_incarnation = 0;
  std::vector<std::string> isr;       // in-sync replicas, leader included
  int64_t controller_epoch = 0;       // the controller that wrote it (its leader key revision)
  // Bumped at every change (leader or ISR), like Kafka's partition epoch / zkVersion: an ISR
  // change names the version it replaces.
  int64_t version = 0;

  bool InIsr(const std::string& id) const;
  bool IsReplica(const std::string& id) const;
  bool operator==(const PartitionState& o) const;
};

std::string RegionPrefix(const std::string& region);  // "/sluice/regions/<region>/"
std::string ControllerElection(const std::string& region);
std::string TopicKey(const std::string& region, const std::string& topic);
std::string TopicsPrefix(const std::string& region);
std::string PartitionKey(const std::string& region, const std::string& topic, int32_t partition);
std::string PartitionsPrefix(const std::string& region);
// Splits a PartitionKey back into topic and partition; false for anything else.
bool ParsePartitionKey(const std::string& region, const std::string& key, std::string* topic,
                       int32_t* partition);

std::string PartitionStateJson(const PartitionState& s);
// kCorruption with the reason for anything that is not a PartitionState.
Result<PartitionState> ParsePartitionState(const std::string& json);

struct TopicAssignment {
  std::string name;
  int32_t partitions = 0;
  int32_t replication_factor = 0;
  // Per-topic log overrides (retention, flush), applied by every replica to its local log, so
  // all replicas keep and sync the same. Stored as TopicConfigJson in "config".
  TopicConfig config;
};
std::string TopicAssignmentJson(const TopicAssignment& t);
Result<TopicAssignment> ParseTopicAssignment(const std::string& json);

// Kafka's replica placement without racks: partition p's replicas are `factor` consecutive
// brokers of the sorted live list starting at (start + p) % n, so leaders spread evenly.
// kInvalidArgument if factor < 1 or more than the brokers available.
Result<std::vector<std::vector<std::string>>> AssignReplicas(std::vector<std::string> brokers,
                                                             int32_t partitions, int32_t factor,
                                                             int32_t start = 0);

}  // namespace sluice::broker
