// The broker's HTTP API, in-process (Broker on a free port) with core's HttpClient.
#include "cloud-broker/server/broker.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>

#include "core/http.h"
#include "core/partitioner.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::EncodeRecords;
using testing::MakeRecord;
constexpr const char* kBatchType = "application/vnd.kafka.record-batch.v2";

rapidjson::Document Json(const HttpResponse& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  EXPECT_FALSE(d.HasParseError()) << r.body;
  return d;
}

class BrokerServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE"), CountryCode("FR"), CountryCode("AT")};
    o.http_port = sluice::testing::FreePort();
    o.max_body_bytes = 64 * 1024;
    o.default_partitions = 3;
    o.segment_bytes = 4096;
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    client_ = std::make_unique<HttpClient>("http://127.0.0.1:" + std::to_string(broker_->port()));
  }

  HttpResponse Post(const std::string& topic, const std::string& body) {
    auto r = client_->Send("POST", "/v1/topics/" + topic + "/records", body, kBatchType);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  HttpResponse Get(const std::string& path) {
    auto r = client_->Get(path);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  // Sum of end offsets over all partitions of all topics.
  int64_t TotalEndOffsets() {
    int64_t total = 0;
    for (const Topic* t : broker_->store().Topics()) {
      for (int p = 0; p < t->partition_count(); ++p) {
        total += t->partition(p)->next_offset();
      }
    }
    return total;
  }
  std::vector<Record> Mixed(int n) {
    std::vector<Record> recs;
    const char* countries[] = {"DE", "FR", "AT"};
    for (int i = 0; i < n; ++i) {
      recs.push_back(MakeRecord("dev-" + std::to_string(i), countries[i % 3], 1'700'000'000'000 + i,
                                "{\"temp\":" + std::to_string(20 + i) + "}"));
    }
    return recs;
  }

  sluice::testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(BrokerServerTest, ProduceThenFetchAndQuery) {
  HttpResponse r = Post("readings", EncodeRecords(Mixed(9), 7));
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document d = Json(r);
  EXPECT_STREQ(d["topic"].GetString(), "readings");
  EXPECT_EQ(d["records"].GetInt(), 9);
  int64_t total = 0;
  for (const auto& p : d["partitions"].GetArray()) {
    EXPECT_EQ(p["base_offset"].GetInt64(), 0);
    total += p["last_offset"].GetInt64() + 1;
  }
  EXPECT_EQ(total, 9);
  EXPECT_EQ(TotalEndOffsets(), 9);

  // Every record is in the partition its key maps to; fetch them all back.
  int fetched = 0;
  for (int p = 0; p < 3; ++p) {
    HttpResponse f = Get("/v1/topics/readings/partitions/" + std::to_string(p) + "/records");
    ASSERT_EQ(f.status, 200) << f.body;
    rapidjson::Document fd = Json(f);
    for (const auto& rec : fd["records"].GetArray()) {
      EXPECT_EQ(PartitionForKey(rec["device_id"].GetString(), 3), p);
      EXPECT_EQ(rec["partition"].GetInt(), p);
      EXPECT_TRUE(rec["payload"].IsObject());
      EXPECT_EQ(rec["ingest_ts"].GetInt64(), rec["ts"].GetInt64() + 5);
      EXPECT_STREQ(rec["gateway_id"].GetString(), "gw-1");
      EXPECT_STREQ(rec["source"].GetString(), "http");
      EXPECT_STREQ(rec["sensor"].GetString(), "temp");
      ++fetched;
    }
    EXPECT_EQ(fd["end_offset"].GetInt64(), fd["next_offset"].GetInt64());
  }
  EXPECT_EQ(fetched, 9);

  HttpResponse q = Get("/v1/query?device_id=dev-4&count=exact");
  ASSERT_EQ(q.status, 200) << q.body;
  rapidjson::Document qd = Json(q);
  EXPECT_STREQ(qd["region"].GetString(), "eu-central");
  EXPECT_EQ(qd["matched"].GetInt(), 1);
  ASSERT_EQ(qd["records"].Size(), 1u);
  EXPECT_EQ(qd["records"][0]["payload"]["temp"].GetInt(), 24);
  EXPECT_STREQ(qd["records"][0]["country"].GetString(), "FR");

  HttpResponse topics = Get("/v1/topics");
  ASSERT_EQ(topics.status, 200);
  rapidjson::Document td = Json(topics);
  ASSERT_EQ(td["topics"].Size(), 1u);
  EXPECT_EQ(td["topics"][0]["partitions"].Size(), 3u);
  EXPECT_GT(td["topics"][0]["partitions"][0]["size_bytes"].GetInt64(), 0);
}

// A dashboard's aggregate over HTTP: counts per country, per time bucket with a payload field's
// statistics; bad parameters name their field.
TEST_F(BrokerServerTest, AggregatesCountPerCountryAndBucketWithFieldStatistics) {
  ASSERT_EQ(Post("a", EncodeRecords(Mixed(12))).status, 200);  // temp 20..31, ts T0 + i
  rapidjson::Document d = Json(Get("/v1/query/aggregate?group_by=country"));
  ASSERT_EQ(d["rows"].Size(), 3u);
  EXPECT_STREQ(d["rows"][0]["country"].GetString(), "AT");
  EXPECT_EQ(d["rows"][0]["count"].GetInt(), 4);
  // Buckets of one minute from T0 - 60 s: all twelve in the second one; temp over i = 0..11.
  d = Json(Get("/v1/query/aggregate?bucket=1m&field=temp&from=1699999940000&to=1700000060000"));
  ASSERT_EQ(d["rows"].Size(), 1u);
  EXPECT_EQ(d["rows"][0]["bucket"].GetInt64(), 1699999980000);  // aligned to the minute
  EXPECT_EQ(d["rows"][0]["count"].GetInt(), 12);
  EXPECT_EQ(d["rows"][0]["values"].GetInt(), 12);
  EXPECT_EQ(d["rows"][0]["min"].GetDouble(), 20);
  EXPECT_EQ(d["rows"][0]["max"].GetDouble(), 31);
  EXPECT_EQ(d["rows"][0]["avg"].GetDouble(), 25.5);
  HttpResponse bad = Get("/v1/query/aggregate?bucket=5m&from=0&to=1");
  EXPECT_EQ(bad.status, 400);
  EXPECT_STREQ(Json(bad)["field"].GetString(), "bucket");
  EXPECT_EQ(Get("/v1/query/aggregate?bucket=1m&from=0&to=1700000000000").status, 400)
      << "more than 10,000 buckets";
  EXPECT_EQ(Get("/v1/query/aggregate?group_by=gateway").status, 400);
}

TEST_F(BrokerServerTest, NonJsonPayloadIsBase64) {
  std::vector<Record> recs = {MakeRecord("dev-x", "DE", 5, std::string("\x01\x02\xff", 3))};
  ASSERT_EQ(Post("raw", EncodeRecords(recs)).status, 200);
  rapidjson::Document d = Json(Get("/v1/query?topic=raw"));
  ASSERT_EQ(d["records"].Size(), 1u);
  EXPECT_STREQ(d["records"][0]["payload"].GetString(), "AQL/");
  EXPECT_STREQ(d["records"][0]["payload_encoding"].GetString(), "base64");
}

// Over HTTP, fetch and query: a JSON payload comes back as the bytes stored (numbers were
// re-serialised through doubles), and a payload nested 30,000 deep is served as base64 (any
// fetch or query that reached one crashed the broker: recursive parse).
TEST_F(BrokerServerTest, PayloadsComeBackByteExactAndDeepOnesDoNotCrash) {
  const std::string exact = R"({"v":0.49528059050664996,"n":123456789012345678901234567890})";
  const std::string deep = std::string(30'000, '[') + std::string(30'000, ']');
  ASSERT_EQ(Post("exact", EncodeRecords({MakeRecord("dev-e", "DE", 5, exact)})).status, 200);
  ASSERT_EQ(Post("exact", EncodeRecords({MakeRecord("dev-d", "DE", 6, deep)})).status, 200);
  HttpResponse q = Get("/v1/query?topic=exact&device_id=dev-e");
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_NE(q.body.find("\"payload\":" + exact + "}"), std::string::npos) << q.body;
  HttpResponse all = Get("/v1/query?topic=exact");
  ASSERT_EQ(all.status, 200);
  EXPECT_NE(all.body.find("\"payload_encoding\":\"base64\""), std::string::npos);
  for (int p = 0; p < 3; ++p) {
    HttpResponse f = Get("/v1/topics/exact/partitions/" + std::to_string(p) + "/records");
    ASSERT_EQ(f.status, 200) << f.body.substr(0, 200);
    if (f.body.find("dev-e") != std::string::npos) {
      EXPECT_NE(f.body.find("\"payload\":" + exact + "}"), std::string::npos) << f.body;
    }
  }
}

TEST_F(BrokerServerTest, CorruptBatchIsRefusedAndNothingStored) {
  ASSERT_EQ(Post("readings", EncodeRecords(Mixed(3))).status, 200);
  std::string bad = EncodeRecords(Mixed(3));
  bad[bad.size() - 2] ^= 0x40;  // payload byte: CRC no longer matches
  HttpResponse r = Post("readings", bad);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_STREQ(Json(r)["error"].GetString(), "corrupt_batch");
  r = Post("readings", EncodeRecords(Mixed(3)) + "zz");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("trailing"), std::string::npos) << r.body;
  r = Post("readings", "not a batch");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(TotalEndOffsets(), 3);
}

TEST_F(BrokerServerTest, ForeignCountryIs451WithIndexAndNothingStored) {
  std::vector<Record> recs = Mixed(5);
  recs[3] = MakeRecord("dev-us", "US", 1, "{}");
  HttpResponse r = Post("readings", EncodeRecords(recs));
  ASSERT_EQ(r.status, 451) << r.body;
  rapidjson::Document d = Json(r);
  EXPECT_STREQ(d["error"].GetString(), "residency");
  EXPECT_EQ(d["index"].GetInt(), 3);
  EXPECT_STREQ(d["field"].GetString(), "headers.country");
  EXPECT_STREQ(d["reason"].GetString(),
               "record 3 (device dev-us) has country US, which region eu-central may not store");
  EXPECT_EQ(TotalEndOffsets(), 0);
  std::string metrics = Get("/metrics").body;
  EXPECT_NE(metrics.find("sluice_broker_residency_refusals_total{country=\"US\"} 1"),
            std::string::npos)
      << metrics;
}

// acks=0 (Kafka's fire-and-forget): answered 202 once checked, stored after the answer; bad
// input still gets its precise error and stores nothing. Before: 400 "acks must be all or 1".
TEST_F(BrokerServerTest, AcksZeroIsCheckedAnsweredThenStored) {
  auto r = client_->Send("POST", "/v1/topics/readings/records?acks=0",
                         EncodeRecords(Mixed(6), 11), kBatchType);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(Json(*r)["records"].GetInt(), 6);
  EXPECT_TRUE(sluice::testing::WaitFor([&] { return TotalEndOffsets() == 6; }, 10000))
      << TotalEndOffsets();
  std::vector<Record> foreign = Mixed(3);
  foreign[1] = MakeRecord("dev-us", "US", 1, "{}");
  auto refused = client_->Send("POST", "/v1/topics/readings/records?acks=0",
                               EncodeRecords(foreign), kBatchType);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 451) << refused->body;
  auto bad = client_->Send("POST", "/v1/topics/readings/records?acks=2",
                           EncodeRecords(Mixed(1)), kBatchType);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_EQ(TotalEndOffsets(), 6);
}

TEST_F(BrokerServerTest, InvalidRecordsAre400WithIndexAndField) {
  std::vector<Record> recs = Mixed(4);
  recs[2].key.reset();
  HttpResponse r = Post("readings", EncodeRecords(recs));
  ASSERT_EQ(r.status, 400) << r.body;
  rapidjson::Document d = Json(r);
  EXPECT_STREQ(d["error"].GetString(), "invalid_record");
  EXPECT_EQ(d["index"].GetInt(), 2);
  EXPECT_STREQ(d["field"].GetString(), "key");

  recs = Mixed(4);
  recs[1].key = "";
  EXPECT_EQ(Json(Post("readings", EncodeRecords(recs)))["index"].GetInt(), 1);

  recs = Mixed(4);
  recs[0].headers.clear();
  recs[3] = MakeRecord("dev-us", "US", 1, "{}");  // the first problem wins
  d = Json(Post("readings", EncodeRecords(recs)));
  EXPECT_STREQ(d["field"].GetString(), "headers.country");
  EXPECT_EQ(d["index"].GetInt(), 0);

  recs = Mixed(2);
  recs[1] = MakeRecord("dev-1", "de", 1, "{}");
  r = Post("readings", EncodeRecords(recs));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Json(r)["index"].GetInt(), 1);
  EXPECT_EQ(TotalEndOffsets(), 0);
}

