// Rendering of broker answers: query summary, topics table, fetch pages.
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "cli/render.h"

namespace sluice::cli {
namespace {

const char* kQuery = R"({"region":"eu-central","returned":2,"next":"AQID","matched":1234,
 "counts_by_country":{"FR":634,"DE":600},
 "records":[{"topic":"sensors","partition":3,"offset":45,"device_id":"de-dev-0001",
   "sensor":"temperature","country":"DE","ts":1700000000123,"ingest_ts":1700000000200,
   "gateway_id":"gw-de-1","gateway_seq":987,"source":"mqtt",
   "payload":{"device_id":"de-dev-0001","value":21.5,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}},
  {"topic":"sensors","partition":0,"offset":7,"device_id":"de-dev-0002","sensor":"raw",
   "country":"FR","ts":1700000001000,"ingest_ts":1700000001000,"gateway_id":"gw-de-1",
   "gateway_seq":988,"source":"http","payload":"AAEC","payload_encoding":"base64"}]})";

TEST(RenderTest, QuerySummaryHasRegionCountsAndRecords) {
  std::ostringstream out;
  ASSERT_TRUE(RenderQuery(kQuery, out).ok());
  const std::string s = out.str();
  EXPECT_NE(s.find("region:  eu-central"), std::string::npos) << s;
  EXPECT_NE(s.find("matched: 1234 record(s) (showing 2)"), std::string::npos) << s;
  EXPECT_NE(s.find("next:    AQID"), std::string::npos) << s;
  // Country table, sorted, counts right-aligned.
  const size_t de = s.find("DE           600");
  const size_t fr = s.find("FR           634");
  EXPECT_NE(de, std::string::npos) << s;
  EXPECT_NE(fr, std::string::npos) << s;
  EXPECT_LT(de, fr);
  EXPECT_NE(s.find("2023-11-14T22:13:20.123Z"), std::string::npos) << "ts as RFC 3339\n" << s;
  EXPECT_NE(s.find("sensors/3/45"), std::string::npos) << s;
  EXPECT_NE(s.find("gw-de-1"), std::string::npos) << s;
  EXPECT_NE(s.find("987"), std::string::npos) << s;
  EXPECT_NE(s.find("base64:AAEC"), std::string::npos) << s;
  EXPECT_NE(s.find("..."), std::string::npos) << "long payload truncated\n" << s;
  EXPECT_EQ(s.find("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), std::string::npos);
}

TEST(RenderTest, QueryRejectsWrongShapes) {
  std::ostringstream out;
  EXPECT_FALSE(RenderQuery("not json", out).ok());
  EXPECT_FALSE(RenderQuery("[1,2]", out).ok());
  EXPECT_FALSE(RenderQuery(R"({"region":"x"})", out).ok()) << "no records";
  EXPECT_FALSE(RenderQuery(R"({"region":"x","matched":"3","records":[]})", out).ok());
  std::ostringstream uncounted;  // without count=exact: the page only, and whether more follow
  ASSERT_TRUE(RenderQuery(R"({"region":"x","returned":0,"next":"AQID","records":[]})",
                          uncounted)
                  .ok());
  EXPECT_NE(uncounted.str().find("records: 0 (more follow)"), std::string::npos)
      << uncounted.str();
  EXPECT_EQ(uncounted.str().find("COUNTRY"), std::string::npos) << uncounted.str();
  std::ostringstream empty;
  ASSERT_TRUE(RenderQuery(R"({"region":"x","matched":0,"counts_by_country":{},"records":[]})",
                          empty)
                  .ok());
  EXPECT_NE(empty.str().find("matched: 0 record(s)"), std::string::npos) << empty.str();
}

TEST(RenderTest, TopicsTable) {
  std::ostringstream out;
  ASSERT_TRUE(RenderTopics(R"({"region":"us-east","topics":[{"name":"sensors","partitions":[
      {"partition":0,"start_offset":0,"end_offset":120,"size_bytes":4096},
      {"partition":1,"start_offset":10,"end_offset":15,"size_bytes":512}]}]})",
                           out)
                  .ok());
  const std::string s = out.str();
  EXPECT_NE(s.find("region: us-east"), std::string::npos) << s;
  EXPECT_NE(s.find("TOPIC"), std::string::npos) << s;
  EXPECT_NE(s.find("120      120   4096"), std::string::npos) << s;
  EXPECT_NE(s.find("15        5    512"), std::string::npos) << s;
  EXPECT_FALSE(RenderTopics(R"({"region":"x"})", out).ok());
  // Topics that are not objects are skipped, nothing looked up in them (MemberEnd of a number
  // was undefined behaviour).
  std::ostringstream odd;
  EXPECT_TRUE(RenderTopics(R"({"region":"x","topics":[7,"t",null,[1]]})", odd).ok());
}

