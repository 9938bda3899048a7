// BrokerService queries: GET /v1/query runs on the QueryPool (cloud-broker/query/query_pool.h),
// never on an HTTP thread, with a time budget (query.timeout). A query that finds the pool's
// threads busy and its queue full, or that runs past its budget, is answered 503 with its reason
// and Retry-After; produce, fetch and /healthz keep the HTTP threads.
#include <memory>

#include "cloud-broker/index/store_indexer.h"
#include "cloud-broker/query/aggregate.h"
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
  const std::vector<std::string> path = SplitPath(req.path);
  const bool aggregate = path == std::vector<std::string>{"v1", "query", "aggregate"};
  if (options_.query_pool == nullptr || req.method != "GET" ||
      (path != std::vector<std::string>{"v1", "query"} && !aggregate)) {
    return false;
  }
  // Bad parameters are answered here, cheaply, without taking a place in the queue.
  std::string bad_field;
  const Status valid =
      aggregate ? ParseAggregateSpec(req.query, static_cast<size_t>(options_.query_max_limit),
                                     &bad_field)
                      .status()
                : ParseQueryFilter(req.query, options_.query_default_limit,
                                   options_.query_max_limit, &bad_field)
                      .status();
  if (!valid.ok()) {
    respond(HttpResponse::Error(400, "invalid_parameter", valid.message(), bad_field));
    return true;
  }
  const QueryDeadline deadline = QueryDeadlineFromNow();
  auto shared = std::make_shared<HttpRequest>(std::move(req));
  const bool queued = options_.query_pool->TrySubmit([this, shared, respond, deadline,
                                                      aggregate](bool cancelled) {
    if (cancelled) {
      respond(RefuseQuery("stopping", "the broker is stopping"));
      return;
    }
    respond(aggregate ? Aggregate(*shared, deadline) : Query(*shared, deadline));
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

IndexLookup BrokerService::Indexes() const {
  if (options_.indexer == nullptr) {
    return nullptr;
  }
  StoreIndexer* indexer = options_.indexer;
  return [indexer](const std::string& topic, int32_t p) { return indexer->Find(topic, p); };
}

HttpResponse BrokerService::Aggregate(const HttpRequest& req, const QueryDeadline& deadline) {
  std::string bad_field;
  Result<AggregateSpec> spec =
      ParseAggregateSpec(req.query, static_cast<size_t>(options_.query_max_limit), &bad_field);
  if (!spec.ok()) {
    return HttpResponse::Error(400, "invalid_parameter", spec.status().message(), bad_field);
  }
  if (options_.on_query_start) {
    options_.on_query_start();
  }
  Result<AggregateResult> res = RunAggregate(store_, *spec, deadline, Indexes());
  if (!res.ok()) {
    switch (res.status().code()) {
      case StatusCode::kNotFound:
        return HttpResponse::Error(404, "unknown_topic", res.status().message(), "topic");
      case StatusCode::kResourceExhausted:
        return HttpResponse::Error(422, "too_many_rows", res.status().message(), "group_by");
      default:
        LogError("query", res.status().ToString());
        return HttpResponse::Error(500, "storage_error", res.status().message());
    }
  }
  if (res->timed_out) {
    return RefuseQuery("timeout", "the aggregate ran past query.timeout (" +
                                      std::to_string(options_.query_timeout_ms) + " ms) after " +
                                      std::to_string(res->rollups) + " minute rollups, " +
                                      std::to_string(res->index_entries) + " index entries and " +
                                      std::to_string(res->records_read) +
                                      " records; narrow it (from/to, device_id, country, topic)");
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("region");
  WriteJsonString(w, policy_.region().value());
  if (spec->bucket_ms.has_value()) {
    w.Key("bucket_ms");
    w.Int64(*spec->bucket_ms);
  }
  if (!spec->group_by.empty()) {
    w.Key("group_by");
    WriteJsonString(w, spec->group_by);
  }
  if (spec->field.has_value()) {
    w.Key("field");
    WriteJsonString(w, *spec->field);
  }
  w.Key("rollups");
  w.Uint64(res->rollups);
  w.Key("index_entries");
  w.Uint64(res->index_entries);
  w.Key("records_read");
  w.Uint64(res->records_read);
  w.Key("rows");
  w.StartArray();
  for (const AggregateRow& r : res->rows) {
    w.StartObject();
    if (spec->bucket_ms.has_value()) {
      w.Key("bucket");
      w.Int64(r.bucket_start);
    }
    if (!spec->group_by.empty()) {
      w.Key(spec->group_by.c_str());
      WriteJsonString(w, r.group);
    }
    w.Key("count");
    w.Uint64(r.count);
    if (spec->field.has_value()) {
      w.Key("values");
      w.Uint64(r.values);
      if (r.values > 0) {
        w.Key("min");
        w.Double(r.min);
        w.Key("max");
        w.Double(r.max);
        w.Key("sum");
        w.Double(r.sum);
        w.Key("avg");
        w.Double(r.sum / static_cast<double>(r.values));
      }
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
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
  Result<QueryResult> res = RunQuery(store_, *filter, deadline, Indexes());
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
