#include "cloud-broker/produce/produce_service.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "cloud-broker/auth/producer_owners.h"
#include "cloud-broker/produce/append_pool.h"
#include "cloud-broker/produce/produce_checks.h"
#include "cloud-broker/producers/producer_table.h"
#include "core/logging.h"
#include "core/partitioner.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "produce";

ProduceOutcome Refused(ProduceErrc code, std::string message, size_t records,
                       std::string field = "", int64_t index = -1) {
  ProduceOutcome out;
  out.error.emplace();
  out.error->code = code;
  out.error->message = std::move(message);
  out.error->field = std::move(field);
  out.error->index = index;
  out.error->records = records;
  return out;
}

ProduceOutcome Refused(ProduceError error, size_t records) {
  ProduceOutcome out;
  error.records = records;
  out.error = std::move(error);
  return out;
}

}  // namespace

ProduceService::ProduceService(ProduceServiceOptions options, TopicStore& store,
                               const ResidencyPolicy& policy)
    : options_(std::move(options)), store_(store), policy_(policy) {}

ProduceOutcome ProduceService::Produce(const ProduceRequest& request) {
  // A producer's request counts as running from here, before it is decoded, so a pipelined
  // request that overtook it waits for it instead of being refused.
  std::optional<ProducerTable::Running> running;
  Result<BatchHeader> header = ParseBatchHeader(request.batch, /*verify_crc=*/false);
  if (options_.producer_owners != nullptr && header.ok() && header->producer_id >= 0) {
    // A producer id belongs to the principal that first used it: nobody else may send under it
    // (their batches would make the owner's real ones look like duplicates).
    Status owned = options_.producer_owners->Claim(header->producer_id, request.principal);
    if (!owned.ok()) {
      LogWarn(kComponent, "principal " + request.principal + ": " + owned.message());
      const ProduceErrc code = owned.code() == StatusCode::kPermissionDenied
                                   ? ProduceErrc::kProducerNotOwned
                               : owned.code() == StatusCode::kResourceExhausted
                                   ? ProduceErrc::kTooManyProducerIds
                                   : ProduceErrc::kStorageUnavailable;
      return Refused(code, owned.message(), 0, "producer_id");
    }
  }
  if (options_.producers != nullptr && header.ok() && header->producer_id >= 0) {
    running.emplace(options_.producers->Enter(header->producer_id));
  }
  int64_t producer_id = -1;
  ProduceOutcome out = ProduceBatch(request, &producer_id);
  if (!out.ok() && producer_id >= 0 && options_.producers != nullptr) {
    // Pipelined requests waiting for this one must not wait out their timeout (see
    // WaitForAcked): whatever follows it will be resent by the producer after it.
    options_.producers->Lock(producer_id).MarkFailed();
  }
  return out;
}

std::optional<ProduceOutcome> ProduceService::CheckBatch(const ProduceRequest& request,
                                                         RecordBatch* decoded) const {
  const std::string& topic = request.topic;
  Status name_ok = TopicStore::ValidateTopicName(topic);
  if (!name_ok.ok()) {
    return Refused(ProduceErrc::kInvalidTopic, name_ok.message(), 0, "topic");
  }
  size_t consumed = 0;
  const DecodeLimits limits;  // core/record_batch.h: bounded before anything is allocated
  DecodeViolation violation;
  Result<RecordBatch> batch = DecodeBatch(request.batch, &consumed, &limits, &violation);
  if (!batch.ok()) {
    return Refused(DecodeRefusal(batch.status(), violation), 0);
  }
  const std::vector<Record>& records = batch->records;
  if (request.after_seq >= 0 && batch->producer_id < 0) {
    return Refused(ProduceErrc::kInvalidHeader,
                   "naming the batch this one follows (after_seq) needs an idempotent producer "
                   "batch (producer_id >= 0)",
                   records.size(), "after_seq");
  }
  if (consumed != request.batch.size()) {
    return Refused(ProduceErrc::kCorruptBatch,
                   std::to_string(request.batch.size() - consumed) +
                       " trailing bytes after the record batch",
                   records.size());
  }
  if (records.empty()) {
    return Refused(ProduceErrc::kCorruptBatch, "the record batch holds no records", 0);
  }
  if (std::optional<ProduceError> refusal =
          CheckProducedBatch(*batch, options_.clock->NowMs(), options_.max_future_ms)) {
    return Refused(std::move(*refusal), records.size());
  }
  for (size_t i = 0; i < records.size(); ++i) {
    Status st = policy_.Check(records[i], i);
    if (!st.ok()) {
      ProduceOutcome out = Refused(ProduceErrc::kResidency, st.message(), records.size(),
                                   "headers.country", static_cast<int64_t>(i));
      const std::string* country = records[i].FindHeader(kHeaderCountry);
      const std::string* gateway = records[i].FindHeader(kHeaderGatewayId);
      out.error->country = country != nullptr ? *country : "";
      out.error->gateway_id = gateway != nullptr ? *gateway : "";
      return out;
    }
  }
  *decoded = std::move(batch).value();
  return std::nullopt;
}

