// The broker's storage endpoints in-process: topic admin (create/describe, persisted config),
// 416 with the valid range after retention, offset by timestamp, long-poll fetch woken by an
// append, and disk full (fault-injecting FileOps) answered 507 with Retry-After.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <functional>
#include <future>

#include "cloud-broker/log/file_ops.h"
#include "cloud-broker/server/broker.h"
#include "core/http.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::EncodeRecords;
using testing::MakeRecord;
constexpr const char* kBatchType = "application/vnd.kafka.record-batch.v2";
constexpr int64_t kT0 = 1'700'000'000'000;

rapidjson::Document Json(const HttpResponse& r) {
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  EXPECT_FALSE(d.HasParseError()) << r.body;
  return d;
}

class StorageApiTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE")};
    o.http_port = sluice::testing::FreePort();
    o.default_partitions = 1;
    o.segment_bytes = 4096;
    o.file_ops = &ops_;
    if (tweak_) {
      tweak_(o);
    }
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    HttpClientOptions co;
    co.timeout_ms = 60000;
    client_ = std::make_unique<HttpClient>("http://127.0.0.1:" + std::to_string(broker_->port()),
                                           co);
  }

  HttpResponse Send(const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& type = "application/json") {
    auto r = client_->Send(method, path, body, type);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  // Produces `n` records of device "dev-1" (one partition) with timestamps kT0 + 10*k.
  HttpResponse Produce(const std::string& topic, int64_t first, int n) {
    std::vector<Record> recs;
    for (int i = 0; i < n; ++i) {
      recs.push_back(MakeRecord("dev-1", "DE", kT0 + (first + i) * 10,
                                "{\"k\":" + std::to_string(first + i) + ",\"pad\":\"" +
                                    std::string(100, 'x') + "\"}"));
    }
    return Send("POST", "/v1/topics/" + topic + "/records", EncodeRecords(recs), kBatchType);
  }

  sluice::testing::TempDir dir_;
  FaultInjectingFileOps ops_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpClient> client_;
  std::function<void(BrokerOptions&)> tweak_;  // set before a restart (Start)
};

