// ReplicatedOffsets: consumer-group committed offsets of a replicated region, kept the way Kafka
// keeps them: as records of an internal replicated topic, __consumer_offsets, so they survive
// the loss of any broker exactly as produced records do.
//
// Placement. Group g belongs to partition crc32c(g) % partitions of the topic; that partition's
// leader is g's coordinator (Kafka's FindCoordinator). Other brokers answer kNotCoordinator
// and Locate names the leader. The topic is created on first use with the configured
// replication factor and refused (kUnavailable: retry) while fewer brokers are registered, so
// it is never created with fewer replicas than asked (Kafka's offsets.topic.replication.factor).
//
// Records (key = group id, value = kind byte + OffsetStore::EncodeEntry):
//   kind 1 (commit): the offsets of one commit request, merged over the group's earlier ones;
//   kind 2 (group state): every offset of the group, replacing what came before;
//   kind 3 (expired): the group's offsets are forgotten (retention, GroupCoordinator).
// Each entry carries when its group was last active (its commit; a state record the group's
// own time), from which retention counts after a reload.
// A commit is appended with this broker's leader epoch and answered once the high watermark
// covers it (acks=all, min_insync_replicas). After every kSnapshotCommits commits, and every
// snapshot_interval_ms, the leader appends one group-state record per group of the partition,
// so time retention of the topic (log.retention_*) never removes the latest offsets of a
// group that is still there.
// Loading. When this broker leads a partition in an epoch it has not loaded, it replays the
// partition's whole log up to its log end (not the high watermark: a new leader's high
// watermark may lag what the old one acknowledged) before answering for any of its groups.
// A commit whose replication failed makes the partition reload at its next use: the record
// may survive in the log (a timed-out commit may take effect, as in Kafka).
// Thread-safety: thread-safe. One mutex per partition, held across a commit's append and
// replication wait, so a partition's commits apply in log order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloud-broker/groups/offset_backend.h"
#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/replication/etcd_client.h"
#include "cloud-broker/replication/replica_manager.h"
#include "cloud-broker/residency/residency_policy.h"
#include "core/clock.h"

namespace sluice::broker {

inline constexpr const char* kOffsetsTopic = kConsumerOffsetsTopic;  // log/topic_store.h

struct ReplicatedOffsetsOptions {
  std::string broker_id;
  // The broker's region and residency policy: where the offsets topic's replicas may be.
  const ResidencyPolicy* residency = nullptr;
  int32_t partitions = 8;           // of __consumer_offsets (replication.offsets_partitions)
  int32_t replication_factor = 3;   // replication.factor
  int64_t replication_timeout_ms = 10000;
  int64_t snapshot_interval_ms = 3600 * 1000;
  const Clock* clock = &SystemClock::Instance();
};

class ReplicatedOffsets : public OffsetBackend {
 public:
  static constexpr int64_t kSnapshotCommits = 10000;
  static constexpr uint8_t kKindCommit = 1;
  static constexpr uint8_t kKindGroupState = 2;
  static constexpr uint8_t kKindExpired = 3;

  ReplicatedOffsets(ReplicatedOffsetsOptions options, ReplicaManager& replicas, EtcdClient& etcd,
                    TopicStore& store);

  Result<CoordinatorInfo> Locate(const GroupId& group) override;
  Status Commit(const GroupId& group, const std::vector<CommittedOffset>& offsets) override;
  Result<std::vector<CommittedOffset>> Fetch(const GroupId& group,
                                             const std::optional<TopicName>& topic) override;
  void Maintain() override;
  std::vector<GroupId> Expire(int64_t retention_ms, const std::set<GroupId>& live) override;

  // The partition of __consumer_offsets that holds `group`.
  int32_t PartitionOf(const GroupId& group) const;

 private:
  struct GroupOffsets {
    std::map<TopicPartition, Offset> offsets;
    int64_t active_ms = 0;  // when the group was last active (retention)
  };
  struct Slot {
    std::mutex mu;
    int32_t loaded_epoch = -1;  // -1: reload at next use
    std::map<GroupId, GroupOffsets> groups;
    int64_t commits_since_snapshot = 0;
    int64_t last_snapshot_ms = 0;
  };

  // Creates the topic if the region does not have it yet (OK if another broker did).
  Status EnsureTopic();
  // This broker leads `p`: its log, loaded for the current epoch (slot.mu held by the caller).
  // kFailedPrecondition when another broker leads it; with `to_write`, kUnavailable when the
  // in-sync set is below min_insync_replicas (as produce with acks=all: nothing is written).
  Result<PartitionLog*> LeadLocked(int32_t p, Slot& slot, bool to_write, int32_t* epoch);
  Status LoadLocked(int32_t p, PartitionLog& log, Slot& slot);
  // Appends records (key, value) and waits for the in-sync replicas (slot.mu held).
  Status AppendLocked(int32_t p, PartitionLog& log, int32_t epoch,
                      const std::vector<std::pair<std::string, std::string>>& records);
  // AppendLocked in batches of kSnapshotGroupsPerBatch records; *appended: how many of
  // `records` (a prefix) were replicated before any error.
  Status AppendInBatchesLocked(int32_t p, PartitionLog& log, int32_t epoch,
                               const std::vector<std::pair<std::string, std::string>>& records,
                               size_t* appended);
  Status SnapshotLocked(int32_t p, PartitionLog& log, int32_t epoch, Slot& slot);

  const ReplicatedOffsetsOptions options_;
  ReplicaManager& replicas_;
  EtcdClient& etcd_;
  TopicStore& store_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex maintain_mu_;
  int64_t last_maintain_ms_ = 0;
};

}  // namespace sluice::broker
