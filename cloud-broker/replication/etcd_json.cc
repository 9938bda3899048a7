#include "cloud-broker/replication/etcd_json.h"

#include <cstdlib>

#include "core/base64.h"

namespace sluice::broker::etcd_json {

void Str(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void Bytes(Writer& w, const char* key, const std::string& bytes) {
  Str(w, key, Base64Encode(bytes));
}

// etcd's JSON writes int64 fields as strings and omits zero values.
int64_t Int(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) {
    return 0;
  }
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) {
    return 0;
  }
  if (it->value.IsString()) {
    return std::strtoll(it->value.GetString(), nullptr, 10);
  }
  return it->value.IsInt64() ? it->value.GetInt64() : 0;
}

Result<std::string> DecodedField(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) {
    return std::string();
  }
  if (!it->value.IsString()) {
    return Status::Corruption(std::string("etcd: field ") + name + " is not a string");
  }
  return Base64Decode(it->value.GetString());
}

Result<EtcdKeyValue> ParseKv(const rapidjson::Value& kv) {
  if (!kv.IsObject()) {
    return Status::Corruption("etcd: a key-value is not an object");
  }
  EtcdKeyValue out;
  Result<std::string> key = DecodedField(kv, "key");
  Result<std::string> value = DecodedField(kv, "value");
  if (!key.ok()) {
    return key.status();
  }
  if (!value.ok()) {
    return value.status();
  }
  out.key = std::move(key).value();
  out.value = std::move(value).value();
  out.create_revision = Int(kv, "create_revision");
  out.mod_revision = Int(kv, "mod_revision");
  out.version = Int(kv, "version");
  out.lease = Int(kv, "lease");
  return out;
}

Result<std::vector<EtcdKeyValue>> ParseKvs(const rapidjson::Value& obj) {
  std::vector<EtcdKeyValue> out;
  auto it = obj.FindMember("kvs");
  if (it == obj.MemberEnd()) {
    return out;
  }
  if (!it->value.IsArray()) {
    return Status::Corruption("etcd: kvs is not an array");
  }
  for (const auto& kv : it->value.GetArray()) {
    Result<EtcdKeyValue> parsed = ParseKv(kv);
    if (!parsed.ok()) {
      return parsed.status();
    }
    out.push_back(std::move(parsed).value());
  }
  return out;
}

Result<rapidjson::Document> Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    return Status::Corruption("etcd: an answer that is not a JSON object: " + text.substr(0, 200));
  }
  return d;
}

std::string Text(const rapidjson::StringBuffer& sb) {
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace sluice::broker::etcd_json
