#include "gateway/ingest/event_parser.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <limits>

#include "core/time_util.h"
#include "core/utf8.h"

namespace sluice::gateway {
namespace {

// Iterative: hostile nesting cannot overflow the stack. Validating the encoding: invalid UTF-8
// would be stored, then served back altered (U+FFFD) or as base64.
constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

enum class Field { kNone, kDeviceId, kSensor, kTs, kCountry, kOther };

// A member name as an error's `field`: untrusted, so bounded.
std::string FieldText(std::string_view key) {
  constexpr size_t kMax = 64;
  return std::string(key.substr(0, kMax));
}

// SAX handler: tracks container depth, captures the fields of each event object at
// `event_depth` and its byte range in the input (for the verbatim payload).
class EventHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EventHandler> {
 public:
  EventHandler(const rapidjson::MemoryStream* stream, std::string_view input, int event_depth,
               bool payload_mode, int64_t first_index, const ParseDefaults& defaults,
               std::vector<ParsedEvent>* events)
      : stream_(stream), input_(input), event_depth_(event_depth), payload_mode_(payload_mode),
        index_(first_index), defaults_(defaults), events_(events) {}

  bool StartObject() {
    if (depth_ == event_depth_) {
      if (defaults_.max_events != 0 && static_cast<size_t>(index_) >= defaults_.max_events) {
        return Fail(StatusCode::kTooLarge, "", "more than " +
                                                   std::to_string(defaults_.max_events) +
                                                   " events in one request");
      }
      start_ = ObjectStart();
      cur_ = ParsedEvent();
      has_device_ = has_ts_ = has_country_ = false;
      seen_ = 0;
      member_.clear();
    } else if (depth_ == event_depth_ + 1 && !TypeErrorForContainer()) {
      return false;
    }
    return Deeper();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (depth_ == event_depth_ + 1) {
      std::string_view k(s, n);
      member_ = FieldText(k);
      key_ = k == "device_id" ? Field::kDeviceId
             : k == "sensor"  ? Field::kSensor
             : k == "ts"      ? Field::kTs
             : k == "country" ? Field::kCountry
                              : Field::kOther;
      if (payload_mode_ && (key_ == Field::kDeviceId || key_ == Field::kSensor)) {
        key_ = Field::kOther;  // MQTT: the topic names the device and sensor
      }
      if (key_ != Field::kOther) {
        // Routing by one occurrence while a reader of the payload takes another would send the
        // event where its payload says it may not go.
        const unsigned bit = 1u << static_cast<unsigned>(key_);
        if ((seen_ & bit) != 0) {
          return Invalid(FieldName(key_), "appears more than once in the event");
        }
        seen_ |= bit;
      }
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    if (depth_ == event_depth_) {
      return FinishEvent();
    }
    MemberDone();
    return true;
  }
  bool StartArray() {
    if (depth_ == event_depth_) {
      return NotAnObject();
    }
    if (depth_ == event_depth_ + 1 && !TypeErrorForContainer()) {
      return false;
    }
    return Deeper();
  }
  bool EndArray(rapidjson::SizeType) {
    --depth_;
    MemberDone();
    return true;
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (!AtField()) {
      MemberDone();
      return depth_ != event_depth_ || NotAnObject();
    }
    const bool ok = FieldString(s, n);
    MemberDone();
    return ok;
  }
  bool Int64(int64_t v) { return Integer(v, true); }
  bool Uint64(uint64_t v) {
    return Integer(v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                       ? -1
                       : static_cast<int64_t>(v),
                   v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  }
  bool Int(int v) { return Integer(v, true); }
  bool Uint(unsigned v) { return Integer(v, true); }
  bool Double(double) { return OtherScalar("ts must be an integer (epoch ms) or RFC 3339 string"); }
  bool Null() { return OtherScalar("must not be null"); }
  bool Bool(bool) { return OtherScalar("has the wrong type"); }

  const std::optional<EventError>& error() const { return error_; }
  int64_t index() const { return index_; }
  // The member of the current event whose value is being parsed ("" between members).
  const std::string& member() const { return member_; }

 private:
  // The iterative reader calls the handler before taking the brace; allow for either order.
  size_t ObjectStart() const {
    size_t pos = stream_->Tell();
    return pos < input_.size() && input_[pos] == '{' ? pos : pos - 1;
  }
  size_t ObjectEnd() const {
    size_t pos = stream_->Tell();
    return pos < input_.size() && input_[pos] == '}' ? pos + 1 : pos;
  }
  // The value of a member the gateway reads (device_id, sensor, ts, country) as a string.
  bool FieldString(const char* s, rapidjson::SizeType n) {
    std::string_view v(s, n);
    switch (key_) {
      case Field::kDeviceId:
        if (!IsValidDeviceId(v)) {
          return Invalid("device_id", n == 0 || n > kMaxDeviceIdBytes
                                          ? "must be 1..128 bytes"
                                          : "must contain only [A-Za-z0-9._:-]");
        }
        cur_.device_id = DeviceId(std::string(v));
        has_device_ = true;
        return true;
      case Field::kSensor:
        if (n == 0 || n > kMaxSensorBytes) {
          return Invalid("sensor", "must be 1..128 bytes");
        }
        if (!IsValidSensor(v)) {
          return Invalid("sensor", "must not contain control characters");
        }
        cur_.sensor.assign(s, n);
        return true;
      case Field::kTs: {
        int64_t ms = 0;
        if (!ParseRfc3339Ms(std::string(v), &ms)) {
          return Invalid("ts", "not an RFC 3339 timestamp");
        }
        return SetTs(ms);
      }
      case Field::kCountry: {
        std::string c(v);
        if (!IsCountryCodeShape(c)) {
          return Invalid("country", "must be 2 upper-case letters (ISO 3166-1 alpha-2)");
        }
        cur_.country = CountryCode(std::move(c));
        has_country_ = true;
        return true;
      }
      default:
        return true;
    }
  }
  bool AtField() const { return depth_ == event_depth_ + 1 && key_ != Field::kOther; }
  // Enters a container, within ingest.max_json_depth (the event object is depth 1).
  bool Deeper() {
    if (depth_ + 1 - event_depth_ > defaults_.limits.max_json_depth) {
      return Invalid(member_, "nested deeper than " +
                                  std::to_string(defaults_.limits.max_json_depth) +
                                  " levels (ingest.max_json_depth)");
    }
    ++depth_;
    return true;
  }
  // A value of the event's member ended (a scalar at member level, or its container closed).
  void MemberDone() {
    if (depth_ == event_depth_ + 1) {
      member_.clear();
    }
  }
  bool Fail(StatusCode code, const std::string& field, const std::string& reason) {
    error_ = EventError{code, index_, field, reason};
    return false;
  }
  bool Invalid(const std::string& field, const std::string& reason) {
    return Fail(StatusCode::kInvalidArgument, field, reason);
  }
  bool NotAnObject() { return Invalid("", "event must be a JSON object"); }
  static const char* FieldName(Field f) {
    switch (f) {
      case Field::kDeviceId: return "device_id";
      case Field::kSensor: return "sensor";
      case Field::kTs: return "ts";
      case Field::kCountry: return "country";
      default: return "";
    }
  }
  bool TypeErrorForContainer() {
    if (key_ == Field::kOther) {
      return true;
    }
    Invalid(FieldName(key_), key_ == Field::kTs
                                 ? "ts must be an integer (epoch ms) or RFC 3339 string"
                                 : "must be a string");
    return false;
  }
  bool OtherScalar(const std::string& ts_reason) {
    if (depth_ == event_depth_) {
      return NotAnObject();
    }
    if (!AtField()) {
      MemberDone();
      return true;
    }
    if (key_ == Field::kTs) {
      return Invalid("ts", ts_reason == "must not be null" || ts_reason == "has the wrong type"
                               ? "ts must be an integer (epoch ms) or RFC 3339 string"
                               : ts_reason);
    }
    return Invalid(FieldName(key_), "must be a string");
  }
  bool Integer(int64_t v, bool in_range) {
    if (depth_ == event_depth_) {
      return NotAnObject();
    }
    if (!AtField()) {
      MemberDone();
      return true;
    }
    if (key_ != Field::kTs) {
      return Invalid(FieldName(key_), "must be a string");
    }
    if (!in_range || v < 0) {
      return Invalid("ts", "epoch ms out of range");
    }
    const bool ok = SetTs(v);
    MemberDone();
    return ok;
  }
  bool SetTs(int64_t ms) {
    if (ms < 0) {
      return Invalid("ts", "before 1970 (epoch ms must be >= 0)");
    }
    const int64_t max_future = defaults_.limits.max_future_ms;
    // Kafka's message.timestamp.after.max.ms: a timestamp far ahead would stop the broker's
    // time retention of its partition.
    if (max_future >= 0 && ms > defaults_.now_ms && ms - defaults_.now_ms > max_future) {
      return Invalid("ts", "epoch ms " + std::to_string(ms) + " is more than " +
                               std::to_string(max_future) +
                               " ms after the gateway's clock (ingest.max_future)");
    }
    cur_.ts_ms = ms;
    has_ts_ = true;
    return true;
  }
  bool FinishEvent() {
    if (!payload_mode_ && !has_device_) {
      return Invalid("device_id", "required");
    }
    if (cur_.sensor.empty()) {
      cur_.sensor = "default";
    }
    if (!has_ts_) {
      cur_.ts_ms = defaults_.now_ms;
    }
    if (!has_country_) {
      cur_.country = defaults_.country;
    }
    if (payload_mode_) {
      ts_seen_ = has_ts_;
      country_seen_ = has_country_;
    }
    size_t end = ObjectEnd();
    cur_.payload.assign(input_.data() + start_, end - start_);
    events_->push_back(std::move(cur_));
    ++index_;
    return true;
  }

  const rapidjson::MemoryStream* stream_;
  std::string_view input_;
  int event_depth_;
  bool payload_mode_;
  int64_t index_;
  const ParseDefaults& defaults_;
  std::vector<ParsedEvent>* events_;
  int depth_ = 0;
  Field key_ = Field::kNone;
  size_t start_ = 0;
  ParsedEvent cur_;
  bool has_device_ = false;
  bool has_ts_ = false;
  bool has_country_ = false;
  unsigned seen_ = 0;   // bit per Field read so far in this event
  std::string member_;  // see member()
  std::optional<EventError> error_;

 public:
  bool ts_seen_ = false;
  bool country_seen_ = false;
};

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
