// POST /v1/topics/{topic}/records: the HTTP face of ProduceService (cloud-broker/produce):
// reads the Sluice-After-Seq header, and maps the service's typed result to the answer
// (docs/API.md, "Produce"): 200 with the offsets per partition, or the error's status and JSON.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>

#include "cloud-broker/produce/produce_service.h"
#include "cloud-broker/residency/audit_log.h"
#include "cloud-broker/server/broker_service.h"
#include "cloud-broker/server/pipeline_pool.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "produce";
constexpr const char* kAfterSeqHeader = "Sluice-After-Seq";

HttpResponse ProduceOk(const std::string& topic, const ProduceResult& result) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("topic");
  WriteJsonString(w, topic);
  w.Key("records");
  w.Uint64(result.records);
  w.Key("duplicates");  // records already stored by an earlier attempt (exactly-once)
  w.Uint64(result.duplicates);
  w.Key("partitions");
  w.StartArray();
  for (const PartitionAppend& p : result.partitions) {
    w.StartObject();
    w.Key("partition");
    w.Int(p.partition);
    w.Key("base_offset");
    w.Int64(p.base_offset);
    w.Key("last_offset");
    w.Int64(p.last_offset);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(sb.GetString(), sb.GetSize()));
}

int HttpStatusOf(ProduceErrc code) {
  switch (code) {
    case ProduceErrc::kResidency:
      return 451;
    case ProduceErrc::kUnknownTopic:
      return 404;
    case ProduceErrc::kProducerNotOwned:
      return 403;
    case ProduceErrc::kTooManyProducerIds:
      return 429;
    case ProduceErrc::kOutOfOrderSequence:
      return 409;
    case ProduceErrc::kStorageUnavailable:
      return 503;  // with Retry-After (HttpResponse::Error)
    case ProduceErrc::kInsufficientStorage:
      return 507;  // with Retry-After
    case ProduceErrc::kNotLeader:
      return 421;  // Misdirected Request: another broker leads the partition (retryable)
    case ProduceErrc::kNotEnoughReplicas:
      return 503;  // with Retry-After
    default:
      return 400;
  }
}

}  // namespace

std::string BrokerService::RequestIdOf(const HttpRequest& req) {
  const std::string given = req.Header("x-request-id");
  if (!given.empty() && given.size() <= 128 &&
      std::all_of(given.begin(), given.end(), [](char c) { return c > 32 && c < 127; })) {
    return given;
  }
  static std::atomic<uint64_t> counter{0};
  static const uint64_t start = static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count());
  char id[40];
  std::snprintf(id, sizeof(id), "req-%016llx-%llu", static_cast<unsigned long long>(start),
                static_cast<unsigned long long>(counter.fetch_add(1) + 1));
  return id;
}

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
                                    const std::string& principal, const std::string& acks,
                                    const std::string& request_id) {
  if (IsInternalTopic(topic)) {
    return Refuse(HttpResponse::Error(400, "invalid_topic",
                                      topic + " is internal: only the brokers write it", "topic"),
                  topic, "invalid_topic", 0);
  }
  ProduceRequest request;
  request.topic = topic;
  const bool fire_and_forget = acks == "0";
  if (acks == "1" || fire_and_forget) {
    request.acks = Acks::kLeader;
  } else if (!acks.empty() && acks != "all" && acks != "-1") {
    return Refuse(HttpResponse::Error(400, "invalid_parameter",
                                      "acks must be \"all\" (the default), \"1\" or \"0\", got \"" +
                                          acks.substr(0, 20) + "\"",
                                      "acks"),
                  topic, "invalid_parameter", 0);
  }
  if (!after_seq_header.empty()) {
    auto [ptr, ec] = std::from_chars(after_seq_header.data(),
                                     after_seq_header.data() + after_seq_header.size(),
                                     request.after_seq);
    if (ec != std::errc() || ptr != after_seq_header.data() + after_seq_header.size() ||
        request.after_seq < 0) {
      return Refuse(HttpResponse::Error(400, "invalid_header",
                                        "Sluice-After-Seq must be a gateway_seq (a decimal "
                                        "integer >= 0), got \"" +
                                            after_seq_header.substr(0, 40) + "\"",
                                        kAfterSeqHeader),
                    topic, "invalid_header", 0);
    }
  }
  request.batch = body;
  request.principal = principal;
  request.request_id = request_id;
  if (fire_and_forget) {
    return ProduceWithoutWaiting(std::move(request));
  }
  return ProduceAnswer(request, produce_.Produce(request));
}

