#include "cloud-broker/groups/group_coordinator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "core/thread_name.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "groups";
}  // namespace

GroupCoordinator::GroupCoordinator(GroupOptions options, OffsetBackend& offsets,
                                   PartitionCountFn partitions, const Clock& clock,
                                   MetricsRegistry& metrics)
    : options_(options),
      offsets_(offsets),
      partitions_(std::move(partitions)),
      clock_(clock),
      rebalances_(metrics.GetCounter("sluice_broker_group_rebalances_total",
                                     "Consumer-group generation bumps (rebalances started)")),
      expired_(metrics.GetCounter("sluice_broker_group_members_expired_total",
                                  "Group members removed: session expired or missed a rebalance")),
      commits_(metrics.GetCounter("sluice_broker_group_offset_commits_total",
                                  "Offset commits written durably")),
      offsets_expired_(metrics.GetCounter(
          "sluice_broker_group_offsets_expired_total",
          "Groups whose committed offsets were forgotten (groups.offsets_retention)")),
      metrics_(metrics),
      rng_(std::random_device{}()) {}

GroupCoordinator::~GroupCoordinator() { StopReaper(); }

GroupStatus GroupCoordinator::Refuse(GroupErrc code, const std::string& what,
                                     const std::string& message) {
  metrics_
      .GetCounter("sluice_broker_group_requests_refused_total",
                  "Group requests refused (commits refused keep no offsets)",
                  {{"request", what}, {"reason", GroupErrcName(code)}})
      .Inc();
  refusal_log_.Log(LogLevel::kWarn, kComponent, what + GroupErrcName(code),
                   what + " refused: " + GroupErrcName(code) + ": " + message);
  return {code, message};
}

GroupStatus GroupCoordinator::CheckCoordinator(const GroupId& id, const std::string& what) {
  Result<CoordinatorInfo> where = offsets_.Locate(id);
  if (!where.ok()) {
    return Refuse(GroupErrc::kCoordinatorNotAvailable, what, where.status().message());
  }
  if (where->local) {
    return {};
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    groups_.erase(id);  // stale from when this broker coordinated it
  }
  // Not counted as a refusal: a client finding its coordinator, as after every failover.
  return {GroupErrc::kNotCoordinator,
          "group " + id.value() + " is coordinated by broker " +
              (where->broker_id.empty() ? std::string("(unknown)") : where->broker_id) +
              (where->url.empty() ? std::string() : " at " + where->url) +
              "; GET /v1/groups/" + id.value() + "/coordinator names it"};
}

GroupStatus GroupCoordinator::Coordinator(const GroupId& id, CoordinatorInfo* out) {
  Result<CoordinatorInfo> where = offsets_.Locate(id);
  if (!where.ok()) {
    return Refuse(GroupErrc::kCoordinatorNotAvailable, "coordinator", where.status().message());
  }
  *out = *where;
  return {};
}

MemberId GroupCoordinator::NewMemberIdLocked() {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "member-%016llx", static_cast<unsigned long long>(rng_()));
  return MemberId(buf);
}

void GroupCoordinator::UpdateRebalancingLocked(Group* g) {
  g->rebalancing = std::any_of(g->members.begin(), g->members.end(), [&](const auto& kv) {
    return kv.second.joined_generation != g->generation;
  });
}

void GroupCoordinator::RebalanceLocked(const GroupId& id, Group* g, const std::string& why) {
  ++g->generation;
  rebalances_.Inc();
  PartitionCounts counts;
  Subscriptions subs;
  int64_t max_timeout_ms = 0;
  for (const auto& [member, m] : g->members) {
    subs[member] = m.topics;
    max_timeout_ms = std::max(max_timeout_ms, m.session_timeout_ms);
    for (const TopicName& t : m.topics) {
      const int32_t n = partitions_(t);
      if (n > 0) {
        counts[t] = n;
      }
    }
  }
  g->assignment = Assign(g->strategy, counts, subs);
  g->rebalance_deadline_us = clock_.MonotonicUs() + max_timeout_ms * 1000;
  UpdateRebalancingLocked(g);
  LogInfo(kComponent, "group " + id.value() + " generation " + std::to_string(g->generation) +
                          " (" + why + "), " + std::to_string(g->members.size()) + " members");
}

