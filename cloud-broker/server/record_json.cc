#include "cloud-broker/server/record_json.h"

#include <cerrno>
#include <cstdlib>

#include "core/json_check.h"
#include "core/utf8.h"

namespace sluice::broker {
namespace {

void WriteHeaderString(JsonWriter& w, const Record& r, const char* name) {
  const std::string* v = r.FindHeader(name);
  if (v == nullptr) {
    w.Null();
  } else {
    WriteJsonString(w, *v);
  }
}

// Numeric headers (decimal text) as JSON numbers; null if absent or not a number.
void WriteHeaderNumber(JsonWriter& w, const Record& r, const char* name, bool is_unsigned) {
  const std::string* v = r.FindHeader(name);
  if (v == nullptr || v->empty()) {
    w.Null();
    return;
  }
  char* end = nullptr;
  errno = 0;
  if (is_unsigned) {
    unsigned long long x = std::strtoull(v->c_str(), &end, 10);
    if (errno == 0 && end == v->c_str() + v->size() && (*v)[0] != '-') {
      w.Uint64(x);
      return;
    }
  } else {
    long long x = std::strtoll(v->c_str(), &end, 10);
    if (errno == 0 && end == v->c_str() + v->size()) {
      w.Int64(x);
      return;
    }
  }
  w.Null();
}

}  // namespace

void WriteJsonString(JsonWriter& w, std::string_view s) {
  bool valid = true;
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SeqLen(s, i);
    if (n == 0) {
      valid = false;
      break;
    }
    i += n;
  }
  if (valid) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return;
  }
  std::string fixed;
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SeqLen(s, i);
    if (n == 0) {
      fixed += "\xEF\xBF\xBD";
      ++i;
    } else {
      fixed.append(s.substr(i, n));
      i += n;
    }
  }
  w.String(fixed.data(), static_cast<rapidjson::SizeType>(fixed.size()));
}

std::string Base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) {
      v |= static_cast<uint8_t>(in[i + 1]) << 8;
    }
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

void WriteRecordJson(JsonWriter& w, const std::string& topic, int32_t partition, int64_t offset,
                     const Record& r) {
  w.StartObject();
  w.Key("topic");
  WriteJsonString(w, topic);
  w.Key("partition");
  w.Int(partition);
  w.Key("offset");
  w.Int64(offset);
  w.Key("device_id");
  if (r.key.has_value()) {
    WriteJsonString(w, *r.key);
  } else {
    w.Null();
  }
  w.Key("sensor");
  WriteHeaderString(w, r, kHeaderSensor);
  w.Key("country");
  WriteHeaderString(w, r, kHeaderCountry);
  w.Key("ts");
  w.Int64(r.timestamp_ms);
  w.Key("ingest_ts");
  WriteHeaderNumber(w, r, kHeaderIngestTs, /*is_unsigned=*/false);
  w.Key("gateway_id");
  WriteHeaderString(w, r, kHeaderGatewayId);
  w.Key("gateway_seq");
  WriteHeaderNumber(w, r, kHeaderGatewaySeq, /*is_unsigned=*/true);
  w.Key("source");
  WriteHeaderString(w, r, kHeaderSource);
  w.Key("payload");
  if (!r.value.has_value()) {
    w.Null();
  } else {
    // Verbatim, never re-serialised: a DOM round trip altered numbers, and parsing recursed
    // once per nesting level (core/json_check.h validates iteratively, depth-bounded).
    if (CheckJson(*r.value, kMaxJsonDepthLimit).ok()) {
      w.RawValue(r.value->data(), r.value->size(), rapidjson::kObjectType);
    } else {
      std::string b64 = Base64Encode(*r.value);
      w.String(b64.data(), static_cast<rapidjson::SizeType>(b64.size()));
      w.Key("payload_encoding");
      w.String("base64");
    }
  }
  w.EndObject();
}

}  // namespace sluice::broker
