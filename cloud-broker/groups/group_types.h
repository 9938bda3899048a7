// Value types shared by the consumer-group module: group and member ids, topic-partitions,
// committed offsets, assignment strategies, and the module's error codes (each maps to one HTTP
// status and one `"error"` string of docs/API.md, "Consumer groups").
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/strong_types.h"

namespace sluice::broker {

using GroupId = NamedType<std::string, struct GroupIdTag>;
using MemberId = NamedType<std::string, struct MemberIdTag>;

struct TopicPartition {
  TopicName topic;
  PartitionId partition;
  auto operator<=>(const TopicPartition&) const = default;
};

// A committed offset is the NEXT offset the group will read (Kafka's convention).
struct CommittedOffset {
  TopicPartition tp;
  Offset offset;
  bool operator==(const CommittedOffset&) const = default;
};

enum class AssignStrategy { kRange, kRoundRobin };
// "range" | "roundrobin" (Kafka's assignor names); false otherwise.
bool ParseAssignStrategy(const std::string& text, AssignStrategy* out);
const char* AssignStrategyName(AssignStrategy s);

// Group ids name files under <data_dir>/groups/, so they are restricted to 1..200 characters of
// [A-Za-z0-9._-], and neither "." nor "..".
bool IsValidGroupId(const std::string& id);
// Member ids (chosen by the broker, or by a client re-joining): 1..kMaxMemberIdBytes bytes of
// printable ASCII without spaces, so they are bounded and safe to log.
inline constexpr size_t kMaxMemberIdBytes = 256;
bool IsValidMemberId(const std::string& id);

enum class GroupErrc {
  kOk = 0,
  kInvalidRequest,        // 400 invalid_request
  kUnknownTopic,          // 404 unknown_topic
  kUnknownMember,         // 404 unknown_member_id: re-join without (or with a new) member_id
  kRebalanceInProgress,   // 409 rebalance_in_progress: re-join to get the new assignment
  kIllegalGeneration,     // 409 illegal_generation: a commit from an older generation
  kNotAssigned,           // 409 partition_not_assigned: committing a partition you do not own
  kInconsistentStrategy,  // 409 inconsistent_strategy: the group uses another assignor
  kStorage,               // 503 storage_unavailable: the offsets could not be written
  kNotCoordinator,        // 421 not_coordinator: another broker coordinates the group
  kCoordinatorNotAvailable,  // 503 coordinator_not_available: none can be named now; retry
  kGroupFull,                // 409 group_max_size_reached: groups.max_members (Kafka's name)
  kTooManyGroups,            // 503 too_many_groups: groups.max_groups groups have members now
};

struct GroupStatus {
  GroupErrc code = GroupErrc::kOk;
  std::string message;
  bool ok() const { return code == GroupErrc::kOk; }
};

const char* GroupErrcName(GroupErrc code);
int GroupErrcHttpStatus(GroupErrc code);

}  // namespace sluice::broker
