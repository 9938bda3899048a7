#include "gateway/ingest/event_parser.h"

#include <gtest/gtest.h>

#include "core/time_util.h"

namespace sluice::gateway {
namespace {

ParseDefaults Defaults(size_t max_events = 0) {
  return ParseDefaults{CountryCode("DE"), 1'700'000'000'000, max_events};
}

TEST(EventParserTest, SingleObjectUsesDefaultsAndKeepsExactPayload) {
  std::string body = R"( {"device_id":"dev-1", "temp": 21.5,"nested":{"ts":"x"}} )";
  ParseOutcome o = ParseEvents(body, "application/json", Defaults());
  ASSERT_TRUE(o.ok()) << o.error->reason;
  ASSERT_EQ(o.events.size(), 1u);
  EXPECT_EQ(o.events[0].device_id.value(), "dev-1");
  EXPECT_EQ(o.events[0].sensor, "default");
  EXPECT_EQ(o.events[0].country.value(), "DE");
  EXPECT_EQ(o.events[0].ts_ms, 1'700'000'000'000);
  EXPECT_EQ(o.events[0].payload, R"({"device_id":"dev-1", "temp": 21.5,"nested":{"ts":"x"}})");
}

TEST(EventParserTest, ArrayOfObjects) {
  std::string body =
      R"([{"device_id":"a","sensor":"t","ts":1700000000123,"country":"FR"},)"
      "\n"
      R"( {"device_id":"b","ts":"2024-05-01T12:00:00.5Z"}])";
  ParseDefaults d = Defaults();
  d.now_ms = 1'800'000'000'000;  // after the events (ts more than a day ahead is refused)
  ParseOutcome o = ParseEvents(body, "application/json", d);
  ASSERT_TRUE(o.ok()) << o.error->reason;
  ASSERT_EQ(o.events.size(), 2u);
  EXPECT_EQ(o.events[0].sensor, "t");
  EXPECT_EQ(o.events[0].ts_ms, 1700000000123);
  EXPECT_EQ(o.events[0].country.value(), "FR");
  EXPECT_EQ(o.events[0].payload,
            R"({"device_id":"a","sensor":"t","ts":1700000000123,"country":"FR"})");
  int64_t want = 0;
  ASSERT_TRUE(ParseRfc3339Ms("2024-05-01T12:00:00.5Z", &want));
  EXPECT_EQ(o.events[1].ts_ms, want);
  EXPECT_EQ(o.events[1].payload, R"({"device_id":"b","ts":"2024-05-01T12:00:00.5Z"})");
}

TEST(EventParserTest, NdjsonWithBlankLinesByContentTypeAndBySniffing) {
  std::string body = "{\"device_id\":\"a\"}\n\n  \r\n{\"device_id\":\"b\",\"ts\":5}\n";
  for (const char* ct : {"application/x-ndjson", "application/json", ""}) {
    ParseOutcome o = ParseEvents(body, ct, Defaults());
    ASSERT_TRUE(o.ok()) << ct << ": " << o.error->reason;
    ASSERT_EQ(o.events.size(), 2u) << ct;
    EXPECT_EQ(o.events[1].device_id.value(), "b");
    EXPECT_EQ(o.events[1].ts_ms, 5);
    EXPECT_EQ(o.events[1].payload, "{\"device_id\":\"b\",\"ts\":5}");
  }
}

struct BadCase {
  std::string body;
  int64_t index;
  std::string field;
  std::string reason_part;
};

TEST(EventParserTest, BadFieldsNameIndexFieldAndReason) {
  std::vector<BadCase> cases = {
      {R"({"sensor":"t"})", 0, "device_id", "required"},
      {R"({"device_id":""})", 0, "device_id", "1..128"},
      {R"({"device_id":")" + std::string(129, 'a') + R"("})", 0, "device_id", "1..128"},
      {R"({"device_id":"a b"})", 0, "device_id", "A-Za-z0-9"},
      {R"({"device_id":7})", 0, "device_id", "string"},
      {R"({"device_id":"a","sensor":3})", 0, "sensor", "string"},
      {R"({"device_id":"a","ts":1.5})", 0, "ts", "integer"},
      {R"({"device_id":"a","ts":"yesterday"})", 0, "ts", "RFC 3339"},
      {R"({"device_id":"a","ts":-1})", 0, "ts", "range"},
      {R"({"device_id":"a","country":"de"})", 0, "country", "upper-case"},
      {R"({"device_id":"a","country":"DEU"})", 0, "country", "upper-case"},
      {R"([{"device_id":"a"},{"device_id":"b"},{"device_id":"c"},{"device_id":"d","ts":{}}])", 3,
       "ts", "integer"},
      {R"([{"device_id":"a"}, 5])", 1, "", "JSON object"},
      {"{\"device_id\":\"a\"}\n{\"device_id\":\"b\"}\n{\"device_id\":\"c\"}\n{\"device_id\":\"d\"",
       3, "", "invalid JSON"},
  };
  for (const BadCase& c : cases) {
    ParseOutcome o = ParseEvents(c.body, "application/json", Defaults());
    ASSERT_FALSE(o.ok()) << c.body;
    EXPECT_EQ(o.error->code, StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(o.error->index, c.index) << c.body;
    EXPECT_EQ(o.error->field, c.field) << c.body;
    EXPECT_NE(o.error->reason.find(c.reason_part), std::string::npos)
        << c.body << " -> " << o.error->reason;
    EXPECT_TRUE(o.events.empty());
  }
}

TEST(EventParserTest, EmptyBodyAndTooManyEvents) {
  EXPECT_FALSE(ParseEvents("  \n", "application/json", Defaults()).ok());
  EXPECT_FALSE(ParseEvents("[]", "application/json", Defaults()).ok());
  std::string body = R"([{"device_id":"a"},{"device_id":"b"},{"device_id":"c"}])";
  ParseOutcome o = ParseEvents(body, "application/json", Defaults(2));
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.error->code, StatusCode::kTooLarge);
  EXPECT_TRUE(ParseEvents(body, "application/json", Defaults(3)).ok());
}

TEST(EventParserTest, PayloadFieldsForMqtt) {
  PayloadFields f;
  std::string field, reason;
  const int64_t now = Defaults().now_ms;
  ASSERT_TRUE(ExtractPayloadFields("not json", now, IngestLimits{}, &f, &field, &reason));
  EXPECT_FALSE(f.ts_ms || f.country);
  ASSERT_TRUE(ExtractPayloadFields(R"({"ts":42,"country":"US","device_id":"x y"})", now,
                                   IngestLimits{}, &f, &field, &reason));
  EXPECT_EQ(*f.ts_ms, 42);
  EXPECT_EQ(f.country->value(), "US");
  PayloadFields g;
  EXPECT_FALSE(
      ExtractPayloadFields(R"({"country":"usa"})", now, IngestLimits{}, &g, &field, &reason));
  EXPECT_EQ(field, "country");
}

// A second "country" key (or of any field the gateway reads) routed the event by the last one,
// while a reader of the payload taking the first saw another: refused.
TEST(EventParserTest, DuplicateKeysOfFieldsTheGatewayReads) {
  for (const char* f : {"device_id", "sensor", "ts", "country"}) {
    const std::string v = std::string(f) == "ts" ? "5" : std::string(f) == "country" ? "\"US\""
                                                                                     : "\"x\"";
    const std::string body = R"([{"device_id":"a"},{"device_id":"b","sensor":"s","ts":4,)"
                             R"("country":"DE",")" + std::string(f) + "\":" + v + "}]";
    ParseOutcome o = ParseEvents(body, "application/json", Defaults());
    ASSERT_FALSE(o.ok()) << body;
    EXPECT_EQ(o.error->index, 1) << body;
    EXPECT_EQ(o.error->field, f) << body;
    EXPECT_NE(o.error->reason.find("more than once"), std::string::npos) << o.error->reason;
  }
  // Keys the gateway does not read may repeat (the payload is kept as sent), also nested.
  EXPECT_TRUE(ParseEvents(R"({"device_id":"a","v":1,"v":2,"n":{"country":"x","country":"y"}})",
                          "application/json", Defaults())
                  .ok());
}

std::string Nested(size_t depth) {
  return R"({"device_id":"a","deep":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

// A payload nested 70,000 deep was accepted (and crashed the broker that served it back).
TEST(EventParserTest, JsonDepthIsBounded) {
  EXPECT_TRUE(ParseEvents(Nested(63), "application/json", Defaults()).ok()) << "64 with the event";
  for (size_t depth : {64, 70'000}) {
    ParseOutcome o = ParseEvents("[" + Nested(1) + "," + Nested(depth) + "]", "application/json",
                                 Defaults());
    ASSERT_FALSE(o.ok()) << depth;
    EXPECT_EQ(o.error->index, 1);
    EXPECT_EQ(o.error->field, "deep");
    EXPECT_NE(o.error->reason.find("nested deeper than 64"), std::string::npos)
        << o.error->reason;
  }
  ParseDefaults d = Defaults();
  d.limits.max_json_depth = 3;
  EXPECT_FALSE(ParseEvents(Nested(3), "application/json", d).ok());
  EXPECT_TRUE(ParseEvents(Nested(2), "application/json", d).ok());
}

// `{"device_id":"a"}\0{"device_id":"b"}` answered 202 {"accepted":1}: b was dropped silently.
TEST(EventParserTest, NulByteAnywhereIsRefused) {
  const std::string two("{\"device_id\":\"a\"}\0{\"device_id\":\"b\"}", 35);
  struct Case {
    std::string body;
    int64_t index;
    std::vector<const char*> content_types = {"application/json", "application/x-ndjson"};
  };
  for (const Case& c : {Case{two, 1},
                        Case{std::string("[{\"device_id\":\"a\"}]\0", 20), 1, {"application/json"}},
                        Case{std::string("{\"device_id\":\"a\0\"}", 18), 0},
                        Case{std::string("{\"device_id\":\"a\"}\n\0\n", 20), 1}}) {
    for (const char* ct : c.content_types) {
      ParseOutcome o = ParseEvents(c.body, ct, Defaults());
      ASSERT_FALSE(o.ok()) << ct << " " << c.body;
      EXPECT_EQ(o.error->index, c.index) << ct << " " << c.body;
      EXPECT_NE(o.error->reason.find("NUL byte at offset"), std::string::npos) << o.error->reason;
      EXPECT_TRUE(o.events.empty());
    }
  }
}

// Invalid UTF-8 was accepted and served back altered ("\xc3\x28" -> "\ufffd(").
TEST(EventParserTest, InvalidUtf8AndControlCharactersAreRefused) {
  struct Case {
    std::string body;
    std::string field;
  };
  for (const Case& c : {Case{"{\"device_id\":\"a\",\"sensor\":\"\xc3\x28\"}", "sensor"},
                        Case{"{\"device_id\":\"a\",\"note\":\"ok \xc3\x28\"}", "note"},
                        Case{"{\"device_id\":\"a\",\"n\":{\"x\":[\"\xff\"]}}", "n"},
                        Case{"{\"device_id\":\"a\xc3\x28\"}", "device_id"},
                        Case{"{\"device_id\":\"a\",\"k\xc3\x28\":1}", ""},  // a member name
                        Case{"{\"ts\":5,\"k\xc3\x28\":1}", ""},  // not "ts", read before it
                        Case{"{\"device_id\":\"a\",\"sensor\":\"t\\u0000x\"}", "sensor"},
                        Case{"{\"device_id\":\"a\",\"sensor\":\"t\\u001f\"}", "sensor"}}) {
    ParseOutcome o = ParseEvents("[{\"device_id\":\"z\"}," + c.body + "]", "", Defaults());
    ASSERT_FALSE(o.ok()) << c.body;
    EXPECT_EQ(o.error->index, 1) << c.body;
    EXPECT_EQ(o.error->field, c.field) << c.body << " -> " << o.error->reason;
  }
  EXPECT_TRUE(ParseEvents("{\"device_id\":\"a\",\"sensor\":\"t\xc3\xa9\"}", "", Defaults()).ok());
}

// ts = INT64_MAX was accepted and stopped the broker's time retention of its partition.
TEST(EventParserTest, TimestampsFarInTheFutureOrBefore1970AreRefused) {
  const int64_t now = Defaults().now_ms;
  for (const std::string& ts :
       {std::to_string(now + 24 * 3600 * 1000 + 1), std::string("9223372036854775807"),
        std::string("\"2999-01-01T00:00:00Z\""), std::string("\"1969-12-31T23:59:59Z\"")}) {
    ParseOutcome o = ParseEvents(R"({"device_id":"a","ts":)" + ts + "}", "", Defaults());
    ASSERT_FALSE(o.ok()) << ts;
    EXPECT_EQ(o.error->field, "ts") << ts;
    EXPECT_EQ(o.error->index, 0) << ts;
  }
  EXPECT_TRUE(ParseEvents(R"({"device_id":"a","ts":)" + std::to_string(now + 24 * 3600 * 1000) +
                              "}",
                          "", Defaults())
                  .ok());
  ParseDefaults off = Defaults();
  off.limits.max_future_ms = -1;
  EXPECT_TRUE(ParseEvents(R"({"device_id":"a","ts":9223372036854775807})", "", off).ok());
}

TEST(EventParserTest, MqttPayloadFieldsFollowTheSameRules) {
  const IngestLimits limits;
  const int64_t now = Defaults().now_ms;
  PayloadFields f;
  std::string field, reason;
  EXPECT_FALSE(ExtractPayloadFields(R"({"country":"DE","country":"US"})", now, limits, &f, &field,
                                    &reason));
  EXPECT_EQ(field, "country");
  EXPECT_FALSE(ExtractPayloadFields(R"({"ts":9223372036854775807})", now, limits, &f, &field,
                                    &reason));
  EXPECT_EQ(field, "ts");
  EXPECT_FALSE(ExtractPayloadFields("{\"v\":" + std::string(100, '[') + std::string(100, ']') + "}",
                                    now, limits, &f, &field, &reason));
  EXPECT_EQ(field, "v");
  // Not JSON (a NUL, invalid UTF-8): opaque bytes, no field taken from a prefix of it.
  PayloadFields g;
  EXPECT_TRUE(ExtractPayloadFields(std::string("{\"ts\":5}\0{\"ts\":6}", 17), now, limits, &g,
                                   &field, &reason));
  EXPECT_FALSE(g.ts_ms.has_value());
  EXPECT_TRUE(ExtractPayloadFields("{\"ts\":5,\"x\":\"\xc3\x28\"}", now, limits, &g, &field,
                                   &reason));
  EXPECT_FALSE(g.ts_ms.has_value());
}

// The MQTT path checks the sensor from the topic with the same rule.
TEST(EventParserTest, SensorIsUtf8WithoutControlCharacters) {
  EXPECT_TRUE(IsValidSensor("temp \xc3\xa9"));
  EXPECT_FALSE(IsValidSensor("\xc3\x28"));
  EXPECT_FALSE(IsValidSensor(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidSensor("a\x7f"));
}

TEST(EventParserTest, DeviceIdAlphabet) {
  EXPECT_TRUE(IsValidDeviceId("A-z_0.9:x"));
  EXPECT_FALSE(IsValidDeviceId("a/b"));
  EXPECT_FALSE(IsValidDeviceId(""));
}

}  // namespace
}  // namespace sluice::gateway
