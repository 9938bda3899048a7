// EventHandler: the RapidJSON SAX handler behind ParseEvents and ExtractPayloadFields
// (event_parser.h): tracks container depth, captures the fields of each event object at
// `event_depth` and its byte range in the input (for the verbatim payload), and refuses what
// the API refuses (docs/API.md, "Gateway") with the event's index and field. Internal to the
// ingest module. Thread-safety: one instance per parse, on one thread.
#pragma once

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/ingest/event_parser.h"

namespace sluice::gateway::internal {

// Iterative: hostile nesting cannot overflow the stack. Validating the encoding: invalid UTF-8
// would be stored, then served back altered (U+FFFD) or as base64.
inline constexpr unsigned kEventParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

enum class Field { kNone, kDeviceId, kSensor, kTs, kCountry, kOther };

// payload_mode (MQTT): device_id and sensor are ordinary members (the topic names them), and
// ts_seen_/country_seen_ tell whether the payload named them.
class EventHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, EventHandler> {
 public:
  EventHandler(const rapidjson::MemoryStream* stream, std::string_view input, int event_depth,
               bool payload_mode, int64_t first_index, const ParseDefaults& defaults,
               std::vector<ParsedEvent>* events)
      : stream_(stream), input_(input), event_depth_(event_depth), payload_mode_(payload_mode),
        index_(first_index), defaults_(defaults), events_(events) {}

  bool StartObject();
  bool Key(const char* s, rapidjson::SizeType n, bool);
  bool EndObject(rapidjson::SizeType);
  bool StartArray();
  bool EndArray(rapidjson::SizeType);
  bool String(const char* s, rapidjson::SizeType n, bool);
  bool Int64(int64_t v) { return Integer(v, true); }
  bool Uint64(uint64_t v);
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
  size_t ObjectStart() const;
  size_t ObjectEnd() const;
  // The value of a member the gateway reads (device_id, sensor, ts, country) as a string.
  bool FieldString(const char* s, rapidjson::SizeType n);
  bool AtField() const { return depth_ == event_depth_ + 1 && key_ != Field::kOther; }
  // Enters a container, within ingest.max_json_depth (the event object is depth 1).
  bool Deeper();
  // A value of the event's member ended (a scalar at member level, or its container closed).
  void MemberDone();
  bool Fail(StatusCode code, const std::string& field, const std::string& reason);
  bool Invalid(const std::string& field, const std::string& reason);
  bool NotAnObject() { return Invalid("", "event must be a JSON object"); }
  static const char* FieldName(Field f);
  bool TypeErrorForContainer();
  bool OtherScalar(const std::string& ts_reason);
  bool Integer(int64_t v, bool in_range);
  bool SetTs(int64_t ms);
  bool FinishEvent();

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

}  // namespace sluice::gateway::internal