TEST_F(BrokerServerTest, BodyOverLimitIs413) {
  std::vector<Record> recs = {MakeRecord("dev-1", "DE", 1, std::string(70 * 1024, 'a'))};
  HttpResponse r = Post("readings", EncodeRecords(recs));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(TotalEndOffsets(), 0);
}

TEST_F(BrokerServerTest, QueryFiltersAndCountsByCountry) {
  ASSERT_EQ(Post("a", EncodeRecords(Mixed(12))).status, 200);
  ASSERT_EQ(Post("b", EncodeRecords(Mixed(6))).status, 200);
  rapidjson::Document d = Json(Get("/v1/query?limit=2&count=exact"));
  EXPECT_EQ(d["matched"].GetInt(), 18);
  EXPECT_TRUE(d["next"].IsString());
  EXPECT_EQ(d["returned"].GetInt(), 2);
  EXPECT_EQ(d["records"].Size(), 2u);
  EXPECT_EQ(d["counts_by_country"]["DE"].GetInt(), 6);
  EXPECT_EQ(d["counts_by_country"]["FR"].GetInt(), 6);
  EXPECT_EQ(d["counts_by_country"]["AT"].GetInt(), 6);

  d = Json(Get("/v1/query?country=AT&topic=a&count=exact"));
  EXPECT_EQ(d["matched"].GetInt(), 4);
  EXPECT_TRUE(d["next"].IsNull());
  EXPECT_EQ(d["counts_by_country"].MemberCount(), 1u);

  // ts = 1700000000000 + i; [from, to) in RFC 3339 keeps i = 2..4 of each topic.
  d = Json(Get("/v1/query?from=" + UrlEncode("2023-11-14T22:13:20.002Z") +
               "&to=1700000000005&count=exact"));
  EXPECT_EQ(d["matched"].GetInt(), 6);

  HttpResponse bad = Get("/v1/query?from=soon");
  EXPECT_EQ(bad.status, 400);
  EXPECT_STREQ(Json(bad)["field"].GetString(), "from");
}