HttpResponse BrokerService::ProduceWithoutWaiting(ProduceRequest request) {
  // acks=0 (Kafka's: the producer waits for nothing). Everything Produce checks before storing
  // is checked now, so bad input still gets its precise error; the append runs after the
  // answer, on the produce pool (or here when no pool thread is idle: back-pressure), and its
  // outcome is counted and logged like any produce, but no one hears of it.
  ProduceOutcome checked = produce_.Check(request);
  if (!checked.ok()) {
    return ProduceAnswer(request, checked);
  }
  const size_t records = checked.result.records;
  const std::string topic = request.topic;
  auto shared = std::make_shared<ProduceRequest>(std::move(request));
  auto append = [this, shared] { ProduceAnswer(*shared, produce_.Produce(*shared)); };
  if (options_.pipeline_pool == nullptr || !options_.pipeline_pool->TrySubmit(append)) {
    append();
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("topic");
  WriteJsonString(w, topic);
  w.Key("records");
  w.Uint64(records);
  w.Key("acks");
  w.String("0");  // checked, not yet stored: nothing is promised
  w.EndObject();
  return HttpResponse::Json(202, std::string(sb.GetString(), sb.GetSize()));
}

HttpResponse BrokerService::ProduceAnswer(const ProduceRequest& request,
                                          const ProduceOutcome& out) {
  const std::string& topic = request.topic;
  if (out.ok()) {
    metrics_.ProduceRequest(200);
    return ProduceOk(topic, out.result);
  }
  const ProduceError& e = *out.error;
  if (e.code == ProduceErrc::kResidency) {
    metrics_.ResidencyRefusal(e.country);
  }
  // A residency refusal (451), or a record whose country is missing, malformed or given twice
  // (400: a forgery as like as not), is answered only once it is in the region's audit log;
  // else 503: no such refusal goes unrecorded.
  if (e.code == ProduceErrc::kResidency || e.field == "headers.country") {
    if (options_.audit != nullptr) {
      AuditEntry entry;
      entry.time_ms = options_.clock->NowMs();
      entry.region = policy_.region().value();
      entry.principal = request.principal.empty() ? "anonymous" : request.principal;
      entry.gateway_id = e.gateway_id;
      entry.country = e.country;
      entry.topic = topic;
      entry.records = e.records;
      entry.reason = e.message;
      entry.request_id = request.request_id;
      const Status audited = options_.audit->Append(entry);
      if (!audited.ok()) {
        LogError(kComponent, "residency refusal not audited: " + audited.ToString());
        metrics_.registry()
            .GetCounter("sluice_broker_audit_failures_total",
                        "Residency refusals answered 503 because the audit log could not record "
                        "them")
            .Inc();
        HttpResponse r = HttpResponse::Error(
            503, "audit_unavailable",
            "the batch is refused by residency, but the refusal could not be audited (" +
                audited.message() + "); nothing was stored");
        r.headers.emplace_back("Retry-After", "5");
        return Refuse(std::move(r), topic, "audit_unavailable", e.records);
      }
    }
  }
  // after_seq travels in the Sluice-After-Seq header over HTTP: name that.
  const std::string field = e.field == "after_seq" ? kAfterSeqHeader : e.field;
  // A full disk counts as storage_unavailable in the refusal metric (both are retryable).
  const std::string reason = e.code == ProduceErrc::kInsufficientStorage
                                 ? "storage_unavailable"
                                 : ProduceErrorName(e.code);
  return Refuse(HttpResponse::Error(HttpStatusOf(e.code), ProduceErrorName(e.code), e.message,
                                    field, e.index),
                topic, reason, e.records);
}

}  // namespace sluice::broker