GroupStatus GroupCoordinator::Join(const GroupId& id, const JoinRequest& req, JoinResult* out) {
  if (!IsValidGroupId(id.value())) {
    return Refuse(GroupErrc::kInvalidRequest, "join", "invalid group id");
  }
  if (req.topics.empty()) {
    return Refuse(GroupErrc::kInvalidRequest, "join", "topics must not be empty");
  }
  const int64_t timeout_ms =
      req.session_timeout_ms == 0 ? options_.default_session_timeout_ms : req.session_timeout_ms;
  if (timeout_ms < options_.min_session_timeout_ms ||
      timeout_ms > options_.max_session_timeout_ms) {
    return Refuse(GroupErrc::kInvalidRequest, "join",
                  "session_timeout_ms must be " + std::to_string(options_.min_session_timeout_ms) +
                      ".." + std::to_string(options_.max_session_timeout_ms));
  }
  std::vector<TopicName> topics(req.topics);
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  for (const TopicName& t : topics) {
    if (partitions_(t) <= 0) {
      return Refuse(GroupErrc::kUnknownTopic, "join", "unknown topic " + t.value());
    }
  }
  if (GroupStatus where = CheckCoordinator(id, "join"); !where.ok()) {
    return where;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto existing = groups_.find(id);
  if (existing == groups_.end() &&
      static_cast<int64_t>(groups_.size()) >= options_.max_groups) {
    return Refuse(GroupErrc::kTooManyGroups, "join",
                  std::to_string(groups_.size()) + " groups have members on this broker, the " +
                      "limit (groups.max_groups); retry once one empties");
  }
  const bool known = existing != groups_.end() && req.member_id.has_value() &&
                     existing->second.members.count(*req.member_id) > 0;
  if (existing != groups_.end() && !known &&
      static_cast<int64_t>(existing->second.members.size()) >= options_.max_members_per_group) {
    return Refuse(GroupErrc::kGroupFull, "join",
                  "group " + id.value() + " has " +
                      std::to_string(existing->second.members.size()) +
                      " members, the limit (groups.max_members)");
  }
  Group& g = existing != groups_.end() ? existing->second : groups_[id];
  const bool alone = g.members.empty() || (known && g.members.size() == 1);
  if (!alone && g.strategy != req.strategy) {  // g has members: nothing left behind
    return Refuse(
        GroupErrc::kInconsistentStrategy, "join",
        std::string("group ") + id.value() + " uses strategy " + AssignStrategyName(g.strategy));
  }
  const bool strategy_changed = g.strategy != req.strategy;
  g.strategy = req.strategy;
  MemberId member = req.member_id.value_or(MemberId());
  if (!req.member_id.has_value() || req.member_id->value().empty()) {
    do {
      member = NewMemberIdLocked();
    } while (g.members.count(member) > 0);
  }
  Member& m = g.members[member];
  const bool changed = !known || m.topics != topics || strategy_changed;
  m.topics = topics;
  m.session_timeout_ms = timeout_ms;
  m.last_seen_us = clock_.MonotonicUs();
  if (changed) {
    RebalanceLocked(id, &g,
                    known ? "member " + member.value() + " changed topics"
                          : "member " + member.value() + " joined");
  }
  m.joined_generation = g.generation;
  UpdateRebalancingLocked(&g);
  out->member_id = member;
  out->generation = g.generation;
  out->assignment = g.assignment[member];
  return {};
}

GroupStatus GroupCoordinator::Heartbeat(const GroupId& id, const MemberId& member,
                                        int64_t generation) {
  if (GroupStatus where = CheckCoordinator(id, "heartbeat"); !where.ok()) {
    return where;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto git = groups_.find(id);
  if (git == groups_.end() || git->second.members.count(member) == 0) {
    return Refuse(GroupErrc::kUnknownMember, "heartbeat",
                  "member " + member.value() + " is not in group " + id.value() + "; re-join");
  }
  Group& g = git->second;
  Member& m = g.members[member];
  m.last_seen_us = clock_.MonotonicUs();  // a member re-joining after a 409 stays alive
  if (generation != g.generation || m.joined_generation != g.generation) {
    return {GroupErrc::kRebalanceInProgress, "group " + id.value() + " is at generation " +
                                                 std::to_string(g.generation) +
                                                 "; re-join to get the new assignment"};
  }
  return {};
}

GroupStatus GroupCoordinator::Leave(const GroupId& id, const MemberId& member) {
  if (GroupStatus where = CheckCoordinator(id, "leave"); !where.ok()) {
    return where;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto git = groups_.find(id);
  if (git == groups_.end() || git->second.members.erase(member) == 0) {
    return Refuse(GroupErrc::kUnknownMember, "leave",
                  "member " + member.value() + " is not in group " + id.value());
  }
  if (git->second.members.empty()) {
    groups_.erase(git);  // forgotten (see the header); its offsets stay in the backend
    LogInfo(kComponent, "group " + id.value() + ": its last member " + member.value() + " left");
    return {};
  }
  RebalanceLocked(id, &git->second, "member " + member.value() + " left");
  return {};
}

GroupStatus GroupCoordinator::Commit(const GroupId& id, const MemberId& member, int64_t generation,
                                     const std::vector<CommittedOffset>& offsets) {
  if (GroupStatus where = CheckCoordinator(id, "commit"); !where.ok()) {
    return where;
  }
  std::unique_lock<std::mutex> lock(mu_);
  auto git = groups_.find(id);
  if (git == groups_.end() || git->second.members.count(member) == 0) {
    return Refuse(GroupErrc::kUnknownMember, "commit",
                  "member " + member.value() + " is not in group " + id.value());
  }
  Group& g = git->second;
  Member& m = g.members[member];
  if (generation != g.generation) {
    return Refuse(GroupErrc::kIllegalGeneration, "commit",
                  "generation " + std::to_string(generation) + " is stale; the group is at " +
                      std::to_string(g.generation));
  }
  if (m.joined_generation != g.generation) {
    return Refuse(GroupErrc::kRebalanceInProgress, "commit", "re-join first");
  }
  const std::vector<TopicPartition>& owned = g.assignment[member];
  for (const CommittedOffset& c : offsets) {
    if (c.offset.value() < 0) {
      return Refuse(GroupErrc::kInvalidRequest, "commit", "offset must be >= 0");
    }
    if (!std::binary_search(owned.begin(), owned.end(), c.tp)) {
      return Refuse(GroupErrc::kNotAssigned, "commit",
                    c.tp.topic.value() + "-" + std::to_string(c.tp.partition.value()) +
                        " is not assigned to " + member.value() + " in generation " +
                        std::to_string(g.generation));
    }
  }
  m.last_seen_us = clock_.MonotonicUs();
  lock.unlock();  // see the header: the write runs without the lock
  Status st = offsets_.Commit(id, offsets);
  if (!st.ok()) {
    return Refuse(st.code() == StatusCode::kFailedPrecondition ? GroupErrc::kNotCoordinator
                                                               : GroupErrc::kStorage,
                  "commit", st.message());
  }
  commits_.Inc();
  return {};
}

GroupStatus GroupCoordinator::Offsets(const GroupId& id, const std::optional<TopicName>& topic,
                                      std::vector<CommittedOffset>* out) {
  if (GroupStatus where = CheckCoordinator(id, "offsets"); !where.ok()) {
    return where;
  }
  Result<std::vector<CommittedOffset>> got = offsets_.Fetch(id, topic);
  if (!got.ok()) {
    return Refuse(got.status().code() == StatusCode::kFailedPrecondition
                      ? GroupErrc::kNotCoordinator
                      : GroupErrc::kCoordinatorNotAvailable,
                  "offsets", got.status().message());
  }
  *out = std::move(got).value();
  return {};
}

GroupStatus GroupCoordinator::Describe(const GroupId& id, std::optional<GroupInfo>* out) {
  std::vector<CommittedOffset> committed;
  if (GroupStatus st = Offsets(id, std::nullopt, &committed); !st.ok()) {
    return st;
  }
  out->reset();
  std::lock_guard<std::mutex> lock(mu_);
  auto git = groups_.find(id);
  if (git == groups_.end() && committed.empty()) {
    return {};
  }
  GroupInfo& info = out->emplace();
  info.group = id;
  info.state = "empty";
  if (git == groups_.end()) {
    return {};
  }
  const Group& g = git->second;
  info.generation = g.generation;
  info.strategy = AssignStrategyName(g.strategy);
  if (!g.members.empty()) {
    info.state = g.rebalancing ? "rebalancing" : "stable";
  }
  for (const auto& [member, m] : g.members) {
    MemberInfo mi;
    mi.member_id = member;
    mi.topics = m.topics;
    mi.session_timeout_ms = m.session_timeout_ms;
    mi.joined_generation = m.joined_generation;
    auto a = g.assignment.find(member);
    if (a != g.assignment.end()) {
      mi.assignment = a->second;
    }
    info.members.push_back(std::move(mi));
  }
  return {};
}

size_t GroupCoordinator::group_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return groups_.size();
}

size_t GroupCoordinator::ExpireOffsets() {
  if (options_.offsets_retention_ms < 0) {
    return 0;
  }
  std::set<GroupId> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, g] : groups_) {
      live.insert(id);
    }
  }
  // Without mu_ (the backend may write and wait for replicas); a group that gains members or a
  // commit meanwhile is safe: the backend re-checks each group's last activity under its lock.
  const std::vector<GroupId> expired = offsets_.Expire(options_.offsets_retention_ms, live);
  if (!expired.empty()) {
    offsets_expired_.Inc(expired.size());
    std::string names;
    for (size_t i = 0; i < expired.size() && i < 10; ++i) {
      names += (i == 0 ? "" : ", ") + expired[i].value();
    }
    LogInfo(kComponent, "forgot the offsets of " + std::to_string(expired.size()) +
                            " group(s) inactive for groups.offsets_retention: " + names +
                            (expired.size() > 10 ? ", ..." : ""));
  }
  return expired.size();
}

