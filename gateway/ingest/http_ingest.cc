#include "gateway/ingest/http_ingest.h"

#include "gateway/ingest/event_parser.h"

namespace sluice::gateway {

HttpIngest::HttpIngest(EventBuffer& buffer, const RegionRouter& router, Clock& clock,
                       HttpIngestOptions options, MetricsRegistry& metrics)
    : buffer_(buffer), router_(router), clock_(clock), options_(std::move(options)),
      metrics_(metrics),
      received_(metrics.GetCounter("sluice_gateway_received_total",
                                   "Events accepted into the buffer", {{"source", "http"}})) {}

void HttpIngest::Handle(HttpRequest&& request, HttpResponder respond) {
  if (request.path == "/v1/events") {
    if (request.method != "POST") {
      respond(HttpResponse::Error(405, "method_not_allowed", "use POST"));
      return;
    }
    PostEvents(std::move(request), std::move(respond));
  } else if (request.path == "/healthz" && request.method == "GET") {
    // Always 200 while the process serves (liveness); "degraded" says why ingest is refused.
    const int64_t free_bytes = buffer_.DiskFreeBytes();
    const Status writable = buffer_.Writable(free_bytes);
    std::string body = "{\"status\":\"" + std::string(writable.ok() ? "ok" : "degraded") +
                       "\",\"gateway_id\":\"" + options_.gateway_id.value() +
                       "\",\"buffered_records\":" +
                       std::to_string(buffer_.total_buffered_records()) +
                       ",\"disk_free_bytes\":" + std::to_string(free_bytes) +
                       ",\"residency_policy\":\"" + router_.policy_version() + "\"";
    if (!writable.ok()) {
      body += ",\"reason\":\"" + std::string(IsDiskFull(writable) ? "disk_full" : "write_failed") +
              "\"";
    }
    respond(HttpResponse::Json(200, body + "}"));
  } else if (request.path == "/metrics" && request.method == "GET") {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.RenderPrometheus();
    respond(std::move(r));
  } else {
    respond(HttpResponse::Error(404, "not_found", "no such endpoint: " + request.path));
  }
}

void HttpIngest::Refuse(const HttpResponder& respond, HttpResponse response,
                        const std::string& reason) {
  metrics_
      .GetCounter("sluice_gateway_dropped_total", "Refused or dropped events/requests",
                  {{"source", "http"}, {"reason", reason}})
      .Inc();
  log_.Log(LogLevel::kWarn, "http", reason, "refused POST /v1/events (" + reason + "): " +
                                                std::to_string(response.status) + " " +
                                                response.body);
  respond(std::move(response));
}

void HttpIngest::PostEvents(HttpRequest&& request, HttpResponder respond) {
  const int64_t now = clock_.NowMs();
  ParseDefaults defaults{options_.country, now, options_.max_events_per_request,
                         options_.limits};
  ParseOutcome parsed = ParseEvents(request.body, request.Header("content-type"), defaults);
  if (!parsed.ok()) {
    const EventError& e = *parsed.error;
    if (e.code == StatusCode::kTooLarge) {
      Refuse(respond, HttpResponse::Error(413, "too_large", e.reason), "too_many_events");
    } else {
      Refuse(respond, HttpResponse::Error(400, "invalid_event", e.reason, e.field, e.index),
             "invalid_event");
    }
    return;
  }
  std::vector<PendingEvent> pending;
  pending.reserve(parsed.events.size());
  for (size_t i = 0; i < parsed.events.size(); ++i) {
    ParsedEvent& pe = parsed.events[i];
    if (options_.country_source != nullptr) {
      const CountryDecision d = options_.country_source->Decide(
          pe.device_id, pe.country_claimed ? std::optional<CountryCode>(pe.country)
                                           : std::nullopt);
      if (!d.error.empty()) {
        Refuse(respond,
               HttpResponse::Error(422, d.error, d.reason, d.field, static_cast<int64_t>(i)),
               d.error);
        return;
      }
      pe.country = d.country;
    }
    const RegionConfig* region = router_.Route(pe.country);
    if (region == nullptr) {
      Refuse(respond,
             HttpResponse::Error(422, "no_region",
                                 "country " + pe.country.value() +
                                     " may be stored in no region (residency policy " +
                                     router_.policy_version() + ")",
                                 "country", static_cast<int64_t>(i)),
             "no_region");
      return;
    }
    PendingEvent p;
    p.region = region->name;
    p.event.device_id = std::move(pe.device_id);
    p.event.sensor = std::move(pe.sensor);
    p.event.country = std::move(pe.country);
    p.event.ts_ms = pe.ts_ms;
    p.event.ingest_ms = now;
    p.event.gateway_id = options_.gateway_id;
    p.event.source = "http";
    p.event.payload = std::move(pe.payload);
    pending.push_back(std::move(p));
  }
  const size_t n = pending.size();
  // Answered from the commit thread once durable; no server thread waits for the fsync.
  buffer_.Append(std::move(pending), [this, respond, n](const Status& st, uint64_t) {
    if (st.ok()) {
      received_.Inc(n);
      respond(HttpResponse::Json(202, "{\"accepted\":" + std::to_string(n) + "}"));
      return;
    }
    const std::string reason = AppendRefusalReason(st);
    HttpResponse r = HttpResponse::Error(
        503, reason == "buffer_unavailable" ? "unavailable" : reason, "buffer: " + st.message());
    r.headers.clear();  // Error() set a default Retry-After; ours is the configured one
    r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
    Refuse(respond, std::move(r), reason);
  }, options_.overflow);
}

}  // namespace sluice::gateway