std::optional<ProduceOutcome> ProduceService::TopicOf(const std::string& topic, size_t records,
                                                      Topic** out) {
  bool created = false;
  Result<Topic*> t = store_.GetOrCreate(TopicName(topic), &created);
  if (!t.ok()) {
    if (t.status().code() == StatusCode::kNotFound && options_.auto_create_topic) {
      Status asked = options_.auto_create_topic(topic);
      if (asked.code() == StatusCode::kTooLarge) {  // topics.max_partitions: not retryable
        return Refused(ProduceErrc::kUnknownTopic,
                       "unknown topic " + topic + ", not created: " + asked.message(), records,
                       "topic");
      }
      if (!asked.ok() && asked.code() != StatusCode::kFailedPrecondition) {  // not "exists"
        LogError(kComponent, "cannot create topic " + topic + " in the region: " +
                                 asked.ToString());
        return Refused(ProduceErrc::kStorageUnavailable, asked.message(), records);
      }
      return Refused(ProduceErrc::kNotLeader,
                     "topic " + topic + " is being created in the region and has no leader "
                     "here yet; retry",
                     records, "topic");
    }
    if (t.status().code() == StatusCode::kNotFound) {
      return Refused(ProduceErrc::kUnknownTopic, t.status().message(), records, "topic");
    }
    if (t.status().code() == StatusCode::kTooLarge) {  // topics.max_partitions: not retryable
      return Refused(ProduceErrc::kUnknownTopic,
                     "unknown topic " + topic + ", not created: " + t.status().message(), records,
                     "topic");
    }
    LogError(kComponent, "cannot create topic " + topic + ": " + t.status().ToString());
    return Refused(ProduceErrc::kStorageUnavailable, t.status().message(), records);
  }
  if (created && options_.on_topic_created) {
    options_.on_topic_created(**t);
  }
  *out = *t;
  return std::nullopt;
}

ProduceOutcome ProduceService::Check(const ProduceRequest& request) {
  RecordBatch batch;
  if (std::optional<ProduceOutcome> refused = CheckBatch(request, &batch)) {
    return *refused;
  }
  const size_t n = batch.records.size();
  Topic* tp = nullptr;  // created as Produce would (topics.auto_create)
  if (std::optional<ProduceOutcome> refused = TopicOf(request.topic, n, &tp)) {
    return *refused;
  }
  if (options_.leadership != nullptr) {
    std::set<int32_t> partitions;
    for (const Record& r : batch.records) {
      partitions.insert(PartitionForKey(*r.key, tp->partition_count()));
    }
    for (int32_t p : partitions) {
      Result<int32_t> epoch = options_.leadership->CheckLeader(request.topic, p, false);
      if (!epoch.ok()) {
        return Refused(ProduceErrc::kNotLeader, epoch.status().message(), n);
      }
    }
  }
  ProduceOutcome ok;
  ok.result.records = n;
  return ok;
}

