// Internal to the EtcdClient: the JSON shapes of etcd's v3 gateway (int64 fields as strings and
// omitted when zero, bytes as base64). Thread-safety: pure functions.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cloud-broker/replication/etcd_client.h"
#include "core/status.h"

namespace sluice::broker::etcd_json {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const char* key, const std::string& value);
void Bytes(Writer& w, const char* key, const std::string& bytes);  // base64
std::string Text(const rapidjson::StringBuffer& sb);
// An int64 member (a string or a number); 0 when absent, as etcd omits zeros.
int64_t Int(const rapidjson::Value& obj, const char* name);
// A base64 member decoded; "" when absent.
Result<std::string> DecodedField(const rapidjson::Value& obj, const char* name);
Result<EtcdKeyValue> ParseKv(const rapidjson::Value& kv);
Result<std::vector<EtcdKeyValue>> ParseKvs(const rapidjson::Value& obj);  // its "kvs"
// kCorruption unless `text` is a JSON object.
Result<rapidjson::Document> Parse(const std::string& text);

}  // namespace sluice::broker::etcd_json
