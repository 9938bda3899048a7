// GroupCoordinator: Kafka-style consumer groups on one broker (docs/API.md, "Consumer groups";
// cloud-broker/README.md, "Consumer groups").
//
// Simplified eager protocol: every membership change (a new member, a leave, a member whose
// session expired, a member changing its topics) bumps the group's generation and recomputes the
// whole assignment with the group's assignor. The member that caused it gets the new assignment
// in its join answer; every other member learns of it from its next heartbeat
// (kRebalanceInProgress) and re-joins to get its share. The rebalance completes when every
// member has re-joined at the new generation, or after the rebalance timeout (the largest
// session timeout in the group) the members that did not re-join are removed (another bump).
// Commits are accepted only from a member at the current generation, for partitions assigned to
// it, so a member that lost a partition cannot move its offset: whoever owns it next reads from
// the last offset committed by the previous owner (at-least-once).
// Group membership is in memory (members re-join after a broker restart or when the group's
// coordinator moves), bounded per group and in groups; a group whose last member left or expired
// is forgotten at once (as after a restart: the next join starts it at generation 1), its
// committed offsets kept; committed offsets are durable in the OffsetBackend: files on a single
// broker, the replicated __consumer_offsets topic in a replicated region, where every request
// for a group another broker coordinates is refused kNotCoordinator (Coordinator() names it)
// and the group's in-memory state here is dropped (if this broker coordinates it again later,
// its members re-join rather than act on a generation from before).
// A commit is checked (member, generation, assignment) under the lock and written after it is
// released, so a slow replicated write does not hold up other groups' heartbeats. A rebalance
// that slips in between cannot lose records: the member committed only what it processed, so
// the next owner re-reads at most what the committed offset already covers (at-least-once).
// Time comes from the injected Clock; Tick() expires sessions and rebalances. StartReaper runs
// Tick on its own thread in the broker; unit tests call Tick with a ManualClock instead.
// Thread-safety: thread-safe (one mutex; never held while the backend writes or loads).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "cloud-broker/groups/assignor.h"
#include "cloud-broker/groups/offset_backend.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"

namespace sluice::broker {

struct GroupOptions {
  int64_t min_session_timeout_ms = 100;
  int64_t max_session_timeout_ms = 300000;
  int64_t default_session_timeout_ms = 10000;
  int64_t reaper_interval_ms = 50;  // how often StartReaper's thread calls Tick
  // Members of one group at most (groups.max_members; Kafka's group.max.size): every join
  // rebalances over all members, so an unbounded group would also be unbounded CPU.
  int64_t max_members_per_group = 1000;
  // Groups with members on this broker at most (groups.max_groups): a join that would start
  // another is refused 503 too_many_groups until one empties.
  int64_t max_groups = 10000;
  // groups.offsets_retention (Kafka's offsets.retention.minutes, 7 days): the committed offsets
  // of a group without members are forgotten once it was inactive (no commit, no members) this
  // long; -1: kept forever. Checked by the reaper every tenth of it (50 ms..1 min).
  int64_t offsets_retention_ms = 7LL * 24 * 3600 * 1000;
};

// Partition count of a topic, or -1 if it does not exist.
using PartitionCountFn = std::function<int32_t(const TopicName&)>;

struct JoinRequest {
  std::optional<MemberId> member_id;  // absent on a first join: the coordinator assigns one
  std::vector<TopicName> topics;
  AssignStrategy strategy = AssignStrategy::kRange;
  int64_t session_timeout_ms = 0;  // 0: options' default
};

struct JoinResult {
  MemberId member_id;
  int64_t generation = 0;
  std::vector<TopicPartition> assignment;
};

struct MemberInfo {
  MemberId member_id;
  std::vector<TopicName> topics;
  int64_t session_timeout_ms = 0;
  int64_t joined_generation = 0;  // < generation: has not re-joined since the last rebalance
  std::vector<TopicPartition> assignment;
};

struct GroupInfo {
  GroupId group;
  int64_t generation = 0;
  std::string state;  // "empty" | "rebalancing" | "stable"
  std::string strategy;
  std::vector<MemberInfo> members;
};

class GroupCoordinator {
 public:
  GroupCoordinator(GroupOptions options, OffsetBackend& offsets, PartitionCountFn partitions,
                   const Clock& clock, MetricsRegistry& metrics);
  ~GroupCoordinator();
  GroupCoordinator(const GroupCoordinator&) = delete;
  GroupCoordinator& operator=(const GroupCoordinator&) = delete;

  GroupStatus Join(const GroupId& group, const JoinRequest& request, JoinResult* result);
  GroupStatus Heartbeat(const GroupId& group, const MemberId& member, int64_t generation);
  GroupStatus Leave(const GroupId& group, const MemberId& member);
  GroupStatus Commit(const GroupId& group, const MemberId& member, int64_t generation,
                     const std::vector<CommittedOffset>& offsets);
  GroupStatus Offsets(const GroupId& group, const std::optional<TopicName>& topic,
                      std::vector<CommittedOffset>* out);
  // *out nullopt if the group has neither members nor committed offsets.
  GroupStatus Describe(const GroupId& group, std::optional<GroupInfo>* out);
  // Which broker coordinates `group` (any broker answers; Kafka's FindCoordinator).
  GroupStatus Coordinator(const GroupId& group, CoordinatorInfo* out);

  // Removes members whose session expired and members that missed a rebalance's deadline, and
  // forgets groups left without members.
  void Tick();
  // Groups with members now.
  size_t group_count() const;
  // Offsets retention now (the reaper calls it every tenth of the retention): returns how many
  // groups' offsets were forgotten.
  size_t ExpireOffsets();
  void StartReaper();
  void StopReaper();

 private:
  struct Member {
    std::vector<TopicName> topics;
    int64_t session_timeout_ms = 0;
    int64_t last_seen_us = 0;
    int64_t joined_generation = 0;
  };
  struct Group {
    int64_t generation = 0;
    AssignStrategy strategy = AssignStrategy::kRange;
    std::map<MemberId, Member> members;
    Assignment assignment;
    bool rebalancing = false;
    int64_t rebalance_deadline_us = 0;
  };

  // New generation and assignment for the current members. Caller holds mu_.
  void RebalanceLocked(const GroupId& id, Group* g, const std::string& why);
  void UpdateRebalancingLocked(Group* g);
  MemberId NewMemberIdLocked();
  GroupStatus Refuse(GroupErrc code, const std::string& what, const std::string& message);
  // OK if this broker coordinates `group`; otherwise kNotCoordinator (and the group's state
  // here is dropped) or kCoordinatorNotAvailable. Called without mu_.
  GroupStatus CheckCoordinator(const GroupId& group, const std::string& what);

  const GroupOptions options_;
  OffsetBackend& offsets_;
  const PartitionCountFn partitions_;
  const Clock& clock_;
  Counter& rebalances_;
  Counter& expired_;
  Counter& commits_;
  Counter& offsets_expired_;
  MetricsRegistry& metrics_;
  RateLimitedLog refusal_log_;

  mutable std::mutex mu_;
  std::map<GroupId, Group> groups_;
  std::mt19937_64 rng_;

  std::mutex reaper_mu_;
  std::condition_variable reaper_cv_;
  bool reaper_stop_ = false;
  std::thread reaper_;
};

}  // namespace sluice::broker
