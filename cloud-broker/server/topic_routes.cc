// BrokerService storage endpoints (docs/API.md): topic admin (POST /v1/topics, GET
// /v1/topics/{t}), timestamp lookup (GET /v1/topics/{t}/partitions/{p}/offset?timestamp=T),
// long-poll parking of fetches (wait_ms) and the 416 answer with the valid offset range.
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>

#include "cloud-broker/auth/authorizer.h"
#include "cloud-broker/server/broker_service.h"
#include "cloud-broker/server/fetch_waiter.h"

namespace sluice::broker {
namespace {

std::string Done(rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

bool ParseInt(const std::string& s, int64_t* v) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno != 0 || end != s.c_str() + s.size()) {
    return false;
  }
  *v = x;
  return true;
}

// The partition named by `partition` in `t`, or nullptr.
PartitionLog* PartitionOf(const Topic* t, const std::string& partition) {
  int64_t p;
  if (t == nullptr || !ParseInt(partition, &p) || p < 0 || p > INT32_MAX) {
    return nullptr;
  }
  return t->partition(static_cast<int32_t>(p));
}

void WriteLimit(JsonWriter& w, const char* key, int64_t v) {
  w.Key(key);
  w.Int64(v);
}

}  // namespace

HttpResponse OffsetOutOfRange(const PartitionLog& log, int64_t offset) {
  const int64_t start = log.start_offset();
  const int64_t end = log.end_offset();
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("error");
  w.String("offset_out_of_range");
  w.Key("reason");
  WriteJsonString(w, "offset " + std::to_string(offset) + " is outside [" +
                         std::to_string(start) + ", " + std::to_string(end) + "]");
  w.Key("field");
  w.String("offset");
  WriteLimit(w, "start_offset", start);
  WriteLimit(w, "end_offset", end);
  w.EndObject();
  return HttpResponse::Json(416, Done(sb));
}

HttpResponse BrokerService::StorageRoute(const HttpRequest& req,
                                         const std::vector<std::string>& p) {
  if (p.size() == 2) {
    return CreateTopic(req);
  }
  if (req.method != "GET") {
    HttpResponse r = HttpResponse::Error(405, "method_not_allowed",
                                         req.method + " is not allowed on " + req.path);
    r.headers.emplace_back("Allow", "GET");
    return r;
  }
  if (p.size() == 3) {
    return DescribeTopic(p[2]);
  }
  return OffsetForTime(p[2], p[4], req);
}

HttpResponse BrokerService::CreateTopic(const HttpRequest& req) {
  std::string name;
  std::string field;
  Result<TopicConfig> config = ParseTopicConfigJson(req.body, &name, &field);
  if (!config.ok()) {
    return HttpResponse::Error(400, "invalid_parameter", config.status().message(), field);
  }
  Status name_ok = TopicStore::ValidateTopicName(name);
  if (!name_ok.ok()) {
    return HttpResponse::Error(400, "invalid_topic", name_ok.message(), "name");
  }
  if (IsInternalTopic(name)) {
    return HttpResponse::Error(400, "invalid_topic", name + " is internal: the brokers create it",
                               "name");
  }
  if (options_.auth != nullptr && !options_.auth->Allows(req.principal, AclOp::kAdmin, name)) {
    metrics_.AuthRefusal("forbidden");
    return HttpResponse::Error(403, "forbidden",
                               "principal " + req.principal + " may not admin on " + name);
  }
  if (options_.create_replicated_topic) {
    return CreateReplicatedTopic(name, *config);
  }
  Result<Topic*> t = store_.Create(TopicName(name), *config);
  if (!t.ok()) {
    switch (t.status().code()) {
      case StatusCode::kFailedPrecondition:
        return HttpResponse::Error(409, "topic_exists", t.status().message(), "name");
      case StatusCode::kInvalidArgument:
        return HttpResponse::Error(400, "invalid_parameter", t.status().message());
      case StatusCode::kTooLarge:  // topics.max_partitions
        return HttpResponse::Error(409, "partition_limit", t.status().message(), "partitions");
      case StatusCode::kResourceExhausted:
        return HttpResponse::Error(507, "insufficient_storage", t.status().message());
      default: {
        // EMFILE (kUnavailable) or another I/O error: nothing was left behind, so a retry may
        // succeed. The store logged it; sluice_broker_file_open_failures_total counts opens.
        HttpResponse r = HttpResponse::Error(503, "storage_unavailable", t.status().message());
        r.headers.emplace_back("Retry-After", "1");
        return r;
      }
    }
  }
  metrics_.WatchTopic(**t);
  HttpResponse r = DescribeTopic(name);
  r.status = 201;
  return r;
}