void GroupCoordinator::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_.MonotonicUs();
  for (auto git = groups_.begin(); git != groups_.end();) {
    const GroupId& id = git->first;
    Group& g = git->second;
    std::vector<std::string> removed;
    const bool deadline_passed = g.rebalancing && now > g.rebalance_deadline_us;
    for (auto it = g.members.begin(); it != g.members.end();) {
      const Member& m = it->second;
      const bool expired = now - m.last_seen_us > m.session_timeout_ms * 1000;
      const bool missed = deadline_passed && m.joined_generation != g.generation;
      if (expired || missed) {
        removed.push_back(it->first.value() +
                          (expired ? " (session expired)" : " (did not re-join in time)"));
        it = g.members.erase(it);
      } else {
        ++it;
      }
    }
    if (!removed.empty()) {
      expired_.Inc(removed.size());
      std::string who;
      for (const std::string& r : removed) {
        who += (who.empty() ? "" : ", ") + r;
      }
      LogWarn(kComponent, "group " + id.value() + ": removed " + who);
      if (!g.members.empty()) {
        RebalanceLocked(id, &g, "members removed");
      }
    }
    if (g.members.empty()) {
      git = groups_.erase(git);  // forgotten (see the header); its offsets stay
    } else {
      ++git;
    }
  }
}

