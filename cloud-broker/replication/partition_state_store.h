// Reading and compare-and-swapping partition states in etcd (partition_state.h's layout). Every
// change of a PartitionState is one etcd transaction that names the mod revision it replaces,
// like Kafka's conditional ZooKeeper update on the partition's zkVersion; the writer adds its own
// guards (the controller: its leader key's create revision; a replica leader: its registration).
// A swap that loses a race is an outcome (CasOutcome), not an error: re-read and decide again.
// Thread-safety: free functions over a thread-safe EtcdClient.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloud-broker/replication/etcd_client.h"
#include "cloud-broker/replication/partition_state.h"
#include "core/status.h"

namespace sluice::broker {

// A partition state as read, with the mod revision a swap must name.
struct VersionedPartitionState {
  std::string topic;
  int32_t partition = 0;
  PartitionState state;
  int64_t mod_revision = 0;
};

// kNotFound if the partition has no state; kCorruption if its value is not a PartitionState.
Result<VersionedPartitionState> ReadPartitionState(EtcdClient& etcd, const std::string& region,
                                                   const std::string& topic, int32_t partition);

// Every partition state of the region, in key order. A malformed key or value is logged and
// skipped (one bad key must not stop the controller from handling the others).
Result<std::vector<VersionedPartitionState>> ReadPartitionStates(EtcdClient& etcd,
                                                                 const std::string& region);
// The same from key-values already read (a range under PartitionsPrefix(region)).
std::vector<VersionedPartitionState> PartitionStatesFromKvs(const std::string& region,
                                                            const std::vector<EtcdKeyValue>& kvs);

enum class CasOutcome {
  kSwapped,      // written; *new_mod_revision (if asked) is its mod revision
  kStale,        // the partition changed since expected_mod_revision (or is gone): re-read
  kGuardFailed,  // one of extra_compares did not hold (the writer is fenced: stop writing)
};
const char* CasOutcomeName(CasOutcome outcome);

// Writes `new_state` for (topic, partition) if its key still has `expected_mod_revision` and
// every extra compare holds, in one transaction. When both fail, kGuardFailed wins. Errors only
// for transport and etcd failures (kUnavailable: retry).
Result<CasOutcome> CompareAndSwap(EtcdClient& etcd, const std::string& region,
                                  const std::string& topic, int32_t partition,
                                  int64_t expected_mod_revision, const PartitionState& new_state,
                                  const std::vector<EtcdCompare>& extra_compares = {},
                                  int64_t* new_mod_revision = nullptr);

// Whether `compare` holds for `kv` (nullopt: the key is absent), as etcd evaluates it.
bool CompareHolds(const EtcdCompare& compare, const std::optional<EtcdKeyValue>& kv);

}  // namespace sluice::broker
