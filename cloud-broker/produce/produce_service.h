// ProduceService: the broker's produce path, independent of any transport. The HTTP API
// (server/produce.cc) calls it today; the Kafka protocol and replication will call it later.
// Produce() validates the whole batch, then every record, then residency, and only then splits
// the records by partition (murmur2 of the key, as Kafka) and appends them; nothing is stored
// when any check fails. With an idempotent producer (producer_id >= 0) records already stored
// by an earlier attempt are skipped and counted as duplicates (exactly-once, see
// cloud-broker/producers/producer_table.h), and a producer id belongs to the principal that
// first used it (cloud-broker/auth/producer_owners.h).
// The one partial outcome: if the append to one partition fails after others succeeded, the
// answer is that partition's storage error while the others keep their records; with a
// producer id the retry skips them, without one it may store them twice (at-least-once).
// Thread-safety: thread-safe; concurrent requests of one producer are serialised by its lock in
// the ProducerTable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/produce/produce_error.h"
#include "cloud-broker/residency/residency_policy.h"
#include "core/clock.h"
#include "core/record_batch.h"

namespace sluice::broker {

class AppendPool;      // cloud-broker/produce/append_pool.h
class ProducerOwners;  // cloud-broker/auth/producer_owners.h
class ProducerTable;   // cloud-broker/producers/producer_table.h

// When the answer may be given (Kafka's acks): kLeader once the leader stored the records (per
// its flush policy), kAll once every in-sync replica has them (the high watermark covers them).
// A single-broker region has no other replica: both answer after the local append.
enum class Acks { kLeader, kAll };

struct ProduceRequest {
  std::string topic;
  std::string batch;       // one RecordBatch v2, exactly as sent
  int64_t after_seq = -1;  // pipelining: the gateway_seq of the batch this one follows; -1: none
  std::string principal;   // the authenticated sender; empty with authentication off
  std::string request_id;  // the transport's id of the request (audit entries name it)
  Acks acks = Acks::kAll;
};

// Replication's say in produce (ReplicaManager implements it); absent in a single-broker region.
class PartitionLeadership {
 public:
  virtual ~PartitionLeadership() = default;
  // The leader epoch to stamp on the partition's batch; kFailedPrecondition when this broker
  // does not lead it, kUnavailable when (acks_all) the in-sync set is below its minimum.
  virtual Result<int32_t> CheckLeader(const std::string& topic, int32_t partition,
                                      bool acks_all) = 0;
  // The leader appended records (wake followers' fetches, move the high watermark).
  virtual void OnLeaderAppend(const std::string& topic, int32_t partition) = 0;
  // Returns once the high watermark reaches end_offset; kUnavailable after timeout_ms or when
  // the in-sync set fell below its minimum, kFailedPrecondition when leadership moved.
  virtual Status AwaitReplicated(const std::string& topic, int32_t partition, int32_t epoch,
                                 int64_t end_offset, int64_t timeout_ms) = 0;
};

struct PartitionAppend {
  int32_t partition = 0;
  int64_t base_offset = 0;
  int64_t last_offset = 0;
};

struct ProduceResult {
  size_t records = 0;     // records in the request
  size_t duplicates = 0;  // of them, stored by an earlier attempt (exactly-once)
  std::vector<PartitionAppend> partitions;  // ascending partition
};

// Either a result or an error, never both.
struct ProduceOutcome {
  std::optional<ProduceError> error;
  ProduceResult result;
  bool ok() const { return !error.has_value(); }
};

struct ProduceServiceOptions {
  // Idempotent-producer state; nullptr turns deduplication off.
  ProducerTable* producers = nullptr;
  // Binds producer ids to principals; nullptr: any sender may use any producer id.
  ProducerOwners* producer_owners = nullptr;
  // Appends the partitions of one request in parallel; nullptr: one after another.
  AppendPool* append_pool = nullptr;
  // Records timestamped more than this ahead of clock->NowMs() are refused; < 0: no bound.
  int64_t max_future_ms = 24LL * 3600 * 1000;
  const Clock* clock = &SystemClock::Instance();
  // How long a pipelined request waits for the batch it follows before kOutOfOrderSequence.
  int64_t after_seq_wait_ms = 1000;
  // Replicated region: only leaders append, stamping their epoch; acks=all waits for the
  // in-sync replicas up to replication_timeout_ms. nullptr: a single-broker region.
  PartitionLeadership* leadership = nullptr;
  int64_t replication_timeout_ms = 10000;
  // Replicated region with auto-creation: a produce to an unknown topic asks for it to be
  // created in the region (etcd) and is answered kNotLeader (retry: no leader yet).
  std::function<Status(const std::string& topic)> auto_create_topic;
  // Observers (metrics): a topic created by this produce, records appended to a partition.
  std::function<void(Topic&)> on_topic_created;
  std::function<void(const std::string& topic, size_t records, size_t bytes)> on_appended;
};

class ProduceService {
 public:
  ProduceService(ProduceServiceOptions options, TopicStore& store, const ResidencyPolicy& policy);

  ProduceOutcome Produce(const ProduceRequest& request);

  // What Produce checks before it stores anything (the batch, every record, residency, the
  // topic, and in a replicated region that this broker leads every partition the records go
  // to), without storing: for acks=0, which answers once the request is checked and appends
  // after. On success result.records is the record count and nothing else is set.
  // The topic is created if Produce would create it.
  ProduceOutcome Check(const ProduceRequest& request);

 private:
  // The checks of a batch before its topic is looked at; nullopt and *decoded set if it passes.
  std::optional<ProduceOutcome> CheckBatch(const ProduceRequest& request,
                                           RecordBatch* decoded) const;
  // The request's topic (created if the store or the region auto-creates it); a refusal
  // otherwise (unknown topic, or not_leader while the region creates it).
  std::optional<ProduceOutcome> TopicOf(const std::string& topic, size_t records, Topic** out);
  // After the producer id's owner check; sets *producer_id once the batch is decoded.
  ProduceOutcome ProduceBatch(const ProduceRequest& request, int64_t* producer_id);

  const ProduceServiceOptions options_;
  TopicStore& store_;
  const ResidencyPolicy& policy_;
};

}  // namespace sluice::broker
