// Record JSON for fetch and query answers (docs/API.md):
//   {"topic","partition","offset","device_id","sensor","country","ts","ingest_ts","gateway_id",
//    "gateway_seq","source","payload"[,"payload_encoding":"base64"]}
// `payload` is the record value's bytes verbatim when they are one JSON value nested at most
// kMaxJsonDepthLimit deep (core/json_check.h), else base64 text with "payload_encoding".
// Missing headers are written as null. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/record.h"

namespace sluice::broker {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteRecordJson(JsonWriter& w, const std::string& topic, int32_t partition, int64_t offset,
                     const Record& r);

// Writes `s` as a JSON string; bytes that are not valid UTF-8 become U+FFFD.
void WriteJsonString(JsonWriter& w, std::string_view s);

std::string Base64Encode(std::string_view bytes);

}  // namespace sluice::broker
