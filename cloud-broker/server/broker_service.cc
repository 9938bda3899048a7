#include "cloud-broker/server/broker_service.h"

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "cloud-broker/auth/authorizer.h"
#include "cloud-broker/query/query.h"
#include "cloud-broker/replication/replica_manager.h"
#include "cloud-broker/server/group_routes.h"  // consumer groups
#include "cloud-broker/server/pipeline_pool.h"

namespace sluice::broker {
namespace {

constexpr int64_t kDefaultMaxRecords = 500;
constexpr int64_t kMaxMaxRecords = 100000;
constexpr int64_t kDefaultMaxBytes = 1 << 20;

std::string Done(rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

// Parses a non-negative decimal integer parameter; false if present and malformed.
bool ParamInt(const HttpRequest& req, const std::string& name, int64_t def, int64_t* v) {
  auto it = req.query.find(name);
  if (it == req.query.end()) {
    *v = def;
    return true;
  }
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || errno != 0 || end != s.c_str() + s.size() || x < 0) {
    return false;
  }
  *v = x;
  return true;
}

}  // namespace

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) {
      j = path.size();
    }
    if (j > i) {
      parts.push_back(path.substr(i, j - i));
    }
    i = j + 1;
  }
  return parts;
}

BrokerService::BrokerService(ServiceOptions options, TopicStore& store,
                             const ResidencyPolicy& policy, BrokerMetrics& metrics)
    : options_(std::move(options)),
      store_(store),
      policy_(policy),
      metrics_(metrics),
      produce_(
          [&] {
            ProduceServiceOptions o;
            o.producers = options_.producers;
            o.producer_owners = options_.producer_owners;
            o.append_pool = options_.append_pool;
            o.max_future_ms = options_.max_future_ms;
            o.clock = options_.clock;
            o.leadership = options_.replication;  // nullptr: a single-broker region
            o.replication_timeout_ms = options_.replication_timeout_ms;
            o.auto_create_topic = options_.auto_create_replicated_topic;
            o.on_topic_created = [&metrics](Topic& t) { metrics.WatchTopic(t); };
            o.on_appended = [&metrics](const std::string& topic, size_t n, size_t bytes) {
              metrics.Appended(topic, n, bytes);
            };
            return o;
          }(),
          store, policy) {
  // Which residency policy this process enforces: a fleet running mixed versions shows it.
  metrics_.registry()
      .GetGauge("sluice_residency_policy_info",
                "1, labelled with the residency policy's version (sha256 of the policy file, or "
                "region.countries without one) and the region",
                {{"version", policy_.version()}, {"region", policy_.region().value()}})
      .Set(1);
}

void BrokerService::Handle(HttpRequest&& request, HttpResponder respond) {
  if (!Admit(request, respond)) {
    return;
  }
  if (MaybeParkFetch(request, respond)) {  // storage: long-poll (wait_ms)
    return;
  }
  if (MaybeReplicationRoute(request, respond)) {  // follower fetches (replication_routes.cc)
    return;
  }
  if (MaybeQueueQuery(request, respond)) {  // queries run on the query pool (query_routes.cc)
    return;
  }
  auto is_produce = [&] {
    const std::vector<std::string> p = SplitPath(request.path);
    return p.size() == 4 && p[1] == "topics" && p[3] == "records";
  };
  if (options_.pipeline_pool != nullptr && request.method == "POST" &&
      (!request.Header("sluice-after-seq").empty() ||
       (options_.replication != nullptr && is_produce()))) {
    // A pipelined produce may wait for the batch it follows, and in a replicated region every
    // produce (acks=all) waits for the followers' fetches: not on an HTTP thread, which that
    // very batch, or those fetches, may need (server/pipeline_pool.h).
    auto shared = std::make_shared<HttpRequest>(std::move(request));
    if (options_.pipeline_pool->TrySubmit([this, shared, respond] { respond(Route(*shared)); })) {
      return;
    }
    request = std::move(*shared);  // no idle thread: wait here, as without the pool
  }
  respond(Route(request));
}

