#include "core/record.h"

#include <gtest/gtest.h>

#include "core/strong_types.h"

namespace sluice {
namespace {

SensorEvent SampleEvent() {
  SensorEvent e;
  e.device_id = DeviceId("dev-42");
  e.sensor = "temp";
  e.country = CountryCode("DE");
  e.ts_ms = 1700000000123;
  e.ingest_ms = 1700000000456;
  e.gateway_id = GatewayId("gw-fra-1");
  e.gateway_seq = GatewaySeq(18446744073709551615ull);
  e.source = "mqtt";
  e.payload = R"({"t":21.5})";
  return e;
}

TEST(RecordTest, ToRecordMapsFieldsAndHeaders) {
  Record r = ToRecord(SampleEvent());
  ASSERT_TRUE(r.key.has_value());
  EXPECT_EQ("dev-42", *r.key);
  ASSERT_TRUE(r.value.has_value());
  EXPECT_EQ(R"({"t":21.5})", *r.value);
  EXPECT_EQ(1700000000123, r.timestamp_ms);
  ASSERT_NE(nullptr, r.FindHeader(kHeaderSensor));
  EXPECT_EQ("temp", *r.FindHeader(kHeaderSensor));
  EXPECT_EQ("DE", *r.FindHeader(kHeaderCountry));
  EXPECT_EQ("gw-fra-1", *r.FindHeader(kHeaderGatewayId));
  EXPECT_EQ("18446744073709551615", *r.FindHeader(kHeaderGatewaySeq));
  EXPECT_EQ("1700000000456", *r.FindHeader(kHeaderIngestTs));
  EXPECT_EQ("mqtt", *r.FindHeader(kHeaderSource));
  EXPECT_EQ(6u, r.headers.size());
}

TEST(RecordTest, FromRecordInvertsToRecord) {
  const SensorEvent e = SampleEvent();
  Result<SensorEvent> back = FromRecord(ToRecord(e));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(e, *back);
}

TEST(RecordTest, FindHeaderReturnsFirstOrNull) {
  Record r;
  r.headers = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
  ASSERT_NE(nullptr, r.FindHeader("a"));
  EXPECT_EQ("1", *r.FindHeader("a"));
  EXPECT_EQ("2", *r.FindHeader("b"));
  EXPECT_EQ(nullptr, r.FindHeader("c"));
}

void ExpectInvalid(const Record& r, const std::string& fragment) {
  Result<SensorEvent> res = FromRecord(r);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(StatusCode::kInvalidArgument, res.status().code());
  EXPECT_NE(std::string::npos, res.status().message().find(fragment)) << res.status().message();
}

void SetHeader(Record& r, const std::string& name, const std::string& value) {
  for (RecordHeader& h : r.headers) {
    if (h.key == name) {
      h.value = value;
    }
  }
}

void RemoveHeader(Record& r, const std::string& name) {
  std::erase_if(r.headers, [&](const RecordHeader& h) { return h.key == name; });
}

TEST(RecordTest, FromRecordRejectsMissingKeyAndCountry) {
  Record r = ToRecord(SampleEvent());
  r.key.reset();
  ExpectInvalid(r, "missing key");
  r.key = "";
  ExpectInvalid(r, "empty key");

  r = ToRecord(SampleEvent());
  RemoveHeader(r, kHeaderCountry);
  ExpectInvalid(r, "missing header country");
}

TEST(RecordTest, FromRecordRejectsMalformedHeaders) {
  for (const char* bad : {"de", "DEU", "", "D1"}) {
    Record r = ToRecord(SampleEvent());
    SetHeader(r, kHeaderCountry, bad);
    ExpectInvalid(r, "malformed header country");
  }
  for (const char* bad : {"", "12a", "-1", " 1", "18446744073709551616"}) {
    Record r = ToRecord(SampleEvent());
    SetHeader(r, kHeaderGatewaySeq, bad);
    ExpectInvalid(r, "malformed header gateway_seq");
  }
  for (const char* bad : {"", "1.5", "x", "99999999999999999999"}) {
    Record r = ToRecord(SampleEvent());
    SetHeader(r, kHeaderIngestTs, bad);
    ExpectInvalid(r, "malformed header ingest_ts");
  }
}

TEST(RecordTest, FromRecordAcceptsPlainKafkaRecordWithKeyAndCountry) {
  Record r;
  r.key = "dev-1";
  r.timestamp_ms = 5;
  r.headers = {{kHeaderCountry, "FR"}};
  Result<SensorEvent> e = FromRecord(r);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ("dev-1", e->device_id.value());
  EXPECT_EQ("FR", e->country.value());
  EXPECT_EQ(5, e->ts_ms);
  EXPECT_EQ("", e->payload);  // null value -> empty payload
  EXPECT_EQ(0u, e->gateway_seq.value());
}

TEST(StrongTypesTest, CountryCodeShape) {
  EXPECT_TRUE(IsCountryCodeShape("DE"));
  EXPECT_TRUE(IsCountryCodeShape("ZZ"));
  EXPECT_FALSE(IsCountryCodeShape("de"));
  EXPECT_FALSE(IsCountryCodeShape("D"));
  EXPECT_FALSE(IsCountryCodeShape("DEU"));
  EXPECT_FALSE(IsCountryCodeShape(""));
  EXPECT_FALSE(IsCountryCodeShape("D@"));
  EXPECT_FALSE(IsCountryCodeShape("[A"));
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// A reader taking the first header (FindHeader) and one taking the last (Kafka's lastHeader)
// must not disagree: a repeated Sluice header is refused.
TEST(RecordTest, RepeatedSluiceHeaderIsRefused) {
  Record r = ToRecord(SampleEvent());
  EXPECT_EQ(nullptr, RepeatedSluiceHeader(r));
  r.headers.push_back({"trace", "1"});
  r.headers.push_back({"trace", "2"});
  EXPECT_EQ(nullptr, RepeatedSluiceHeader(r)) << "other headers may repeat";
  r.headers.push_back({kHeaderCountry, "US"});
  ASSERT_NE(nullptr, RepeatedSluiceHeader(r));
  EXPECT_STREQ(kHeaderCountry, RepeatedSluiceHeader(r));
  Result<SensorEvent> e = FromRecord(r);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("country"), std::string::npos) << e.status().ToString();
}

}  // namespace
}  // namespace sluice
