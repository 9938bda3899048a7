// OffsetBackend: where a GroupCoordinator keeps committed offsets, and whether this broker
// coordinates a group at all.
// - OffsetStore (offset_store.h): a single-broker region; files under <data_dir>/groups, every
//   group coordinated here.
// - ReplicatedOffsets (cloud-broker/replication/replicated_offsets.h): a replicated region;
//   commits are records of the internal topic __consumer_offsets (Kafka's design), and a group
//   is coordinated by the leader of the partition its id hashes to.
// Thread-safety: implementations are thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cloud-broker/groups/group_types.h"
#include "core/status.h"

namespace sluice::broker {

// Who coordinates a group. `local`: this broker (broker_id/url may then be empty).
struct CoordinatorInfo {
  bool local = true;
  std::string broker_id;
  std::string url;
};

class OffsetBackend {
 public:
  virtual ~OffsetBackend() = default;

  // The group's coordinator. kUnavailable when none can be named now (no leader yet, the
  // offsets topic cannot be created): retry.
  virtual Result<CoordinatorInfo> Locate(const GroupId& group) = 0;

  // Records the offsets durably (replicated, where the backend replicates) before returning.
  // kFailedPrecondition: this broker no longer coordinates the group; kUnavailable or
  // kIOError: not recorded (it may still appear later if a replicated write timed out).
  virtual Status Commit(const GroupId& group, const std::vector<CommittedOffset>& offsets) = 0;

  // The latest committed offsets of `group` (all topics, or only `topic`), sorted.
  // kFailedPrecondition when this broker does not coordinate the group.
  virtual Result<std::vector<CommittedOffset>> Fetch(const GroupId& group,
                                                     const std::optional<TopicName>& topic) = 0;

  // Offsets retention (Kafka's offsets.retention.minutes; GroupCoordinator::ExpireOffsets):
  // forgets, durably, the offsets of every group this broker coordinates that is not in `live`
  // (the groups with members now) and was last active (a commit, or members) more than
  // `retention_ms` ago; a group in `live` counts as active now. Returns the groups forgotten.
  virtual std::vector<GroupId> Expire(int64_t retention_ms, const std::set<GroupId>& live) = 0;

  // Periodic housekeeping, called from the coordinator's reaper thread without its lock.
  virtual void Maintain() {}
};

}  // namespace sluice::broker