void GroupCoordinator::StartReaper() {
  std::lock_guard<std::mutex> lock(reaper_mu_);
  if (reaper_.joinable()) {
    return;
  }
  reaper_stop_ = false;
  reaper_ = std::thread([this] {
    SetCurrentThreadName("group-reaper");
    int64_t next_expire_us = 0;
    std::unique_lock<std::mutex> l(reaper_mu_);
    while (!reaper_stop_) {
      reaper_cv_.wait_for(l, std::chrono::milliseconds(options_.reaper_interval_ms));
      if (reaper_stop_) {
        break;
      }
      l.unlock();
      Tick();
      offsets_.Maintain();
      const int64_t now_us = clock_.MonotonicUs();
      if (options_.offsets_retention_ms >= 0 && now_us >= next_expire_us) {
        ExpireOffsets();
        next_expire_us =
            now_us + std::clamp<int64_t>(options_.offsets_retention_ms / 10, 50, 60000) * 1000;
      }
      l.lock();
    }
  });
}

void GroupCoordinator::StopReaper() {
  {
    std::lock_guard<std::mutex> lock(reaper_mu_);
    reaper_stop_ = true;
  }
  reaper_cv_.notify_all();
  if (reaper_.joinable()) {
    reaper_.join();
  }
}

}  // namespace sluice::broker
