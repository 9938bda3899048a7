// BrokerService::Produce: validate the whole batch, then every record, then residency, and only
// then split by partition and append. Nothing is stored when any check fails.
#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include "cloud-broker/auth/producer_owners.h"
#include "cloud-broker/produce/append_pool.h"
#include "cloud-broker/producers/producer_table.h"
#include "cloud-broker/server/broker_service.h"
#include "cloud-broker/server/produce_checks.h"
#include "core/partitioner.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "produce";
// How long a pipelined request waits for the batch it follows before answering 409: long
// enough for that batch's append, short enough that requests parked on server threads can
// never starve it for long.
constexpr int64_t kAfterSeqWaitMs = 1000;

HttpResponse ProduceOk(const std::string& topic, size_t records, size_t duplicates,
                       const std::vector<std::pair<int32_t, std::pair<int64_t, int64_t>>>& parts) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("topic");
  WriteJsonString(w, topic);
  w.Key("records");
  w.Uint64(records);
  w.Key("duplicates");  // records already stored by an earlier attempt (exactly-once)
  w.Uint64(duplicates);
  w.Key("partitions");
  w.StartArray();
  for (const auto& [p, range] : parts) {
    w.StartObject();
    w.Key("partition");
    w.Int(p);
    w.Key("base_offset");
    w.Int64(range.first);
    w.Key("last_offset");
    w.Int64(range.second);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(sb.GetString(), sb.GetSize()));
}

}  // namespace

HttpResponse BrokerService::Refuse(HttpResponse response, const std::string& topic,
                                   const std::string& reason, size_t records) {
  metrics_.ProduceRequest(response.status);
  metrics_.Refused(reason, records);
  refusal_log_.Log(LogLevel::kWarn, kComponent, reason,
                   "refused a batch" +
                       (records > 0 ? " of " + std::to_string(records) + " records" : "") +
                       " for topic " + topic + " (" + std::to_string(response.status) +
                       "): " + response.body);
  return response;
}

HttpResponse BrokerService::Produce(const std::string& topic, const std::string& body,
                                    const std::string& after_seq_header,
                                    const std::string& principal) {
  int64_t after_seq = -1;
  if (!after_seq_header.empty()) {
    auto [ptr, ec] = std::from_chars(after_seq_header.data(),
                                     after_seq_header.data() + after_seq_header.size(), after_seq);
    if (ec != std::errc() || ptr != after_seq_header.data() + after_seq_header.size() ||
        after_seq < 0) {
      return Refuse(HttpResponse::Error(400, "invalid_header",
                                        "Sluice-After-Seq must be a gateway_seq (a decimal "
                                        "integer >= 0), got \"" +
                                            after_seq_header.substr(0, 40) + "\"",
                                        "Sluice-After-Seq"),
                    topic, "invalid_header", 0);
    }
  }
  // A producer's request counts as running from here, before it is decoded, so a pipelined
  // request that overtook it waits for it instead of being refused.
  std::optional<ProducerTable::Running> running;
  Result<BatchHeader> header = ParseBatchHeader(body, /*verify_crc=*/false);
  if (options_.producer_owners != nullptr && header.ok() && header->producer_id >= 0) {
    // A producer id belongs to the principal that first used it: nobody else may send under it
    // (their batches would make the owner's real ones look like duplicates).
    Status owned = options_.producer_owners->Claim(header->producer_id, principal);
    if (!owned.ok()) {
      const bool taken = owned.code() == StatusCode::kPermissionDenied;
      const bool full = owned.code() == StatusCode::kResourceExhausted;
      LogWarn(kComponent, "principal " + principal + ": " + owned.message());
      return Refuse(HttpResponse::Error(taken ? 403 : full ? 429 : 503,
                                        taken  ? "producer_not_owned"
                                        : full ? "too_many_producer_ids"
                                               : "storage_unavailable",
                                        owned.message(), "producer_id"),
                    topic, taken ? "producer_not_owned" : full ? "too_many_producer_ids"
                                                             : "storage_unavailable",
                    0);
    }
  }
  if (options_.producers != nullptr) {
    if (header.ok() && header->producer_id >= 0) {
      running.emplace(options_.producers->Enter(header->producer_id));
    }
  }
  int64_t producer_id = -1;
  HttpResponse r = ProduceBatch(topic, body, after_seq, &producer_id);
  if ((r.status < 200 || r.status >= 300) && producer_id >= 0 && options_.producers != nullptr) {
    // Pipelined requests waiting for this one must not wait out their timeout (see
    // WaitForAcked): whatever follows it will be resent by the producer after it.
    options_.producers->Lock(producer_id).MarkFailed();
  }
  return r;
}