TEST_F(BrokerServerTest, FetchPagingAndErrors) {
  ASSERT_EQ(Post("t", EncodeRecords(Mixed(30))).status, 200);
  rapidjson::Document d = Json(Get("/v1/topics/t/partitions/0/records?offset=1&max_records=2"));
  ASSERT_EQ(d["records"].Size(), 2u);
  EXPECT_EQ(d["records"][0]["offset"].GetInt(), 1);
  EXPECT_EQ(d["next_offset"].GetInt(), 3);
  EXPECT_EQ(Get("/v1/topics/nope/partitions/0/records").status, 404);
  EXPECT_EQ(Get("/v1/topics/t/partitions/3/records").status, 404);
  EXPECT_EQ(Get("/v1/topics/t/partitions/0/records?offset=99999").status, 416);
  EXPECT_EQ(Get("/v1/topics/t/partitions/0/records?max_records=x").status, 400);
  EXPECT_EQ(Get("/v1/nothing").status, 404);
  rapidjson::Document h = Json(Get("/healthz"));
  EXPECT_STREQ(h["status"].GetString(), "ok");
  EXPECT_STREQ(h["region"].GetString(), "eu-central");
}

TEST_F(BrokerServerTest, MetricsCountProduceAndEndOffsets) {
  ASSERT_EQ(Post("m", EncodeRecords(Mixed(3))).status, 200);
  ASSERT_EQ(Post("m", "junk").status, 400);
  std::string m = Get("/metrics").body;
  EXPECT_NE(m.find("sluice_broker_produce_requests_total{status=\"200\"} 1"), std::string::npos)
      << m;
  EXPECT_NE(m.find("sluice_broker_produce_requests_total{status=\"400\"} 1"), std::string::npos);
  EXPECT_NE(m.find("sluice_broker_records_appended_total{topic=\"m\"} 3"), std::string::npos);
  EXPECT_NE(m.find("sluice_broker_partition_end_offset{"), std::string::npos);
}

