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
  const bool audit = path == std::vector<std::string>{"v1", "audit"};
  if (options_.query_pool == nullptr || req.method != "GET" ||
      (path != std::vector<std::string>{"v1", "query"} && !aggregate && !audit)) {
    return false;
  }
  // Bad parameters are answered here, cheaply, without taking a place in the queue.
  std::string bad_field;
  const Status valid =
      audit ? Status::Ok()  // checked by Audit (cheap either way)
      : aggregate ? ParseAggregateSpec(req.query, static_cast<size_t>(options_.query_max_limit),
                                     &bad_field)
                      .status()
                : ParseQueryRequest(req, &bad_field).status();
  if (!valid.ok()) {
    respond(HttpResponse::Error(400, "invalid_parameter", valid.message(), bad_field));
    return true;
  }
  const QueryDeadline deadline = QueryDeadlineFromNow();
  auto shared = std::make_shared<HttpRequest>(std::move(req));
  const bool queued = options_.query_pool->TrySubmit([this, shared, respond, deadline,
                                                      aggregate, audit](bool cancelled) {
    if (cancelled) {
      respond(RefuseQuery("stopping", "the broker is stopping"));
      return;
    }
    if (audit) {
      respond(Audit(*shared));
    } else if (aggregate) {
      respond(Aggregate(*shared, deadline));
    } else if (shared->Query("format") == "ndjson") {
      StreamQuery(*shared, deadline, respond);
    } else {
      respond(Query(*shared, deadline));
    }
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

Result<QueryFilter> BrokerService::ParseQueryRequest(const HttpRequest& req,
                                                     std::string* bad_field) const {
  std::map<std::string, std::string> params = req.query;
  const auto format = params.find("format");
  bool stream = false;
  if (format != params.end()) {
    if (format->second != "json" && format->second != "ndjson") {
      *bad_field = "format";
      return Status::InvalidArgument("format must be json or ndjson");
    }
    stream = format->second == "ndjson";
    params.erase(format);
  }
  // Streamed: every match unless `limit` says otherwise (the time budget bounds it).
  return stream ? ParseQueryFilter(params, kStreamLimit, kStreamLimit, bad_field)
                : ParseQueryFilter(params, options_.query_default_limit,
                                   options_.query_max_limit, bad_field);
}

void BrokerService::StreamQuery(const HttpRequest& req, const QueryDeadline& deadline,
                                const HttpResponder& respond) {
  std::string bad_field;
  Result<QueryFilter> filter = ParseQueryRequest(req, &bad_field);
  if (!filter.ok()) {
    respond(HttpResponse::Error(400, "invalid_parameter", filter.status().message(), bad_field));
    return;
  }
  if (options_.on_query_start) {
    options_.on_query_start();
  }
  // Lines are gathered up to kStreamChunkBytes and then written: the connection holds one chunk
  // at a time, and a slow reader slows this query thread (within query.timeout).
  constexpr size_t kStreamChunkBytes = 64 * 1024;
  std::unique_ptr<HttpStreamWriter> writer;
  std::string lines;
  bool client_gone = false;
  auto flush = [&]() -> Status {
    if (!writer) {
      HttpResponse head;
      head.content_type = "application/x-ndjson";
      writer = respond.Stream(std::move(head));
      if (!writer) {  // a server that cannot stream: answer plainly (ignored if answered)
        respond(HttpResponse::Error(500, "internal", "this server cannot stream answers"));
        client_gone = true;
        return Status::Unavailable("the answer cannot be streamed");
      }
    }
    if (!writer->Write(std::move(lines))) {
      client_gone = true;
      return Status::Unavailable("the client stopped reading");
    }
    lines.clear();
    return Status::Ok();
  };
  QueryStreaming streaming;
  streaming.max_held = static_cast<size_t>(options_.query_max_limit) + 1;
  streaming.sink = [&](QueryMatch&& m) -> Status {
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    WriteRecordJson(w, m.topic, m.partition, m.offset, m.record);
    lines.append(sb.GetString(), sb.GetSize());
    lines.push_back('\n');
    return lines.size() >= kStreamChunkBytes ? flush() : Status::Ok();
  };
  Result<QueryResult> res = RunQuery(store_, *filter, deadline, Indexes(), &streaming);
  if (client_gone) {
    return;  // the writer, destroyed unfinished, closes the connection
  }
  if (!writer && lines.empty()) {  // nothing sent yet: an ordinary answer
    if (!res.ok()) {
      respond(QueryError(res.status()));
    } else if (res->timed_out) {
      respond(QueryTimedOut(*res));
    } else {
      lines = QueryEndLine(&*res, "", "");
      if (flush().ok()) {
        writer->Finish();
      }
    }
    return;
  }
  // Records went out already (status 200): the last line says how the answer ended.
  if (!res.ok()) {
    LogError("query", res.status().ToString());
    lines += QueryEndLine(nullptr, "storage_error", res.status().message());
  } else if (res->timed_out) {
    (void)RefuseQuery("timeout", "a streamed query ran past query.timeout after " +
                                     std::to_string(res->returned) + " records");
    lines += QueryEndLine(&*res, "query_timeout",
                          "the query ran past query.timeout (" +
                              std::to_string(options_.query_timeout_ms) +
                              " ms); ask again with cursor=<next> for the rest");
  } else {
    lines += QueryEndLine(&*res, "", "");
  }
  if (flush().ok()) {
    writer->Finish();
  }
}

HttpResponse BrokerService::QueryError(const Status& status) {
  if (status.code() == StatusCode::kNotFound) {
    return HttpResponse::Error(404, "unknown_topic", status.message(), "topic");
  }
  if (status.code() == StatusCode::kInvalidArgument) {
    return HttpResponse::Error(400, "invalid_parameter", status.message(), "cursor");
  }
  LogError("query", status.ToString());
  return HttpResponse::Error(500, "storage_error", status.message());
}

HttpResponse BrokerService::QueryTimedOut(const QueryResult& res) {
  return RefuseQuery("timeout", "the query ran past query.timeout (" +
                                    std::to_string(options_.query_timeout_ms) +
                                    " ms) after scanning " + std::to_string(res.scanned) +
                                    " records; narrow it (from/to, device_id, country, topic)");
}

void BrokerService::WriteQuerySummary(JsonWriter& w, const QueryResult& res) const {
  w.Key("region");
  WriteJsonString(w, policy_.region().value());
  w.Key("returned");
  w.Uint64(res.returned);
  w.Key("next");
  if (res.next.has_value()) {
    WriteJsonString(w, *res.next);
  } else {
    w.Null();
  }
  if (res.matched.has_value()) {
    w.Key("matched");
    w.Uint64(*res.matched);
    w.Key("counts_by_country");
    w.StartObject();
    for (const auto& [country, n] : res.counts_by_country) {
      WriteJsonString(w, country);
      w.Uint64(n);
    }
    w.EndObject();
  }
}

std::string BrokerService::QueryEndLine(const QueryResult* res, const std::string& error,
                                        const std::string& reason) const {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("end");
  w.Bool(true);
  if (res != nullptr) {
    WriteQuerySummary(w, *res);
  }
  if (!error.empty()) {
    w.Key("error");
    WriteJsonString(w, error);
    w.Key("reason");
    WriteJsonString(w, reason);
  }
  w.EndObject();
  return Done(sb) + "\n";
}

HttpResponse BrokerService::Query(const HttpRequest& req, const QueryDeadline& deadline) {
  std::string bad_field;
  Result<QueryFilter> filter = ParseQueryRequest(req, &bad_field);
  if (!filter.ok()) {
    return HttpResponse::Error(400, "invalid_parameter", filter.status().message(), bad_field);
  }
  if (options_.on_query_start) {
    options_.on_query_start();
  }
  Result<QueryResult> res = RunQuery(store_, *filter, deadline, Indexes());
  if (!res.ok()) {
    return QueryError(res.status());
  }
  if (res->timed_out) {
    return QueryTimedOut(*res);
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  WriteQuerySummary(w, *res);
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