TEST_F(StorageApiTest, CreatesDescribesAndPersistsTopicConfig) {
  HttpResponse r = Send("POST", "/v1/topics",
                        R"({"name":"t1","partitions":2,"retention_ms":3600000,)"
                        R"("retention_bytes":1000000,"flush":"interval","flush_ms":200})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Send("POST", "/v1/topics", R"({"name":"t1","partitions":3})").status, 409);
  struct Bad {
    const char* body;
    const char* field;
  };
  for (const Bad& b : {Bad{R"({"name":"t2","partitions":0})", "partitions"},
                       Bad{R"({"name":"t2","flush":"sometimes"})", "flush"},
                       Bad{R"({"name":"t2","retention_ms":-5})", "retention_ms"},
                       Bad{R"({"name":"t2","retention_bytes":"big"})", "retention_bytes"},
                       Bad{R"({"name":"t2","colour":"red"})", "colour"},
                       Bad{R"({"name":"no/slash"})", "name"}}) {
    HttpResponse bad = Send("POST", "/v1/topics", b.body);
    EXPECT_EQ(bad.status, 400) << b.body;
    EXPECT_STREQ(Json(bad)["field"].GetString(), b.field) << bad.body;
  }
  EXPECT_EQ(Send("GET", "/v1/topics/t2").status, 404);
  ASSERT_EQ(Produce("t1", 0, 10).status, 200);
  for (int round = 0; round < 2; ++round) {
    HttpResponse d = Send("GET", "/v1/topics/t1");
    ASSERT_EQ(d.status, 200) << d.body;
    auto doc = Json(d);
    EXPECT_STREQ(doc["config"]["flush"].GetString(), "interval");
    EXPECT_EQ(doc["config"]["flush_ms"].GetInt64(), 200);
    EXPECT_EQ(doc["config"]["retention_ms"].GetInt64(), 3600000);
    EXPECT_EQ(doc["config"]["retention_bytes"].GetInt64(), 1000000);
    ASSERT_EQ(doc["partitions"].Size(), 2u);
    int64_t end = 0;
    for (const auto& p : doc["partitions"].GetArray()) {
      EXPECT_EQ(p["start_offset"].GetInt64(), 0);
      EXPECT_GE(p["segments"].GetInt64(), 1);
      end += p["end_offset"].GetInt64();
      EXPECT_EQ(p["size_bytes"].GetInt64() > 0, p["end_offset"].GetInt64() > 0);
    }
    EXPECT_EQ(end, 10);
    broker_.reset();  // the config survives a restart (topics/t1.json)
    ASSERT_NO_FATAL_FAILURE(Start());
  }
}

// {"name":"a\u0000b"} created topic "a" (the name was read up to the NUL), and names of
// 247..249 characters passed validation but could not be stored ("<name>.json.tmp" is over 255
// bytes): a retryable 503 that never succeeds. Both are 400 now, and nothing is created.
TEST_F(StorageApiTest, TopicNamesThatCannotBeCreatedAre400) {
  struct Bad {
    std::string body;
    const char* field;
  };
  const std::string n247(247, 'n');
  for (const Bad& b : {Bad{R"({"name":"a\u0000b"})", "name"},
                       Bad{R"({"name":"a","flush":"never\u0000x"})", "flush"},
                       Bad{R"({"name":")" + n247 + R"("})", "name"},
                       Bad{R"({"name":")" + std::string(249, 'n') + R"("})", "name"}}) {
    HttpResponse bad = Send("POST", "/v1/topics", b.body);
    EXPECT_EQ(bad.status, 400) << b.body << " -> " << bad.body;
    if (bad.status == 400) {
      EXPECT_STREQ(Json(bad)["field"].GetString(), b.field) << bad.body;
    }
  }
  EXPECT_EQ(Send("GET", "/v1/topics/a").status, 404);
  HttpResponse produced = Produce(n247, 0, 1);
  EXPECT_EQ(produced.status, 400) << produced.body;
  const std::string n246(246, 'n');
  EXPECT_EQ(Send("POST", "/v1/topics", R"({"name":")" + n246 + R"(","partitions":2})").status,
            201);
  EXPECT_EQ(Produce(n246, 0, 1).status, 200);
}

// topics.max_partitions bounds what one client can make the broker hold (each partition costs
// directories, files, memory and metrics): a create past it is 409 partition_limit, a produce
// that would auto-create past it is 404 unknown_topic saying why, and nothing is left behind.
TEST_F(StorageApiTest, TopicsAreBoundedByPartitionsPerBroker) {
  broker_.reset();
  tweak_ = [](BrokerOptions& o) { o.max_partitions = 5; };
  Start();
  EXPECT_EQ(Send("POST", "/v1/topics", R"({"name":"a","partitions":3})").status, 201);
  HttpResponse over = Send("POST", "/v1/topics", R"({"name":"b","partitions":3})");
  EXPECT_EQ(over.status, 409) << over.body;
  EXPECT_EQ(Json(over)["error"].GetString(), std::string("partition_limit"));
  EXPECT_NE(over.body.find("topics.max_partitions"), std::string::npos) << over.body;
  EXPECT_EQ(Produce("c", 0, 1).status, 200);  // auto-created with 1 partition: 4 in all
  EXPECT_EQ(Produce("d", 0, 1).status, 200);  // 5
  HttpResponse refused = Produce("e", 0, 1);
  EXPECT_EQ(refused.status, 404) << refused.body;
  EXPECT_NE(refused.body.find("topics.max_partitions"), std::string::npos) << refused.body;
  HttpResponse list = Send("GET", "/v1/topics");
  EXPECT_EQ(list.body.find("\"b\""), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("\"e\""), std::string::npos) << list.body;
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("logs/b-0")));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("logs/e-0")));
  // After a restart the limit counts what is on disk.
  broker_.reset();
  Start();
  EXPECT_EQ(Send("POST", "/v1/topics", R"({"name":"f","partitions":1})").status, 409);
}

TEST_F(StorageApiTest, FetchBelowStartOffsetIs416WithTheValidRange) {
  ASSERT_EQ(Send("POST", "/v1/topics", R"({"name":"r","partitions":1,"retention_bytes":8192})")
                .status,
            201);
  for (int b = 0; b < 20; ++b) {
    ASSERT_EQ(Produce("r", b * 10, 10).status, 200);
  }
  EXPECT_GT(broker_->store().RunMaintenance(/*retention=*/true), 0u);
  HttpResponse r = Send("GET", "/v1/topics/r/partitions/0/records?offset=0");
  ASSERT_EQ(r.status, 416) << r.body;
  auto doc = Json(r);
  EXPECT_STREQ(doc["error"].GetString(), "offset_out_of_range");
  const int64_t start = doc["start_offset"].GetInt64();
  EXPECT_GT(start, 0);
  EXPECT_EQ(doc["end_offset"].GetInt64(), 200);
  HttpResponse ok = Send("GET", "/v1/topics/r/partitions/0/records?offset=" +
                                    std::to_string(start) + "&max_records=1");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Json(ok)["records"][0]["offset"].GetInt64(), start);
}