HttpResponse BrokerService::ProduceBatch(const std::string& topic, const std::string& body,
                                         int64_t after_seq, int64_t* producer_id) {
  Status name_ok = TopicStore::ValidateTopicName(topic);
  if (!name_ok.ok()) {
    return Refuse(HttpResponse::Error(400, "invalid_topic", name_ok.message(), "topic"),
                  topic, "invalid_topic", 0);
  }
  size_t consumed = 0;
  const DecodeLimits limits;  // core/record_batch.h: bounded before anything is allocated
  DecodeViolation violation;
  Result<RecordBatch> batch = DecodeBatch(body, &consumed, &limits, &violation);
  if (!batch.ok()) {
    ProduceRefusal refusal = DecodeRefusal(batch.status(), violation);
    return Refuse(std::move(refusal.response), topic, refusal.reason, 0);
  }
  std::vector<Record>& records = batch->records;  // moved into per-partition batches below
  *producer_id = batch->producer_id;
  if (after_seq >= 0 && batch->producer_id < 0) {
    return Refuse(HttpResponse::Error(400, "invalid_header",
                                      "Sluice-After-Seq needs an idempotent producer batch "
                                      "(producer_id >= 0)",
                                      "Sluice-After-Seq"),
                  topic, "invalid_header", records.size());
  }
  if (consumed != body.size()) {
    return Refuse(HttpResponse::Error(400, "corrupt_batch",
                                      std::to_string(body.size() - consumed) +
                                          " trailing bytes after the record batch"),
                  topic, "corrupt_batch", records.size());
  }
  if (records.empty()) {
    return Refuse(HttpResponse::Error(400, "corrupt_batch", "the record batch holds no records"),
                  topic, "corrupt_batch", 0);
  }
  if (std::optional<ProduceRefusal> refusal =
          CheckProducedBatch(*batch, options_.clock->NowMs(), options_.max_future_ms)) {
    return Refuse(std::move(refusal->response), topic, refusal->reason, records.size());
  }
  for (size_t i = 0; i < records.size(); ++i) {
    Status st = policy_.Check(records[i], i);
    if (!st.ok()) {
      const std::string& country = *records[i].FindHeader(kHeaderCountry);
      metrics_.ResidencyRefusal(country);
      return Refuse(HttpResponse::Error(451, "residency", st.message(), "headers.country",
                                        static_cast<int64_t>(i)),
                    topic, "residency", records.size());
    }
  }

  bool created = false;
  Result<Topic*> t = store_.GetOrCreate(TopicName(topic), &created);
  if (!t.ok()) {
    if (t.status().code() == StatusCode::kNotFound) {
      return Refuse(HttpResponse::Error(404, "unknown_topic", t.status().message(), "topic"),
                    topic, "unknown_topic", records.size());
    }
    LogError(kComponent, "cannot create topic " + topic + ": " + t.status().ToString());
    HttpResponse r = HttpResponse::Error(503, "storage_unavailable", t.status().message());
    r.headers.emplace_back("Retry-After", "1");
    return Refuse(std::move(r), topic, "storage_unavailable", records.size());
  }
  Topic* tp = *t;
  if (created) {
    metrics_.WatchTopic(*tp);
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
    if (after_seq >= 0 && !producer->WaitForAcked(topic, after_seq, kAfterSeqWaitMs)) {
      return Refuse(HttpResponse::Error(
                        409, "out_of_order_sequence",
                        "this batch follows gateway_seq " + std::to_string(after_seq) +
                            ", which this producer has not stored yet; resend it after that "
                            "batch is acknowledged",
                        "Sluice-After-Seq"),
                    topic, "out_of_order_sequence", record_count);
    }
  }
  size_t duplicates = 0;
  std::vector<std::pair<int32_t, std::pair<int64_t, int64_t>>> parts;
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
          ++duplicates;
        } else {
          fresh.push_back(std::move(r));
        }
      }
      if (fresh.empty()) {
        const AppendedRange* orig = producer->FindExact(topic, a.p, a.first_seq, a.last_seq);
        if (orig != nullptr) {
          parts.push_back({a.p, {orig->base_offset, orig->last_offset}});
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
  // The partitions are appended in parallel: with log.flush: always every append is an fsync of
  // its own file, and overlapping them cut a gateway's drain time severalfold (fsync dominated
  // it; docs/BENCHMARKS.md, "Drain"). Each batch stays atomic in its partition. The pool's
  // threads are fixed (produce.append_threads) and this thread takes part, so no thread is
  // created here and a busy pool only makes the appends less parallel.
  auto append_one = [&tp, &appends](size_t i) {
    Append& a = appends[i];
    a.base = tp->partition(a.p)->Append(std::move(a.encoded));
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
    metrics_.Appended(topic, a.n, a.bytes);
    const int64_t last = *base + static_cast<int64_t>(a.n) - 1;
    if (producer && a.first_seq >= 0 && a.last_seq >= 0) {
      producer->Appended(topic, a.p, AppendedRange{a.first_seq, a.last_seq, *base, last});
    }
    parts.push_back({a.p, {*base, last}});
  }
  if (failed != nullptr) {
    const Status& st = failed->base->status();
    // storage: a full disk is 507 (retryable, Retry-After); the log cut the partial write.
    const bool full = st.code() == StatusCode::kResourceExhausted;
    HttpResponse r = HttpResponse::Error(full ? 507 : 503,
                                         full ? "insufficient_storage" : "storage_unavailable",
                                         st.message());  // adds Retry-After
    // The other partitions keep their records; with a producer id they are recorded above and
    // the retry skips them (exactly-once), without one it may duplicate them (at-least-once).
    return Refuse(std::move(r), topic, "storage_unavailable", failed->n);
  }
  std::sort(parts.begin(), parts.end());
  if (duplicates > 0) {
    options_.producers->CountDuplicates(duplicates);  // --- exactly-once ---
  }
  if (producer) {
    producer->MarkAcked(topic, request_last_seq);  // pipelined successors may go on
  }
  metrics_.ProduceRequest(200);
  return ProduceOk(topic, record_count, duplicates, parts);
}

}  // namespace sluice::broker
