// Streamed query answers (issue 12): GET /v1/query?format=ndjson writes one record per line as
// the query finds them and ends with {"end":true,"region","returned","next",...}. The records are
// exactly those of the JSON pages followed through their cursors, in the same order, with and
// without the index; when the uncovered tail holds more matches than query.max_limit (they are
// sorted in memory before any is sent) the answer ends at the last one held with a `next` that
// resumes exactly there. Parameters are checked before anything is sent.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <random>
#include <sstream>

#include "cloud-broker/server/broker.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

struct Line {
  std::string topic;
  int64_t partition;
  int64_t offset;
  bool operator==(const Line&) const = default;
};

void PrintTo(const Line& l, std::ostream* os) { *os << l.topic << "-" << l.partition << "@" << l.offset; }

class QueryStreamTest : public ::testing::TestWithParam<bool> {
 protected:
  void Start(int64_t max_limit, int64_t index_interval_ms = 10) {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE"), CountryCode("FR")};
    o.http_port = sluice::testing::FreePort();
    o.query_index = GetParam();
    o.query_index_interval_ms = index_interval_ms;
    o.query_index_low_priority = false;
    o.query_max_limit = max_limit;
    o.query_default_limit = std::min<int64_t>(100, max_limit);
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    port_ = broker_->port();
  }

  void Produce(int batches) {
    std::mt19937_64 rng(3);
    std::uniform_int_distribution<int> device(0, 49);
    std::uniform_int_distribution<int64_t> ts(0, 100'000);
    for (int b = 0; b < batches; ++b) {
      std::vector<Record> recs;
      for (int i = 0; i < 200; ++i) {
        const int d = device(rng);
        recs.push_back(testing::MakeRecord("dev-" + std::to_string(d), d % 2 ? "DE" : "FR",
                                           kT0 + ts(rng), "{\"i\":" + std::to_string(i) + "}"));
      }
      HttpClient client("http://127.0.0.1:" + std::to_string(port_));
      auto r = client.Send("POST", b % 2 ? "/v1/topics/a/records" : "/v1/topics/b/records",
                           testing::EncodeRecords(recs), "application/vnd.kafka.record-batch.v2");
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 200) << r->body;
    }
  }

  // Every page of the JSON answer, followed through `next`.
  std::vector<Line> Pages(const std::string& params) {
    std::vector<Line> out;
    std::string cursor;
    for (int guard = 0; guard < 1000; ++guard) {
      std::string body;
      EXPECT_EQ(sluice::testing::HttpGet(port_, "/v1/query?" + params +
                                                    (cursor.empty() ? "" : "&cursor=" + cursor),
                                         &body, 30000),
                200)
          << body;
      rapidjson::Document d;
      d.Parse(body.c_str());
      if (d.HasParseError() || !d.HasMember("records")) break;
      for (const auto& r : d["records"].GetArray()) {
        out.push_back({r["topic"].GetString(), r["partition"].GetInt64(), r["offset"].GetInt64()});
      }
      if (!d["next"].IsString()) break;
      cursor = d["next"].GetString();
    }
    return out;
  }

  // The streamed answer's records, and its end line parsed into *end.
  std::vector<Line> Stream(const std::string& params, rapidjson::Document* end) {
    std::vector<Line> out;
    std::string body;
    EXPECT_EQ(sluice::testing::HttpGet(port_, "/v1/query?format=ndjson&" + params, &body, 30000),
              200)
        << body.substr(0, 300);
    std::istringstream in(body);
    std::string line;
    std::string last;
    while (std::getline(in, line)) {
      EXPECT_TRUE(last.empty()) << "a line after the end line: " << line;
      rapidjson::Document d;
      d.Parse(line.c_str());
      EXPECT_FALSE(d.HasParseError()) << line;
      if (d.HasParseError()) break;
      if (d.HasMember("end")) {
        last = line;
        continue;
      }
      out.push_back({d["topic"].GetString(), d["partition"].GetInt64(), d["offset"].GetInt64()});
    }
    EXPECT_FALSE(last.empty()) << "no end line";
    end->Parse(last.c_str());
    return out;
  }

