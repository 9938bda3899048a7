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
  ParseOutcome o = ParseEvents(body, "application/json", Defaults());
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
  ASSERT_TRUE(ExtractPayloadFields("not json", &f, &field, &reason));
  EXPECT_FALSE(f.ts_ms || f.country);
  ASSERT_TRUE(ExtractPayloadFields(R"({"ts":42,"country":"US","device_id":"x y"})", &f, &field,
                                   &reason));
  EXPECT_EQ(*f.ts_ms, 42);
  EXPECT_EQ(f.country->value(), "US");
  PayloadFields g;
  EXPECT_FALSE(ExtractPayloadFields(R"({"country":"usa"})", &g, &field, &reason));
  EXPECT_EQ(field, "country");
}

TEST(EventParserTest, DeviceIdAlphabet) {
  EXPECT_TRUE(IsValidDeviceId("A-z_0.9:x"));
  EXPECT_FALSE(IsValidDeviceId("a/b"));
  EXPECT_FALSE(IsValidDeviceId(""));
}

}  // namespace
}  // namespace sluice::gateway
