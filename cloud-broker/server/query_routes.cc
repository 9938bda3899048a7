// BrokerService queries: GET /v1/query runs on the QueryPool (cloud-broker/query/query_pool.h),
// never on an HTTP thread, with a time budget (query.timeout). A query that finds the pool's
// threads busy and its queue full, or that runs past its budget, is answered 503 with its reason
// and Retry-After; produce, fetch and /healthz keep the HTTP threads.
#include <memory>

#include "cloud-broker/index/store_indexer.h"
#include "cloud-broker/query/query_pool.h"
#include "cloud-broker/server/broker_service.h"

namespace sluice::broker {
namespace {
std::string Done(rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }
}  // namespace

QueryDeadline BrokerService::QueryDeadlineFromNow() const {
  QueryDeadline d;
  if (options_.query_timeout_ms > 0) {
    d.clock = options_.clock;
    d.at_us = options_.clock->MonotonicUs() + options_.query_timeout_ms * 1000;
  }
  return d;
}

HttpResponse BrokerService::RefuseQuery(const std::string& reason, const std::string& message) {
  metrics_.registry()
      .GetCounter("sluice_broker_queries_refused_total",
                  "Queries answered 503: query pool full (overloaded), over query.timeout "
                  "(timeout), broker stopping (stopping)",
                  {{"reason", reason}})
      .Inc();
  refusal_log_.Log(LogLevel::kWarn, "query", reason, "query refused (" + reason + "): " + message);
  HttpResponse r = HttpResponse::Error(503, "query_" + reason, message);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

bool BrokerService::MaybeQueueQuery(HttpRequest& req, const HttpResponder& respond) {
  if (options_.query_pool == nullptr || req.method != "GET" ||
      SplitPath(req.path) != std::vector<std::string>{"v1", "query"}) {
    return false;
  }
  // Bad parameters are answered here, cheaply, without taking a place in the queue.
  std::string bad_field;
  Result<QueryFilter> filter = ParseQueryFilter(req.query, options_.query_default_limit,
                                                options_.query_max_limit, &bad_field);
  if (!filter.ok()) {
    respond(HttpResponse::Error(400, "invalid_parameter", filter.status().message(), bad_field));
    return true;
  }
  const QueryDeadline deadline = QueryDeadlineFromNow();
  auto shared = std::make_shared<HttpRequest>(std::move(req));
  const bool queued = options_.query_pool->TrySubmit([this, shared, respond,
                                                      deadline](bool cancelled) {
    if (cancelled) {
      respond(RefuseQuery("stopping", "the broker is stopping"));
      return;
    }
    respond(Query(*shared, deadline));
  });
  if (!queued && options_.query_pool->stopped()) {
    respond(RefuseQuery("stopping", "the broker is stopping"));
  } else if (!queued) {
    respond(RefuseQuery("overloaded",
                        "every query thread is busy and the query queue is full "
                        "(query.threads, query.max_waiting); retry later"));
  }
  return true;
}

HttpResponse BrokerService::Query(const HttpRequest& req, const QueryDeadline& deadline) {
  std::string bad_field;
  Result<QueryFilter> filter = ParseQueryFilter(req.query, options_.query_default_limit,
                                                options_.query_max_limit, &bad_field);
  if (!filter.ok()) {
    return HttpResponse::Error(400, "invalid_parameter", filter.status().message(), bad_field);
  }
  if (options_.on_query_start) {
    options_.on_query_start();
  }
  IndexLookup indexes;
  if (options_.indexer != nullptr) {
    StoreIndexer* indexer = options_.indexer;
    indexes = [indexer](const std::string& topic, int32_t p) { return indexer->Find(topic, p); };
  }
  Result<QueryResult> res = RunQuery(store_, *filter, deadline, indexes);
  if (!res.ok()) {
    if (res.status().code() == StatusCode::kNotFound) {
      return HttpResponse::Error(404, "unknown_topic", res.status().message(), "topic");
    }
    if (res.status().code() == StatusCode::kInvalidArgument) {
      return HttpResponse::Error(400, "invalid_parameter", res.status().message(), "cursor");
    }
    LogError("query", res.status().ToString());
    return HttpResponse::Error(500, "storage_error", res.status().message());
  }
  if (res->timed_out) {
    return RefuseQuery("timeout", "the query ran past query.timeout (" +
                                      std::to_string(options_.query_timeout_ms) +
                                      " ms) after scanning " + std::to_string(res->scanned) +
                                      " records; narrow it (from/to, device_id, country, topic)");
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("region");
  WriteJsonString(w, policy_.region().value());
  w.Key("returned");
  w.Uint64(res->records.size());
  w.Key("next");
  if (res->next.has_value()) {
    WriteJsonString(w, *res->next);
  } else {
    w.Null();
  }
  if (res->matched.has_value()) {
    w.Key("matched");
    w.Uint64(*res->matched);
    w.Key("counts_by_country");
    w.StartObject();
    for (const auto& [country, n] : res->counts_by_country) {
      WriteJsonString(w, country);
      w.Uint64(n);
    }
    w.EndObject();
  }
  w.Key("records");
  w.StartArray();
  for (const QueryMatch& m : res->records) {
    WriteRecordJson(w, m.topic, m.partition, m.offset, m.record);
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

}  // namespace sluice::broker
