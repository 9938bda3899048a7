// Parsing of device events from HTTP bodies and MQTT payloads (docs/API.md, "Gateway").
//
// ParseEvents accepts one JSON object, a JSON array of objects, or NDJSON (one object per line,
// blank lines ignored; chosen by a content type naming ndjson/jsonl, or when the body holds more
// than one top-level object). It uses RapidJSON's SAX reader (no DOM, iterative so hostile
// nesting cannot overflow the stack) and keeps each event's exact JSON text as its payload. It is
// not parsed in situ: in-situ parsing writes string terminators into the buffer, which would
// corrupt the payload text kept verbatim.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::gateway {

inline constexpr size_t kMaxDeviceIdBytes = 128;
inline constexpr size_t kMaxSensorBytes = 128;

struct ParsedEvent {
  DeviceId device_id;
  std::string sensor;
  CountryCode country;
  bool country_claimed = false;  // the event named its country (else the gateway's default)
  int64_t ts_ms = 0;
  std::string payload;  // the object's exact JSON text
};

// What the gateway accepts from a device (config: ingest.*).
struct IngestLimits {
  // ingest.max_json_depth: deepest nesting of an event object, itself counted (1..256,
  // kMaxJsonDepthLimit in core/json_check.h, which brokers render as JSON).
  int max_json_depth = 64;
  // ingest.max_future: ts more than this after the gateway's clock is refused; < 0: no bound.
  int64_t max_future_ms = 24LL * 3600 * 1000;
};

struct ParseDefaults {
  CountryCode country;     // used when an event names none
  int64_t now_ms = 0;      // used when an event has no ts; the clock ts is checked against
  size_t max_events = 0;   // more events than this -> kTooLarge; 0 = unlimited
  IngestLimits limits;
};

// The first bad event: code kInvalidArgument (-> 400) or kTooLarge (-> 413).
struct EventError {
  StatusCode code = StatusCode::kInvalidArgument;
  int64_t index = -1;  // 0-based event position; -1 when not about one event
  std::string field;   // "device_id", "ts", ... or "" for a JSON syntax error
  std::string reason;
};

struct ParseOutcome {
  std::vector<ParsedEvent> events;
  std::optional<EventError> error;
  bool ok() const { return !error.has_value(); }
};

ParseOutcome ParseEvents(std::string_view body, std::string_view content_type,
                         const ParseDefaults& defaults);

// 1..128 bytes of [A-Za-z0-9._:-].
bool IsValidDeviceId(std::string_view id);
// Valid UTF-8 without control characters (the length is checked apart: kMaxSensorBytes).
bool IsValidSensor(std::string_view sensor);

// For MQTT: when `payload` is a JSON object, the ts and country it names (validated as for
// HTTP). A payload that is not a JSON object is opaque bytes: ok, nothing set. A JSON object with
// a bad ts or country returns false with *field and *reason set.
struct PayloadFields {
  std::optional<int64_t> ts_ms;
  std::optional<CountryCode> country;
};
bool ExtractPayloadFields(std::string_view payload, int64_t now_ms, const IngestLimits& limits,
                          PayloadFields* out, std::string* field, std::string* reason);

}  // namespace sluice::gateway
