#include "cloud-broker/log/topic_config.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace sluice::broker {
namespace {

// A limit of -1 (off) or a positive value up to ~292 years / 8 EiB.
bool LimitOk(int64_t v) { return v == -1 || v > 0; }

}  // namespace

LogOptions TopicConfig::Apply(const LogOptions& d) const {
  LogOptions o = d;
  if (retention_ms) o.retention_ms = *retention_ms;
  if (retention_bytes) o.retention_bytes = *retention_bytes;
  if (flush) o.flush = *flush;
  if (flush_ms) o.flush_ms = *flush_ms;
  if (flush_bytes) o.flush_bytes = *flush_bytes;
  // Giving flush_ms or flush_bytes without `flush` means the interval policy.
  if (!flush && (flush_ms || flush_bytes)) o.flush = FlushPolicy::kInterval;
  return o;
}

bool ParseFlushPolicy(const std::string& s, FlushPolicy* out) {
  if (s == "always") {
    *out = FlushPolicy::kAlways;
  } else if (s == "interval") {
    *out = FlushPolicy::kInterval;
  } else if (s == "never") {
    *out = FlushPolicy::kNever;
  } else {
    return false;
  }
  return true;
}

const char* FlushPolicyName(FlushPolicy p) {
  switch (p) {
    case FlushPolicy::kAlways:
      return "always";
    case FlushPolicy::kInterval:
      return "interval";
    case FlushPolicy::kNever:
      return "never";
  }
  return "always";
}

Result<TopicConfig> ParseTopicConfigJson(const std::string& json, std::string* name,
                                         std::string* field) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  *field = "";
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("body must be a JSON object");
  }
  TopicConfig c;
  auto bad = [&](const char* f, const std::string& why) {
    *field = f;
    return Status::InvalidArgument(std::string(f) + " " + why);
  };
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    // With their lengths: a "\u0000" in a name must not cut it short ("a\u0000b" was "a").
    const std::string key(it->name.GetString(), it->name.GetStringLength());
    const rapidjson::Value& v = it->value;
    if (key == "name") {
      if (!v.IsString()) return bad("name", "must be a string");
      name->assign(v.GetString(), v.GetStringLength());
    } else if (key == "partitions") {
      if (!v.IsInt() || v.GetInt() < 1 || v.GetInt() > 1024) {
        return bad("partitions", "must be an integer 1..1024");
      }
      c.partitions = v.GetInt();
    } else if (key == "flush") {
      FlushPolicy p;
      if (!v.IsString() || !ParseFlushPolicy(std::string(v.GetString(), v.GetStringLength()), &p)) {
        return bad("flush", "must be \"always\", \"interval\" or \"never\"");
      }
      c.flush = p;
    } else if (key == "retention_ms" || key == "retention_bytes" || key == "flush_ms" ||
               key == "flush_bytes") {
      if (!v.IsInt64() || !LimitOk(v.GetInt64())) {
        *field = key;
        return Status::InvalidArgument(key + " must be a positive integer or -1 (off)");
      }
      int64_t x = v.GetInt64();
      if (key == "retention_ms") c.retention_ms = x;
      if (key == "retention_bytes") c.retention_bytes = x;
      if (key == "flush_ms") c.flush_ms = x;
      if (key == "flush_bytes") c.flush_bytes = x;
    } else {
      *field = key;
      return Status::InvalidArgument("unknown member " + key);
    }
  }
  if (c.flush == FlushPolicy::kAlways && (c.flush_ms || c.flush_bytes)) {
    return bad("flush", "\"always\" takes no flush_ms or flush_bytes");
  }
  return c;
}

std::string TopicConfigJson(const std::string& name, const TopicConfig& c) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("name");
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.Key("partitions");
  w.Int(c.partitions);
  auto opt = [&](const char* k, const std::optional<int64_t>& v) {
    if (v) {
      w.Key(k);
      w.Int64(*v);
    }
  };
  opt("retention_ms", c.retention_ms);
  opt("retention_bytes", c.retention_bytes);
  if (c.flush) {
    w.Key("flush");
    w.String(FlushPolicyName(*c.flush));
  }
  opt("flush_ms", c.flush_ms);
  opt("flush_bytes", c.flush_bytes);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

}  // namespace sluice::broker