TEST_F(StorageApiTest, OffsetForTimestamp) {
  for (int b = 0; b < 10; ++b) {
    ASSERT_EQ(Produce("ts", b * 10, 10).status, 200);
  }
  for (int64_t k : {0, 5, 37, 99}) {
    HttpResponse r = Send("GET", "/v1/topics/ts/partitions/0/offset?timestamp=" +
                                     std::to_string(kT0 + k * 10 - 3));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Json(r)["offset"].GetInt64(), k);
    EXPECT_TRUE(Json(r)["found"].GetBool());
  }
  HttpResponse none = Send("GET", "/v1/topics/ts/partitions/0/offset?timestamp=" +
                                      std::to_string(kT0 + 100000));
  EXPECT_EQ(Json(none)["offset"].GetInt64(), 100);
  EXPECT_FALSE(Json(none)["found"].GetBool());
  EXPECT_EQ(Send("GET", "/v1/topics/ts/partitions/0/offset?timestamp=soon").status, 400);
  EXPECT_EQ(Send("GET", "/v1/topics/ts/partitions/7/offset?timestamp=1").status, 404);
}

TEST_F(StorageApiTest, LongPollFetchIsWokenByAnAppend) {
  ASSERT_EQ(Produce("lp", 0, 3).status, 200);
  EXPECT_EQ(Send("GET", "/v1/topics/lp/partitions/0/records?offset=3&wait_ms=30001").status,
            400);
  // A short wait with nothing new answers empty.
  HttpResponse empty = Send("GET", "/v1/topics/lp/partitions/0/records?offset=3&wait_ms=50");
  ASSERT_EQ(empty.status, 200);
  EXPECT_EQ(Json(empty)["records"].Size(), 0u);
  // A long one parks (no pool thread held) and is answered by the next append. Its 30 s
  // deadline would answer it too, with the same records (a completed long-poll is an ordinary
  // fetch): only an answer far before the deadline shows the append woke it. 5 s is 6x below
  // the deadline and ~1000x above a wake-up.
  auto fetch = std::async(std::launch::async, [this] {
    return Send("GET", "/v1/topics/lp/partitions/0/records?offset=3&wait_ms=30000");
  });
  ASSERT_TRUE(sluice::testing::WaitFor([&] { return broker_->fetch_waiter().parked() == 1; },
                                       10000));
  ASSERT_EQ(Produce("lp", 3, 2).status, 200);
  ASSERT_EQ(fetch.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the append did not wake the parked fetch (it would answer at its 30 s deadline)";
  HttpResponse r = fetch.get();
  ASSERT_EQ(r.status, 200) << r.body;
  auto doc = Json(r);
  ASSERT_EQ(doc["records"].Size(), 2u);
  EXPECT_EQ(doc["records"][0]["offset"].GetInt64(), 3);
}

TEST_F(StorageApiTest, DiskFullIs507RetryableAndRecovers) {
  ASSERT_EQ(Produce("full", 0, 5).status, 200);
  ops_.SetWriteBudget(100);
  HttpResponse r = Produce("full", 5, 5);
  ASSERT_EQ(r.status, 507) << r.body;
  EXPECT_STREQ(Json(r)["error"].GetString(), "insufficient_storage");
  bool retry_after = false;
  for (const auto& [k, v] : r.headers) {
    retry_after |= (k == "Retry-After" || k == "retry-after");
  }
  EXPECT_TRUE(retry_after);
  HttpResponse read = Send("GET", "/v1/topics/full/partitions/0/records?offset=0");
  ASSERT_EQ(read.status, 200);
  EXPECT_EQ(Json(read)["records"].Size(), 5u);
  ops_.SetWriteBudget(-1);
  ASSERT_EQ(Produce("full", 5, 5).status, 200);
  broker_.reset();
  Start();
  read = Send("GET", "/v1/topics/full/partitions/0/records?offset=0");
  auto doc = Json(read);
  ASSERT_EQ(doc["records"].Size(), 10u);
  for (rapidjson::SizeType i = 0; i < 10; ++i) {
    EXPECT_EQ(doc["records"][i]["offset"].GetInt64(), static_cast<int64_t>(i));
  }
}

}  // namespace
}  // namespace sluice::broker

namespace sluice::broker {
namespace {

// Issue 10 item 12: a long-poll whose consumer disconnected kept its slot (of kMaxParked) until
// its deadline; now the server reports the disconnect and the slot is freed at once.
TEST_F(StorageApiTest, DisconnectedLongPollFreesItsSlot) {
  ASSERT_EQ(Produce("gone", 0, 1).status, 200);
  for (int i = 0; i < 3; ++i) {
    HttpClientOptions co;
    co.timeout_ms = 300;  // the client gives up (and closes) long before the 30 s deadline
    HttpClient impatient("http://127.0.0.1:" + std::to_string(broker_->port()), co);
    auto r = impatient.Get("/v1/topics/gone/partitions/0/records?offset=1&wait_ms=30000");
    EXPECT_FALSE(r.ok());
  }
  EXPECT_TRUE(
      sluice::testing::WaitFor([&] { return broker_->fetch_waiter().parked() == 0; }, 10000))
      << broker_->fetch_waiter().parked() << " long-polls of gone clients still parked";
}

}  // namespace
}  // namespace sluice::broker
