// HttpIngest: the gateway's HTTP endpoints on core's HttpServer (docs/API.md, "Gateway").
//   POST /v1/events  parse (event_parser.h); any bad event -> 400 and nothing stored; too many
//                    events -> 413; a country no region lists -> 422 (field "country"); else
//                    Append to the buffer and answer 202 {"accepted":N} from the commit callback,
//                    once the events are durable (the server thread is not held); a buffer
//                    error -> 503 with Retry-After.
//   GET /healthz     200 {"status":"ok","gateway_id":...,"buffered_records":N}
//   GET /metrics     Prometheus text of the registry.
// Refused requests count in sluice_gateway_dropped_total{source="http",reason} (one per request).
// Thread-safety: Handle() is thread-safe (called from the server's pool).
#pragma once

#include <cstdint>
#include <string>

#include "core/clock.h"
#include "core/http.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/ingest/event_parser.h"
#include "gateway/routing/country_source.h"
#include "gateway/routing/region_router.h"

namespace sluice::gateway {

struct HttpIngestOptions {
  GatewayId gateway_id;
  CountryCode country;  // default for events that name none
  size_t max_events_per_request = 10000;
  IngestLimits limits;  // ingest.*
  int retry_after_s = 1;
  OverflowPolicy overflow = OverflowPolicy::kReject;  // buffer.overflow.http
  CountrySource* country_source = nullptr;  // residency.country_source; nullptr: event
};

class HttpIngest {
 public:
  HttpIngest(EventBuffer& buffer, const RegionRouter& router, Clock& clock,
             HttpIngestOptions options, MetricsRegistry& metrics);

  void Handle(HttpRequest&& request, HttpResponder respond);

 private:
  void PostEvents(HttpRequest&& request, HttpResponder respond);
  void Refuse(const HttpResponder& respond, HttpResponse response, const std::string& reason);

  EventBuffer& buffer_;
  const RegionRouter& router_;
  Clock& clock_;
  HttpIngestOptions options_;
  MetricsRegistry& metrics_;
  Counter& received_;
  RateLimitedLog log_;
};

}  // namespace sluice::gateway
