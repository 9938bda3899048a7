// The controller's decision for one partition after broker failures (Kafka's ZooKeeper-era
// OfflinePartitionLeaderElection and ISR shrink on broker failure), as a pure function so it is
// tested without etcd. `live`: the brokers registered now whose incarnation has not changed since
// the controller last saw them (a restarted broker lost its in-memory state, so it counts as
// failed for the round that notices the restart, and live afterwards).
// Rules:
// - leader not live: the first live ISR member in replica order leads, leader_epoch + 1, the ISR
//   loses every non-live member. No live ISR member: leader "" (offline), leader_epoch + 1, the
//   ISR keeps only the last leader (Kafka's rule: never shrink the ISR to nothing, so only a
//   replica with every committed record may lead again) - unless unclean election is allowed and
//   a live replica exists: it leads with ISR = {it} (committed records may be lost).
// - leader live: non-live followers leave the ISR, leader and leader_epoch unchanged.
// - offline (leader ""): the first live ISR member in replica order leads, leader_epoch + 1, the
//   ISR loses its non-live members; otherwise as above (unclean, or stays offline unchanged).
// Any change sets version + 1 and controller_epoch; nullopt when nothing changes.
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "cloud-broker/replication/partition_state.h"

namespace sluice::broker {

// `incarnations`: every registered broker's incarnation. A leader registered under another
// incarnation than the state recorded restarted since it was elected: a leader is elected anew
// (it may be the same broker) with the epoch + 1, so one incarnation leads each epoch. The
// elected leader's incarnation is recorded (also for a live leader whose state has none yet).
std::optional<PartitionState> ReconcilePartition(
    const PartitionState& current, const std::set<std::string>& live, int64_t controller_epoch,
    bool unclean_leader_election = false,
    const std::map<std::string, int64_t>& incarnations = {});

}  // namespace sluice::broker