HttpResponse BrokerService::CreateReplicatedTopic(const std::string& name,
                                                  const TopicConfig& config) {
  // The overrides travel with the topic in etcd: every replica applies the same.
  Result<int32_t> created = options_.create_replicated_topic(name, config);
  if (!created.ok()) {
    const Status& st = created.status();
    switch (st.code()) {
      case StatusCode::kFailedPrecondition:
        return HttpResponse::Error(409, "topic_exists", st.message(), "name");
      case StatusCode::kInvalidArgument:
        return HttpResponse::Error(400, "invalid_parameter", st.message());
      case StatusCode::kTooLarge:  // topics.max_partitions
        return HttpResponse::Error(409, "partition_limit", st.message(), "partitions");
      default:
        return HttpResponse::Error(503, "unavailable", st.message());  // etcd: retry
    }
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("name");
  WriteJsonString(w, name);
  w.Key("config");
  w.StartObject();
  w.Key("partitions");
  w.Int(*created);
  w.EndObject();
  w.Key("replicated");
  w.Bool(true);
  w.EndObject();
  return HttpResponse::Json(201, std::string(sb.GetString(), sb.GetSize()));
}

HttpResponse BrokerService::DescribeTopic(const std::string& topic) {
  const Topic* t = store_.Find(TopicName(topic));
  if (t == nullptr) {
    return HttpResponse::Error(404, "unknown_topic", "unknown topic " + topic, "topic");
  }
  const LogOptions& lo = t->partition(0)->options();
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("name");
  WriteJsonString(w, topic);
  w.Key("config");
  w.StartObject();
  WriteLimit(w, "partitions", t->partition_count());
  WriteLimit(w, "retention_ms", lo.retention_ms);
  WriteLimit(w, "retention_bytes", lo.retention_bytes);
  w.Key("flush");
  w.String(FlushPolicyName(lo.flush));
  WriteLimit(w, "flush_ms", lo.flush_ms);
  WriteLimit(w, "flush_bytes", lo.flush_bytes);
  WriteLimit(w, "segment_bytes", lo.segment_bytes);
  WriteLimit(w, "segment_ms", lo.segment_ms);
  w.EndObject();
  w.Key("partitions");
  w.StartArray();
  for (int32_t i = 0; i < t->partition_count(); ++i) {
    const PartitionLog* log = t->partition(i);
    w.StartObject();
    WriteLimit(w, "partition", i);
    WriteLimit(w, "start_offset", log->start_offset());
    WriteLimit(w, "end_offset", log->end_offset());
    w.Key("size_bytes");
    w.Uint64(log->size_bytes());
    w.Key("segments");
    w.Uint64(log->segment_count());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

HttpResponse BrokerService::OffsetForTime(const std::string& topic, const std::string& partition,
                                          const HttpRequest& req) {
  const Topic* t = store_.Find(TopicName(topic));
  if (t == nullptr) {
    return HttpResponse::Error(404, "unknown_topic", "unknown topic " + topic, "topic");
  }
  const PartitionLog* log = PartitionOf(t, partition);
  if (log == nullptr) {
    return HttpResponse::Error(404, "unknown_partition", "no partition " + partition + " in " +
                                   topic, "partition");
  }
  int64_t ts;
  if (!ParseInt(req.Query("timestamp"), &ts)) {
    return HttpResponse::Error(400, "invalid_parameter",
                               "timestamp must be an integer (ms since the Unix epoch)",
                               "timestamp");
  }
  Result<int64_t> offset = log->OffsetForTimestamp(ts);
  if (!offset.ok()) {
    return HttpResponse::Error(500, "storage_error", offset.status().message());
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  WriteLimit(w, "timestamp", ts);
  WriteLimit(w, "offset", *offset);
  WriteLimit(w, "end_offset", log->end_offset());
  w.Key("found");
  w.Bool(*offset < log->end_offset());
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

bool BrokerService::MaybeParkFetch(const HttpRequest& req, const HttpResponder& respond) {
  auto it = req.query.find("wait_ms");
  if (it == req.query.end() || req.method != "GET") {
    return false;
  }
  const std::vector<std::string> p = SplitPath(req.path);
  if (p.size() != 6 || p[0] != "v1" || p[1] != "topics" || p[3] != "partitions" ||
      p[5] != "records") {
    return false;
  }
  int64_t wait_ms;
  if (!ParseInt(it->second, &wait_ms) || wait_ms < 0 || wait_ms > kMaxFetchWaitMs) {
    respond(HttpResponse::Error(400, "invalid_parameter",
                                "wait_ms must be 0.." + std::to_string(kMaxFetchWaitMs),
                                "wait_ms"));
    return true;
  }
  const PartitionLog* log = PartitionOf(store_.Find(TopicName(p[2])), p[4]);
  if (log == nullptr || wait_ms == 0 || options_.fetch_waiter == nullptr) {
    return false;  // Fetch answers (404s included) at once
  }
  int64_t offset = log->start_offset();
  auto off = req.query.find("offset");
  if (off != req.query.end() && !ParseInt(off->second, &offset)) {
    return false;  // Fetch answers the 400
  }
  if (offset != log->end_offset() && !NotYetCommitted(*log, offset)) {
    return false;  // records (or a 416) to answer now
  }
  auto shared = std::make_shared<HttpRequest>(req);
  uint64_t id = 0;
  FetchWaiter* waiter = options_.fetch_waiter;
  if (!waiter->Park(
          log, offset, wait_ms, [this, shared, respond] { respond(Route(*shared)); }, &id)) {
    return false;
  }
  // A consumer that disconnects frees its slot now, not at its deadline (kMaxParked are shared).
  respond.OnClientGone([waiter, id] { waiter->Cancel(id); });
  return true;
}

}  // namespace sluice::broker
