#include "cloud-broker/replication/topic_admin.h"

#include <algorithm>
#include <vector>

#include "cloud-broker/replication/broker_registry.h"
#include "core/logging.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "topic-admin";

// FNV-1a: stable across builds, unlike std::hash.
uint32_t NameHash(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h = (h ^ c) * 16777619u;
  }
  return h;
}

}  // namespace

int32_t DefaultReplicationFactor(size_t live_brokers) {
  return static_cast<int32_t>(std::min<size_t>(3, live_brokers));
}

Result<TopicAssignment> CreateTopic(EtcdClient& etcd, const ResidencyPolicy& residency,
                                    const std::string& name, int32_t partitions,
                                    int32_t replication_factor, const TopicConfig& config) {
  const std::string& region = residency.region().value();
  if (name.empty() || name.find('/') != std::string::npos) {
    return Status::InvalidArgument("topic name '" + name + "' is empty or holds a '/'");
  }
  if (partitions < 1 || partitions > kMaxPartitionsPerTopic) {
    return Status::InvalidArgument("a topic has 1 to " + std::to_string(kMaxPartitionsPerTopic) +
                                   " partitions, not " + std::to_string(partitions));
  }
  Result<std::vector<BrokerInfo>> brokers = ListBrokers(etcd, region);
  if (!brokers.ok()) {
    return brokers.status();
  }
  std::vector<std::string> ids;
  for (const BrokerInfo& b : *brokers) {
    ids.push_back(b.id);
  }
  const int32_t start =
      ids.empty() ? 0 : static_cast<int32_t>(NameHash(name) % static_cast<uint32_t>(ids.size()));
  Result<std::vector<std::vector<std::string>>> placed =
      AssignReplicas(ids, partitions, replication_factor, start);
  if (!placed.ok()) {
    return placed.status();
  }
  TopicAssignment topic{name, partitions, replication_factor, config};
  topic.config.partitions = partitions;
  const std::string topic_key = TopicKey(region, name);
  std::vector<EtcdOp> ops{EtcdOp::Put(topic_key, TopicAssignmentJson(topic))};
  for (int32_t p = 0; p < partitions; ++p) {
    PartitionState s;
    s.replicas = (*placed)[static_cast<size_t>(p)];
    s.leader = s.replicas.front();
    for (const BrokerInfo& b : *brokers) {
      if (b.id == s.leader) {
        s.leader_incarnation = b.incarnation;
      }
    }
    s.isr = s.replicas;
    ops.push_back(EtcdOp::Put(PartitionKey(region, name, p), PartitionStateJson(s)));
  }
  Result<EtcdTxnResult> txn = etcd.Txn({EtcdCompare::Absent(topic_key)}, ops);
  if (!txn.ok()) {
    return txn.status();
  }
  if (!txn->succeeded) {
    return Status::FailedPrecondition("topic " + name + " exists in region " + region);
  }
  LogInfo(kComponent, "created topic " + name + " in region " + region + " (" +
                          std::to_string(partitions) + " partitions, factor " +
                          std::to_string(replication_factor) + ")");
  return topic;
}

}  // namespace sluice::broker
