// Record JSON (cloud-broker/server/record_json.h): payloads come back byte-exact, and a hostile
// payload (deeply nested, not JSON) never makes the broker recurse or alter it.
#include "cloud-broker/server/record_json.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "core/json_check.h"
#include "tests/cloud-broker/test_records.h"

namespace sluice::broker {
namespace {

std::string Render(const std::string& payload) {
  Record r = testing::MakeRecord("dev-1", "DE", 1'700'000'000'000, payload);
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteRecordJson(w, "t", 0, 7, r);
  return std::string(sb.GetString(), sb.GetSize());
}

std::string PayloadMember(const std::string& payload) { return "\"payload\":" + payload + "}"; }

// A DOM round trip changed these numbers (0.4952805905066499, 1.2345678901234566e29).
TEST(RecordJsonTest, JsonPayloadIsWrittenByteExact) {
  for (const std::string& p :
       {std::string("{\"v\":0.49528059050664996,\"big\":123456789012345678901234567890}"),
        std::string("[1E+2, -0.0, 1e400 ,\"\\u00e9\"]"), std::string("123456789012345678901234567890"),
        std::string("{ \"spaced\" : true }"), std::string("\"text\"")}) {
    const std::string json = Render(p);
    EXPECT_NE(json.find(PayloadMember(p)), std::string::npos) << json;
    EXPECT_EQ(json.find("payload_encoding"), std::string::npos) << json;
    EXPECT_TRUE(CheckJson(json, 64).ok()) << json;
  }
}

TEST(RecordJsonTest, NonJsonPayloadIsBase64) {
  for (const std::string& p :
       {std::string("not json"), std::string("{\"a\":1} trailing"), std::string("{}\0x", 4),
        std::string("\"\xC3\x28\""), std::string("")}) {
    const std::string json = Render(p);
    EXPECT_NE(json.find("\"payload\":\"" + Base64Encode(p) + "\",\"payload_encoding\":\"base64\""),
              std::string::npos)
        << json;
  }
}

// 70,000 levels (140 KB) crashed the broker on fetch and query: it parsed the payload
// recursively. Past kMaxJsonDepthLimit the payload is served as base64, without recursion.
TEST(RecordJsonTest, DeeplyNestedPayloadDoesNotRecurse) {
  const size_t n = 70'000;
  std::string deep(n, '[');
  deep.append(n, ']');
  const std::string json = Render(deep);
  EXPECT_NE(json.find("\"payload_encoding\":\"base64\""), std::string::npos);

  std::string ok(kMaxJsonDepthLimit, '[');
  ok.append(kMaxJsonDepthLimit, ']');
  EXPECT_NE(Render(ok).find(PayloadMember(ok)), std::string::npos);
}

}  // namespace
}  // namespace sluice::broker