TEST(RenderTest, AuditTable) {
  std::ostringstream out;
  ASSERT_TRUE(RenderAudit(
                  R"({"region":"eu-central","returned":1,"more":true,"entries":[{"time_ms":0,)"
                  R"("region":"eu-central","principal":"CN=gw-x","gateway_id":"gw-x",)"
                  R"("country":"US","topic":"sensors","records":3,"reason":"record 0 has )"
                  R"(country US","request_id":"r-1"}]})",
                  out)
                  .ok());
  const std::string s = out.str();
  EXPECT_NE(s.find("region:  eu-central"), std::string::npos) << s;
  EXPECT_NE(s.find("refusals: 1 (more follow"), std::string::npos) << s;
  EXPECT_NE(s.find("1970-01-01T00:00:00.000Z"), std::string::npos) << s;
  EXPECT_NE(s.find("CN=gw-x"), std::string::npos) << s;
  EXPECT_NE(s.find("record 0 has country US"), std::string::npos) << s;
  EXPECT_FALSE(RenderAudit("{\"region\":\"x\"}", out).ok());
}

TEST(RenderTest, FetchPageAndHelpers) {
  auto page = ParseFetchPage(
      R"({"records":[{"offset":5,"payload":{"a":1}},{"offset":6}],"next_offset":7,"end_offset":9})");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->records.size(), 2u);
  EXPECT_EQ(page->records[0], R"({"offset":5,"payload":{"a":1}})");
  EXPECT_EQ(page->next_offset, 7);
  EXPECT_EQ(page->end_offset, 9);
  EXPECT_FALSE(ParseFetchPage(R"({"records":[]})").ok());
  EXPECT_EQ(Truncate("abcdef", 5), "ab...");
  EXPECT_EQ(Truncate("abc", 5), "abc");
  EXPECT_EQ(FormatTable({{"A", "BB"}, {"ccc", "1"}}, {false, true}), "A    BB\nccc   1\n");
}

// Payloads are shown as the broker sent them: re-serialising a DOM changed numbers
// (0.49528059050664996 -> 0.4952805905066499, a 30-digit integer -> 1.2345678901234566e29).
// Whitespace outside strings is dropped so each record stays one line.
TEST(RenderTest, PayloadNumbersAreShownExactly) {
  const std::string payload = "{\"v\":0.49528059050664996,\n \"n\":123456789012345678901234567890}";
  const std::string compact = "{\"v\":0.49528059050664996,\"n\":123456789012345678901234567890}";
  auto page = ParseFetchPage(R"({"records":[{"offset":5,"payload":)" + payload +
                             R"(,"s":"a b\" c"}],"next_offset":6,"end_offset":6})");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0], R"({"offset":5,"payload":)" + compact + R"(,"s":"a b\" c"})");

  std::ostringstream out;
  ASSERT_TRUE(RenderQuery(R"({"region":"x","matched":1,"counts_by_country":{"DE":1},
      "records":[{"device_id":"d","payload":123456789012345678901234567890}]})",
                          out)
                  .ok());
  EXPECT_NE(out.str().find("123456789012345678901234567890"), std::string::npos) << out.str();
}

// A hostile answer nested a million deep is refused, not a stack overflow in the CLI.
TEST(RenderTest, DeepAnswerDoesNotRecurse) {
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  EXPECT_FALSE(ParseFetchPage(R"({"records":[{"payload":)" + deep +
                              R"(}],"next_offset":1,"end_offset":1})")
                   .ok());
  std::ostringstream out;
  EXPECT_FALSE(RenderQuery(R"({"region":"x","matched":1,"records":[{"payload":)" + deep + "}]}",
                           out)
                   .ok());
}

}  // namespace
TEST(RenderTest, AggregateTableHasABucketGroupAndFieldColumns) {
  std::ostringstream out;
  ASSERT_TRUE(RenderAggregate(R"({"region":"eu","bucket_ms":3600000,"group_by":"country",
    "field":"v","rows":[{"bucket":1700000000000,"country":"DE","count":7,"values":6,"min":1,
    "max":9,"sum":30,"avg":5}]})",
                              out)
                  .ok());
  const std::string s = out.str();
  EXPECT_NE(s.find("BUCKET"), std::string::npos) << s;
  EXPECT_NE(s.find("COUNTRY"), std::string::npos) << s;
  EXPECT_NE(s.find("2023-11-14T22:13:20.000Z"), std::string::npos) << s;
  EXPECT_NE(s.find("DE"), std::string::npos) << s;
  EXPECT_NE(s.find("AVG"), std::string::npos) << s;
  EXPECT_FALSE(RenderAggregate(R"({"region":"eu"})", out).ok());
}

}  // namespace sluice::cli