ProduceOutcome ProduceService::ProduceBatch(const ProduceRequest& request, int64_t* producer_id) {
  const std::string& topic = request.topic;
  RecordBatch decoded;
  if (std::optional<ProduceOutcome> refused = CheckBatch(request, &decoded)) {
    return *refused;
  }
  std::optional<RecordBatch> batch(std::move(decoded));
  std::vector<Record>& records = batch->records;  // moved into per-partition batches below
  *producer_id = batch->producer_id;

  Topic* tp = nullptr;
  if (std::optional<ProduceOutcome> refused = TopicOf(topic, records.size(), &tp)) {
    return *refused;
  }

  // Records are moved, not copied: each holds a key, a value and several headers, and copying
  // them was a large share of produce's CPU (docs/BENCHMARKS.md profile).
  const size_t record_count = records.size();
  std::map<int32_t, std::vector<Record>> by_partition;
  for (Record& r : records) {
    const int32_t p = PartitionForKey(*r.key, tp->partition_count());
    by_partition[p].push_back(std::move(r));
  }
  // --- exactly-once (idempotent producer), see cloud-broker/producers/producer_table.h ---
  // A batch with a producer id is checked per partition against the highest gateway_seq this
  // producer stored there: records at or below it were stored by an earlier attempt and are
  // skipped; a partition whose records are all stored answers with the original offsets. The
  // producer's lock is held until the answer, so its retries never race its first attempt.
  // Each partition's batch is encoded before the lock (the CRC and copy are most of produce's
  // CPU): pipelined requests of one producer then overlap that work with the append in progress;
  // it is encoded again inside only when some of its records turn out to be stored already.
  struct Append {
    int32_t p = 0;
    size_t n = 0;
    size_t bytes = 0;
    int64_t first_seq = -1, last_seq = -1;
    RecordBatch batch;
    std::string encoded;
    int32_t epoch = -1;  // the leader epoch to stamp (replicated region)
    std::optional<Result<int64_t>> base;
  };
  std::vector<Append> appends;
  int64_t request_last_seq = -1;
  for (auto& [p, recs] : by_partition) {
    Append a;
    a.p = p;
    a.first_seq = GatewaySeqOf(recs.front());
    a.last_seq = GatewaySeqOf(recs.back());
    request_last_seq = std::max(request_last_seq, a.last_seq);
    a.batch.partition_leader_epoch = batch->partition_leader_epoch;
    a.batch.attributes = batch->attributes;
    a.batch.producer_id = batch->producer_id;
    a.batch.producer_epoch = batch->producer_epoch;
    a.batch.base_sequence = batch->base_sequence;
    a.batch.records = std::move(recs);
    a.encoded = EncodeBatch(a.batch);
    appends.push_back(std::move(a));
  }
  std::optional<ProducerTable::Guard> producer;
  if (options_.producers != nullptr && batch->producer_id >= 0) {
    producer.emplace(options_.producers->Lock(batch->producer_id));
    if (request.after_seq >= 0 &&
        !producer->WaitForAcked(topic, request.after_seq, options_.after_seq_wait_ms)) {
      return Refused(ProduceErrc::kOutOfOrderSequence,
                     "this batch follows gateway_seq " + std::to_string(request.after_seq) +
                         ", which this producer has not stored yet; resend it after that "
                         "batch is acknowledged",
                     record_count, "after_seq");
    }
  }
  ProduceResult result;
  result.records = record_count;
  if (producer) {
    std::vector<Append> to_append;
    for (Append& a : appends) {
      const int64_t stored = producer->State(topic, a.p).last_seq;
      if (a.first_seq < 0 || a.first_seq > stored) {
        to_append.push_back(std::move(a));  // nothing of it stored yet: as encoded
        continue;
      }
      std::vector<Record> fresh;
      for (Record& r : a.batch.records) {
        const int64_t seq = GatewaySeqOf(r);
        if (seq >= 0 && seq <= stored) {
          ++result.duplicates;
        } else {
          fresh.push_back(std::move(r));
        }
      }
      if (fresh.empty()) {
        const AppendedRange* orig = producer->FindExact(topic, a.p, a.first_seq, a.last_seq);
        if (orig != nullptr) {
          result.partitions.push_back({a.p, orig->base_offset, orig->last_offset});
        }
        continue;
      }
      a.first_seq = GatewaySeqOf(fresh.front());
      a.batch.records = std::move(fresh);
      a.encoded = EncodeBatch(a.batch);
      to_append.push_back(std::move(a));
    }
    appends = std::move(to_append);
  }
  for (Append& a : appends) {
    a.n = a.batch.records.size();
    a.bytes = a.encoded.size();
  }
  // --- end exactly-once ---
  PartitionLeadership* const leadership = options_.leadership;
  const bool acks_all = request.acks == Acks::kAll;
  if (leadership != nullptr) {
    // Every partition is checked before any is appended: a request this broker cannot take
    // whole stores nothing.
    for (Append& a : appends) {
      Result<int32_t> epoch = leadership->CheckLeader(topic, a.p, acks_all);
      if (!epoch.ok()) {
        return Refused(epoch.status().code() == StatusCode::kUnavailable
                           ? ProduceErrc::kNotEnoughReplicas
                           : ProduceErrc::kNotLeader,
                       epoch.status().message(), record_count);
      }
      a.epoch = *epoch;
    }
  }
  // The partitions are appended in parallel: with log.flush: always every append is an fsync of
  // its own file, and overlapping them cut a gateway's drain time severalfold (fsync dominated
  // it; docs/BENCHMARKS.md, "Drain"). Each batch stays atomic in its partition. The pool's
  // threads are fixed (produce.append_threads) and this thread takes part, so no thread is
  // created here and a busy pool only makes the appends less parallel.
  auto append_one = [&tp, &appends, leadership, &topic](size_t i) {
    Append& a = appends[i];
    if (leadership == nullptr) {
      a.base = tp->partition(a.p)->Append(std::move(a.encoded));
      return;
    }
    a.base = tp->partition(a.p)->Append(std::move(a.encoded), a.epoch);
    if (a.base->ok()) {
      leadership->OnLeaderAppend(topic, a.p);
    }
  };
  if (options_.append_pool != nullptr) {
    options_.append_pool->RunAll(appends.size(), append_one);
  } else {
    for (size_t i = 0; i < appends.size(); ++i) {
      append_one(i);
    }
  }
  const Append* failed = nullptr;
  for (const Append& a : appends) {
    const Result<int64_t>& base = *a.base;
    if (!base.ok()) {
      LogError(kComponent, "append to " + topic + "-" + std::to_string(a.p) +
                               " failed: " + base.status().ToString());
      failed = failed == nullptr ? &a : failed;
      continue;
    }
    if (options_.on_appended) {
      options_.on_appended(topic, a.n, a.bytes);
    }
    const int64_t last = *base + static_cast<int64_t>(a.n) - 1;
    if (producer && a.first_seq >= 0 && a.last_seq >= 0) {
      producer->Appended(topic, a.p, AppendedRange{a.first_seq, a.last_seq, *base, last});
    }
    result.partitions.push_back({a.p, *base, last});
  }
  if (failed == nullptr && leadership != nullptr && acks_all) {
    // acks=all: answer once every in-sync replica has the records (the high watermark covers
    // them). They are stored and recorded for exactly-once already: a retry after a refusal
    // here is deduplicated, never stored twice.
    for (const PartitionAppend& pa : result.partitions) {
      auto a = std::find_if(appends.begin(), appends.end(),
                            [&](const Append& x) { return x.p == pa.partition; });
      if (a == appends.end()) {
        continue;  // all duplicates: replicated when first stored
      }
      Status st = leadership->AwaitReplicated(topic, pa.partition, a->epoch, pa.last_offset + 1,
                                              options_.replication_timeout_ms);
      if (!st.ok()) {
        return Refused(st.code() == StatusCode::kFailedPrecondition
                           ? ProduceErrc::kNotLeader
                           : ProduceErrc::kNotEnoughReplicas,
                       st.message(), record_count);
      }
    }
  }
  if (failed != nullptr) {
    // A full disk is retryable too; the log cut the partial write.
    const Status& st = failed->base->status();
    return Refused(st.code() == StatusCode::kResourceExhausted
                       ? ProduceErrc::kInsufficientStorage
                       : ProduceErrc::kStorageUnavailable,
                   st.message(), failed->n);
  }
  std::sort(result.partitions.begin(), result.partitions.end(),
            [](const PartitionAppend& a, const PartitionAppend& b) {
              return a.partition < b.partition;
            });
  if (result.duplicates > 0) {
    options_.producers->CountDuplicates(result.duplicates);  // --- exactly-once ---
  }
  if (producer) {
    producer->MarkAcked(topic, request_last_seq);  // pipelined successors may go on
  }
  ProduceOutcome out;
  out.result = std::move(result);
  return out;
}

}  // namespace sluice::broker