TEST_F(BrokerServerTest, RestartKeepsRecords) {
  ASSERT_EQ(Post("r", EncodeRecords(Mixed(6))).status, 200);
  BrokerOptions o = broker_->options();
  client_.reset();
  broker_.reset();
  o.http_port = sluice::testing::FreePort();
  auto b = Broker::Start(o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  broker_ = std::move(b).value();
  client_ = std::make_unique<HttpClient>("http://127.0.0.1:" + std::to_string(broker_->port()));
  EXPECT_EQ(Json(Get("/v1/query?count=exact"))["matched"].GetInt(), 6);
  ASSERT_EQ(Post("r", EncodeRecords(Mixed(6))).status, 200);
  EXPECT_EQ(TotalEndOffsets(), 12);
}

TEST_F(BrokerServerTest, TornTailIsCutOnRestartAndCounted) {
  ASSERT_EQ(Post("r", EncodeRecords(Mixed(3))).status, 200);
  BrokerOptions o = broker_->options();
  client_.reset();
  broker_.reset();
  const std::string seg = dir_.Sub("logs/r-" + std::to_string(PartitionForKey("dev-0", 3)) +
                                   "/00000000000000000000.log");
  std::ofstream(seg, std::ios::binary | std::ios::app) << "torn!";
  o.http_port = sluice::testing::FreePort();
  auto b = Broker::Start(o);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  broker_ = std::move(b).value();
  client_ = std::make_unique<HttpClient>("http://127.0.0.1:" + std::to_string(broker_->port()));
  std::string m = Get("/metrics").body;
  EXPECT_NE(m.find("sluice_broker_recovery_truncated_bytes_total 5"), std::string::npos) << m;
  EXPECT_EQ(Json(Get("/v1/query?count=exact"))["matched"].GetInt(), 3);
}

TEST_F(BrokerServerTest, AppendFailureIs503WithRetryAfter) {
  // One device, so one partition; the second batch needs a new segment (segment_bytes 4096),
  // and the partition's directory is gone, so the roll fails.
  std::vector<Record> big = {MakeRecord("dev-0", "DE", 1, std::string(3000, 'x'))};
  ASSERT_EQ(Post("f", EncodeRecords(big)).status, 200);
  const std::string dir = dir_.Sub("logs/f-" + std::to_string(PartitionForKey("dev-0", 3)));
  std::filesystem::rename(dir, dir + ".gone");
  HttpResponse r = Post("f", EncodeRecords(big));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_STREQ(Json(r)["error"].GetString(), "storage_unavailable");
  bool retry_after = false;
  for (const auto& [name, value] : r.headers) {
    retry_after = retry_after || name == "Retry-After" || name == "retry-after";
  }
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(TotalEndOffsets(), 1);
}

}  // namespace
}  // namespace sluice::broker
