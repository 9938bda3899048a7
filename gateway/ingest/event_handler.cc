#include "gateway/ingest/event_handler.h"

#include <limits>

#include "core/time_util.h"
#include "core/utf8.h"

namespace sluice::gateway::internal {
namespace {

// A member name as an error's `field`: untrusted, so bounded.
std::string FieldText(std::string_view key) {
  constexpr size_t kMax = 64;
  return std::string(key.substr(0, kMax));
}

}  // namespace

bool EventHandler::StartObject() {
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

bool EventHandler::Key(const char* s, rapidjson::SizeType n, bool) {
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

bool EventHandler::EndObject(rapidjson::SizeType) {
  --depth_;
  if (depth_ == event_depth_) {
    return FinishEvent();
  }
  MemberDone();
  return true;
}

bool EventHandler::StartArray() {
  if (depth_ == event_depth_) {
    return NotAnObject();
  }
  if (depth_ == event_depth_ + 1 && !TypeErrorForContainer()) {
    return false;
  }
  return Deeper();
}

bool EventHandler::EndArray(rapidjson::SizeType) {
  --depth_;
  MemberDone();
  return true;
}

bool EventHandler::String(const char* s, rapidjson::SizeType n, bool) {
  if (!AtField()) {
    MemberDone();
    return depth_ != event_depth_ || NotAnObject();
  }
  const bool ok = FieldString(s, n);
  MemberDone();
  return ok;
}

bool EventHandler::Uint64(uint64_t v) {
  return Integer(v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                     ? -1
                     : static_cast<int64_t>(v),
                 v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

size_t EventHandler::ObjectStart() const {
  size_t pos = stream_->Tell();
  return pos < input_.size() && input_[pos] == '{' ? pos : pos - 1;
}

size_t EventHandler::ObjectEnd() const {
  size_t pos = stream_->Tell();
  return pos < input_.size() && input_[pos] == '}' ? pos + 1 : pos;
}

bool EventHandler::FieldString(const char* s, rapidjson::SizeType n) {
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

bool EventHandler::Deeper() {
  if (depth_ + 1 - event_depth_ > defaults_.limits.max_json_depth) {
    return Invalid(member_, "nested deeper than " +
                                std::to_string(defaults_.limits.max_json_depth) +
                                " levels (ingest.max_json_depth)");
  }
  ++depth_;
  return true;
}

void EventHandler::MemberDone() {
  if (depth_ == event_depth_ + 1) {
    member_.clear();
  }
}

bool EventHandler::Fail(StatusCode code, const std::string& field, const std::string& reason) {
  error_ = EventError{code, index_, field, reason};
  return false;
}

bool EventHandler::Invalid(const std::string& field, const std::string& reason) {
  return Fail(StatusCode::kInvalidArgument, field, reason);
}

const char* EventHandler::FieldName(Field f) {
  switch (f) {
    case Field::kDeviceId: return "device_id";
    case Field::kSensor: return "sensor";
    case Field::kTs: return "ts";
    case Field::kCountry: return "country";
    default: return "";
  }
}

bool EventHandler::TypeErrorForContainer() {
  if (key_ == Field::kOther) {
    return true;
  }
  Invalid(FieldName(key_), key_ == Field::kTs
                               ? "ts must be an integer (epoch ms) or RFC 3339 string"
                               : "must be a string");
  return false;
}

bool EventHandler::OtherScalar(const std::string& ts_reason) {
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

bool EventHandler::Integer(int64_t v, bool in_range) {
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

bool EventHandler::SetTs(int64_t ms) {
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

bool EventHandler::FinishEvent() {
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
  cur_.country_claimed = has_country_;
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

}  // namespace sluice::gateway::internal
