#include "cloud-broker/replication/leader_election.h"

#include <vector>

namespace sluice::broker {
namespace {

bool IsLive(const std::set<std::string>& live, const std::string& id) {
  return live.count(id) != 0;
}

std::vector<std::string> LiveOnly(const std::vector<std::string>& ids,
                                  const std::set<std::string>& live) {
  std::vector<std::string> out;
  for (const std::string& id : ids) {
    if (IsLive(live, id)) {
      out.push_back(id);
    }
  }
  return out;
}

// The first replica (in replica order, the preferred leader first) that is live and, unless
// `any_replica`, in the ISR; "" if none.
std::string FirstEligible(const PartitionState& s, const std::set<std::string>& live,
                          bool any_replica) {
  for (const std::string& id : s.replicas) {
    if (IsLive(live, id) && (any_replica || s.InIsr(id))) {
      return id;
    }
  }
  return "";
}

}  // namespace

std::optional<PartitionState> ReconcilePartition(
    const PartitionState& current, const std::set<std::string>& live, int64_t controller_epoch,
    bool unclean_leader_election, const std::map<std::string, int64_t>& incarnations) {
  PartitionState next = current;
  auto incarnation_of = [&](const std::string& id) -> int64_t {
    auto it = incarnations.find(id);
    return it == incarnations.end() ? 0 : it->second;
  };
  const int64_t leader_now = current.leader.empty() ? 0 : incarnation_of(current.leader);
  const bool leader_restarted = current.leader_incarnation != 0 && leader_now != 0 &&
                                leader_now != current.leader_incarnation;
  if (!current.leader.empty() && IsLive(live, current.leader) && !leader_restarted) {
    // Only followers may have failed: shrink the ISR (the leader stays in it).
    next.isr = LiveOnly(current.isr, live);
    if (current.leader_incarnation == 0 && leader_now != 0) {
      next.leader_incarnation = leader_now;  // record it (a state from before the field)
    }
  } else {
    std::string leader = FirstEligible(current, live, false);
    if (!leader.empty()) {
      next.leader = leader;
      next.isr = LiveOnly(current.isr, live);
    } else if (unclean_leader_election &&
               !(leader = FirstEligible(current, live, true)).empty()) {
      next.leader = leader;
      next.isr = {leader};
    } else if (!current.leader.empty()) {
      // Offline. The ISR keeps the last leader only: it has every committed record.
      next.leader = "";
      next.isr = {current.leader};
    }
    if (next.leader != current.leader || leader_restarted) {
      next.leader_epoch = current.leader_epoch + 1;
      next.leader_incarnation = next.leader.empty() ? 0 : incarnation_of(next.leader);
    }
  }
  if (next.leader == current.leader && next.isr == current.isr &&
      next.leader_epoch == current.leader_epoch &&
      next.leader_incarnation == current.leader_incarnation) {
    return std::nullopt;
  }
  next.version = current.version + 1;
  next.controller_epoch = controller_epoch;
  return next;
}

}  // namespace sluice::broker