  static constexpr int64_t kT0 = 1'790'000'000'000;
  sluice::testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  int port_ = 0;
};

TEST_P(QueryStreamTest, StreamedRecordsAreThePagesInOrderWithAnEndLine) {
  Start(100000);
  Produce(30);  // 6,000 records in two topics
  if (GetParam()) {  // the index catches up: the streams read it
    ASSERT_TRUE(sluice::testing::WaitFor(
        [&] {
          std::string m;
          sluice::testing::HttpGet(port_, "/metrics", &m);
          bool found = false;
          const double lag =
              sluice::testing::MetricSum(m, "sluice_broker_index_lag_records", &found);
          return found && lag == 0;
        },
        30000));
  }
  const std::vector<std::string> queries = {
      "country=DE&count=exact",
      "topic=a&from=" + std::to_string(kT0 + 20'000) + "&to=" + std::to_string(kT0 + 60'000),
      "device_id=dev-7", "country=FR&limit=250"};
  for (const std::string& params : queries) {
    rapidjson::Document end;
    const std::vector<Line> streamed = Stream(params, &end);
    const bool limited = params.find("limit=") != std::string::npos;
    const std::vector<Line> paged = Pages(params + (limited ? "" : "&limit=700"));
    if (limited) {
      // One page of 250 (Pages follows the cursor: compare with its first 250).
      ASSERT_GE(paged.size(), 250u);
      EXPECT_EQ(streamed, std::vector<Line>(paged.begin(), paged.begin() + 250)) << params;
      EXPECT_TRUE(end["next"].IsString()) << params;
    } else {
      EXPECT_EQ(streamed, paged) << params;
      EXPECT_TRUE(end["next"].IsNull()) << params;
    }
    EXPECT_GT(streamed.size(), 0u) << params;
    EXPECT_EQ(end["returned"].GetUint64(), streamed.size()) << params;
    EXPECT_EQ(std::string(end["region"].GetString()), "eu-central");
    if (params.find("count=exact") != std::string::npos) {
      EXPECT_EQ(end["matched"].GetUint64(), streamed.size());
    }
  }
  // Bad parameters: refused before anything is streamed.
  std::string body;
  EXPECT_EQ(sluice::testing::HttpGet(port_, "/v1/query?format=csv", &body), 400);
  EXPECT_NE(body.find("\"field\":\"format\""), std::string::npos) << body;
  EXPECT_EQ(sluice::testing::HttpGet(port_, "/v1/query?format=ndjson&cursor=nonsense", &body),
            400);
  EXPECT_NE(body.find("\"field\":\"cursor\""), std::string::npos) << body;
}

TEST_P(QueryStreamTest, ATailLargerThanMaxLimitEndsWithACursorThatResumesExactly) {
  Start(150, 60000);  // at most 151 tail matches held; the index (if on) a minute behind
  Produce(10);          // 2,000 records, all of them in the unsorted tail
  std::vector<Line> all;
  std::string cursor;
  int requests = 0;
  for (; requests < 100; ++requests) {
    rapidjson::Document end;
    std::vector<Line> part = Stream(cursor.empty() ? "topic=a" : "topic=a&cursor=" + cursor, &end);
    all.insert(all.end(), part.begin(), part.end());
    if (!end["next"].IsString()) break;
    cursor = end["next"].GetString();
  }
  EXPECT_GT(requests, 0) << "the stream never ended early: the tail bound was not reached";
  std::vector<Line> paged = Pages("topic=a&limit=150");
  EXPECT_EQ(all.size(), 1000u);
  EXPECT_EQ(all, paged);
}

INSTANTIATE_TEST_SUITE_P(IndexOnAndOff, QueryStreamTest, ::testing::Bool());

}  // namespace
}  // namespace sluice::broker
