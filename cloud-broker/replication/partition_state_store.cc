#include "cloud-broker/replication/partition_state_store.h"

#include "core/logging.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "partition-state";

template <typename T>
bool Apply(EtcdCompare::Op op, const T& actual, const T& wanted) {
  switch (op) {
    case EtcdCompare::Op::kEqual:
      return actual == wanted;
    case EtcdCompare::Op::kNotEqual:
      return actual != wanted;
    case EtcdCompare::Op::kGreater:
      return actual > wanted;
    case EtcdCompare::Op::kLess:
      return actual < wanted;
  }
  return false;
}

std::optional<EtcdKeyValue> First(const std::vector<EtcdKeyValue>& range) {
  if (range.empty()) {
    return std::nullopt;
  }
  return range[0];
}

}  // namespace

const char* CasOutcomeName(CasOutcome outcome) {
  switch (outcome) {
    case CasOutcome::kSwapped:
      return "swapped";
    case CasOutcome::kStale:
      return "stale";
    case CasOutcome::kGuardFailed:
      return "guard failed";
  }
  return "?";
}

bool CompareHolds(const EtcdCompare& compare, const std::optional<EtcdKeyValue>& kv) {
  const EtcdKeyValue absent;
  const EtcdKeyValue& k = kv.has_value() ? *kv : absent;
  switch (compare.target) {
    case EtcdCompare::Target::kCreateRevision:
      return Apply(compare.op, k.create_revision, compare.number);
    case EtcdCompare::Target::kModRevision:
      return Apply(compare.op, k.mod_revision, compare.number);
    case EtcdCompare::Target::kVersion:
      return Apply(compare.op, k.version, compare.number);
    case EtcdCompare::Target::kValue:
      // etcd fails a value comparison on an absent key.
      return kv.has_value() && Apply(compare.op, k.value, compare.value);
  }
  return false;
}

Result<VersionedPartitionState> ReadPartitionState(EtcdClient& etcd, const std::string& region,
                                                   const std::string& topic, int32_t partition) {
  const std::string key = PartitionKey(region, topic, partition);
  Result<std::optional<EtcdKeyValue>> kv = etcd.Get(key);
  if (!kv.ok()) {
    return kv.status();
  }
  if (!kv->has_value()) {
    return Status::NotFound("no partition state at " + key);
  }
  Result<PartitionState> state = ParsePartitionState((*kv)->value);
  if (!state.ok()) {
    return Status::Corruption(key + ": " + state.status().message());
  }
  return VersionedPartitionState{topic, partition, std::move(state).value(),
                                 (*kv)->mod_revision};
}

std::vector<VersionedPartitionState> PartitionStatesFromKvs(const std::string& region,
                                                            const std::vector<EtcdKeyValue>& kvs) {
  std::vector<VersionedPartitionState> out;
  for (const EtcdKeyValue& kv : kvs) {
    VersionedPartitionState v;
    if (!ParsePartitionKey(region, kv.key, &v.topic, &v.partition)) {
      LogWarn(kComponent, "ignoring a key that is not a partition: " + kv.key);
      continue;
    }
    Result<PartitionState> state = ParsePartitionState(kv.value);
    if (!state.ok()) {
      LogWarn(kComponent, "ignoring " + kv.key + ": " + state.status().message());
      continue;
    }
    v.state = std::move(state).value();
    v.mod_revision = kv.mod_revision;
    out.push_back(std::move(v));
  }
  return out;
}

Result<std::vector<VersionedPartitionState>> ReadPartitionStates(EtcdClient& etcd,
                                                                 const std::string& region) {
  Result<std::vector<EtcdKeyValue>> kvs = etcd.GetPrefix(PartitionsPrefix(region));
  if (!kvs.ok()) {
    return kvs.status();
  }
  return PartitionStatesFromKvs(region, *kvs);
}

Result<CasOutcome> CompareAndSwap(EtcdClient& etcd, const std::string& region,
                                  const std::string& topic, int32_t partition,
                                  int64_t expected_mod_revision, const PartitionState& new_state,
                                  const std::vector<EtcdCompare>& extra_compares,
                                  int64_t* new_mod_revision) {
  const std::string key = PartitionKey(region, topic, partition);
  std::vector<EtcdCompare> compares = extra_compares;
  compares.push_back(EtcdCompare::ModRevisionIs(key, expected_mod_revision));
  // On failure, read back every compared key to tell which comparison failed.
  std::vector<EtcdOp> failure;
  for (const EtcdCompare& c : extra_compares) {
    failure.push_back(EtcdOp::Get(c.key));
  }
  Result<EtcdTxnResult> txn =
      etcd.Txn(compares, {EtcdOp::Put(key, PartitionStateJson(new_state))}, failure);
  if (!txn.ok()) {
    return txn.status();
  }
  if (txn->succeeded) {
    if (new_mod_revision != nullptr) {
      *new_mod_revision = txn->revision;
    }
    return CasOutcome::kSwapped;
  }
  if (txn->ranges.size() != extra_compares.size()) {
    return Status::Corruption("etcd: a failed transaction answered " +
                              std::to_string(txn->ranges.size()) + " ranges, not " +
                              std::to_string(extra_compares.size()));
  }
  for (size_t i = 0; i < extra_compares.size(); ++i) {
    if (!CompareHolds(extra_compares[i], First(txn->ranges[i]))) {
      return CasOutcome::kGuardFailed;
    }
  }
  return CasOutcome::kStale;
}

}  // namespace sluice::broker
