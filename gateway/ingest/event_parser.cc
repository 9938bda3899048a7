#include "gateway/ingest/event_parser.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>

#include "core/utf8.h"
#include "gateway/ingest/event_handler.h"

namespace sluice::gateway {
namespace {

using internal::EventHandler;
constexpr unsigned kFlags = internal::kEventParseFlags;

// Parses `text` (one JSON value) with events at `event_depth`. Returns false with out->error set.
bool ParseValue(std::string_view text, int event_depth, int64_t first_index,
                const ParseDefaults& defaults, ParseOutcome* out) {
  rapidjson::MemoryStream ms(text.data(), text.size());
  EventHandler h(&ms, text, event_depth, false, first_index, defaults, &out->events);
  rapidjson::Reader reader;
  rapidjson::ParseResult r = reader.Parse<kFlags>(ms, h);
  if (h.error()) {
    out->error = h.error();
    return false;
  }
  if (r.IsError()) {
    if (r.Code() == rapidjson::kParseErrorStringInvalidEncoding) {
      out->error = EventError{StatusCode::kInvalidArgument, h.index(), h.member(),
                              "invalid UTF-8 in a string" +
                                  std::string(h.member().empty() ? " (a member name)" : "") +
                                  " at offset " + std::to_string(r.Offset())};
      return false;
    }
    out->error = EventError{StatusCode::kInvalidArgument, h.index(), "",
                            std::string("invalid JSON: ") + rapidjson::GetParseError_En(r.Code()) +
                                " at offset " + std::to_string(r.Offset())};
    return false;
  }
  return true;
}

size_t SkipSpace(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) {
    ++i;
  }
  return i;
}

void ParseNdjson(std::string_view body, const ParseDefaults& defaults, ParseOutcome* out) {
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    size_t end = nl == std::string_view::npos ? body.size() : nl;
    std::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    if (SkipSpace(line, 0) == line.size()) {
      continue;  // blank line
    }
    if (!ParseValue(line, 0, static_cast<int64_t>(out->events.size()), defaults, out)) {
      return;
    }
  }
}

}  // namespace

bool IsValidDeviceId(std::string_view id) {
  if (id.empty() || id.size() > kMaxDeviceIdBytes) {
    return false;
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool IsValidSensor(std::string_view sensor) { return IsPrintableUtf8(sensor); }

ParseOutcome ParseEvents(std::string_view body, std::string_view content_type,
                         const ParseDefaults& defaults) {
  ParseOutcome out;
  // RapidJSON reads a NUL as the end of its input: what follows one would be dropped silently.
  const size_t nul = body.find('\0');
  if (nul != std::string_view::npos) {
    // The event it is in: the first one the text before it does not complete. A bad field
    // before it is the first error of the body.
    ParseOutcome before = ParseEvents(body.substr(0, nul), content_type, defaults);
    if (!before.ok() && (!before.error->field.empty() ||
                         before.error->code != StatusCode::kInvalidArgument)) {
      return before;
    }
    const int64_t index =
        before.ok() ? static_cast<int64_t>(before.events.size()) : before.error->index;
    out.error = EventError{StatusCode::kInvalidArgument, std::max<int64_t>(index, 0), "",
                           "NUL byte at offset " + std::to_string(nul)};
    return out;
  }
  bool ndjson = content_type.find("ndjson") != std::string_view::npos ||
                content_type.find("jsonl") != std::string_view::npos;
  size_t first = SkipSpace(body, 0);
  if (first == body.size()) {
    out.error = EventError{StatusCode::kInvalidArgument, -1, "", "body holds no events"};
    return out;
  }
  if (ndjson) {
    ParseNdjson(body, defaults, &out);
  } else if (body[first] == '[') {
    if (ParseValue(body, 1, 0, defaults, &out) && out.events.empty()) {
      out.error = EventError{StatusCode::kInvalidArgument, -1, "", "body holds no events"};
    }
  } else {
    // One object, or NDJSON sent as application/json: decide by what follows the first value.
    rapidjson::MemoryStream ms(body.data(), body.size());
    rapidjson::BaseReaderHandler<> skip;
    rapidjson::Reader reader;
    rapidjson::ParseResult r =
        reader.Parse<kFlags | rapidjson::kParseStopWhenDoneFlag>(ms, skip);
    if (!r.IsError() && SkipSpace(body, ms.Tell()) < body.size()) {
      ParseNdjson(body, defaults, &out);
    } else {
      ParseValue(body, 0, 0, defaults, &out);
    }
  }
  if (!out.ok()) {
    out.events.clear();
  }
  return out;
}

bool ExtractPayloadFields(std::string_view payload, int64_t now_ms, const IngestLimits& limits,
                          PayloadFields* out, std::string* field, std::string* reason) {
  size_t first = SkipSpace(payload, 0);
  if (first == payload.size() || payload[first] != '{') {
    return true;  // not a JSON object: opaque bytes
  }
  if (payload.find('\0') != std::string_view::npos) {
    return true;  // not JSON (RapidJSON would stop at the NUL): opaque bytes
  }
  ParseOutcome o;
  ParseDefaults d;
  d.now_ms = now_ms;
  d.limits = limits;
  rapidjson::MemoryStream ms(payload.data(), payload.size());
  EventHandler h(&ms, payload, 0, /*payload_mode=*/true, 0, d, &o.events);
  rapidjson::Reader reader;
  rapidjson::ParseResult r = reader.Parse<kFlags>(ms, h);
  if (h.error()) {
    *field = h.error()->field;
    *reason = h.error()->reason;
    return false;
  }
  if (r.IsError() || o.events.size() != 1) {
    return true;  // not valid JSON: opaque bytes
  }
  if (h.ts_seen_) {
    out->ts_ms = o.events[0].ts_ms;
  }
  if (h.country_seen_) {
    out->country = o.events[0].country;
  }
  return true;
}

}  // namespace sluice::gateway