HttpResponse BrokerService::Route(const HttpRequest& req) {
  const std::vector<std::string> p = SplitPath(req.path);
  auto method_is = [&](const char* m) { return req.method == m; };
  auto wrong_method = [&](const char* allowed) {
    HttpResponse r = HttpResponse::Error(405, "method_not_allowed",
                                         req.method + " is not allowed on " + req.path);
    r.headers.emplace_back("Allow", allowed);
    return r;
  };
  if (p.size() == 1 && p[0] == "healthz") {
    return method_is("GET") ? Health() : wrong_method("GET");
  }
  if (p.size() == 1 && p[0] == "metrics") {
    if (!method_is("GET")) {
      return wrong_method("GET");
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.registry().RenderPrometheus();
    return r;
  }
  if (p.size() >= 2 && p[0] == "v1") {
    // --- storage: topic admin and timestamp lookup (topic_routes.cc) ---
    if (p[1] == "topics" && ((p.size() == 2 && method_is("POST")) || p.size() == 3 ||
                             (p.size() == 6 && p[3] == "partitions" && p[5] == "offset"))) {
      return StorageRoute(req, p);
    }
    // --- end storage ---
    if (p.size() == 2 && p[1] == "topics") {
      return method_is("GET") ? ListTopics(req.principal) : wrong_method("GET, POST");
    }
    // --- consumer groups (cloud-broker/server/group_routes.cc) ---
    if (p[1] == "groups" && options_.groups != nullptr) {
      return options_.groups->Route(req, p);
    }
    // --- end consumer groups ---
    if (p.size() == 2 && p[1] == "metadata") {
      return method_is("GET") ? Metadata(req.principal) : wrong_method("GET");
    }
    if (p.size() == 2 && p[1] == "query") {
      return method_is("GET") ? Query(req, QueryDeadlineFromNow()) : wrong_method("GET");
    }
    if (p.size() == 3 && p[1] == "query" && p[2] == "aggregate") {
      return method_is("GET") ? Aggregate(req, QueryDeadlineFromNow()) : wrong_method("GET");
    }
    if (p.size() == 4 && p[1] == "topics" && p[3] == "records") {
      auto acks = req.query.find("acks");
      return method_is("POST") ? Produce(p[2], req.body, req.Header("sluice-after-seq"),
                                         req.principal,
                                         acks == req.query.end() ? "" : acks->second,
                                         RequestIdOf(req))
                               : wrong_method("POST");
    }
    if (p.size() == 6 && p[1] == "topics" && p[3] == "partitions" && p[5] == "records") {
      return method_is("GET") ? Fetch(p[2], p[4], req) : wrong_method("GET");
    }
  }
  return HttpResponse::Error(404, "not_found", "no such endpoint: " + req.path);
}

HttpResponse BrokerService::Health() {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("status");
  w.String("ok");
  w.Key("region");
  WriteJsonString(w, policy_.region().value());
  w.Key("broker_id");
  WriteJsonString(w, options_.broker_id);
  w.Key("residency_policy");
  WriteJsonString(w, policy_.version());
  w.Key("topics");
  w.Uint64(store_.Topics().size());
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

HttpResponse BrokerService::ListTopics(const std::string& principal) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("region");
  WriteJsonString(w, policy_.region().value());
  w.Key("topics");
  w.StartArray();
  for (const Topic* t : store_.Topics()) {
    if (options_.auth != nullptr &&
        !options_.auth->Allows(principal, AclOp::kFetch, t->name().value())) {
      continue;  // only the topics this principal may read
    }
    w.StartObject();
    w.Key("name");
    WriteJsonString(w, t->name().value());
    w.Key("partitions");
    w.StartArray();
    for (int32_t i = 0; i < t->partition_count(); ++i) {
      const PartitionLog* log = t->partition(i);
      w.StartObject();
      w.Key("partition");
      w.Int(i);
      w.Key("start_offset");
      w.Int64(log->start_offset());
      w.Key("end_offset");
      w.Int64(log->next_offset());
      w.Key("size_bytes");
      w.Uint64(log->size_bytes());
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

bool BrokerService::NotYetCommitted(const PartitionLog& log, int64_t offset) const {
  return options_.replication != nullptr && offset > log.end_offset() &&
         offset <= log.log_end_offset();
}

HttpResponse BrokerService::Fetch(const std::string& topic, const std::string& partition,
                                  const HttpRequest& req) {
  const Topic* t = store_.Find(TopicName(topic));
  if (t == nullptr) {
    return HttpResponse::Error(404, "unknown_topic", "unknown topic " + topic, "topic");
  }
  char* end = nullptr;
  errno = 0;
  long p = std::strtol(partition.c_str(), &end, 10);
  if (partition.empty() || errno != 0 || end != partition.c_str() + partition.size() ||
      p < 0 || p > INT32_MAX || t->partition(static_cast<int32_t>(p)) == nullptr) {
    return HttpResponse::Error(404, "unknown_partition",
                               "topic " + topic + " has partitions 0.." +
                                   std::to_string(t->partition_count() - 1),
                               "partition");
  }
  const PartitionLog* log = t->partition(static_cast<int32_t>(p));
  int64_t offset, max_records, max_bytes;
  if (!ParamInt(req, "offset", log->start_offset(), &offset)) {
    return HttpResponse::Error(400, "invalid_parameter", "offset must be an integer >= 0",
                               "offset");
  }
  if (!ParamInt(req, "max_records", kDefaultMaxRecords, &max_records) || max_records < 1 ||
      max_records > kMaxMaxRecords) {
    return HttpResponse::Error(400, "invalid_parameter",
                               "max_records must be 1.." + std::to_string(kMaxMaxRecords),
                               "max_records");
  }
  if (!ParamInt(req, "max_bytes", kDefaultMaxBytes, &max_bytes) || max_bytes < 1) {
    return HttpResponse::Error(400, "invalid_parameter", "max_bytes must be >= 1", "max_bytes");
  }
  Result<LogReadResult> res =
      log->Read(offset, static_cast<size_t>(max_records), static_cast<size_t>(max_bytes));
  if (!res.ok()) {
    if (res.status().code() == StatusCode::kInvalidArgument && NotYetCommitted(*log, offset)) {
      // Held here but not known replicated yet (this replica's high watermark lags): nothing
      // to read yet, which is not out of range (Kafka's retriable OFFSET_NOT_AVAILABLE).
      return HttpResponse::Json(200, "{\"records\":[],\"next_offset\":" +
                                         std::to_string(offset) + ",\"end_offset\":" +
                                         std::to_string(log->end_offset()) + "}");
    }
    if (res.status().code() == StatusCode::kInvalidArgument) {
      return OffsetOutOfRange(*log, offset);  // storage: with the valid range
    }
    LogError("fetch", topic + "-" + partition + ": " + res.status().ToString());
    return HttpResponse::Error(500, "storage_error", res.status().message());
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("records");
  w.StartArray();
  for (const LogRecord& r : res->records) {
    WriteRecordJson(w, topic, static_cast<int32_t>(p), r.offset, r.record);
  }
  w.EndArray();
  w.Key("next_offset");
  w.Int64(res->next_offset);
  w.Key("end_offset");
  w.Int64(res->end_offset);
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

}  // namespace sluice::broker
