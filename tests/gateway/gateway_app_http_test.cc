// GatewayApp in-process: the HTTP endpoint on a free port, MQTT disabled, a fake uplink that
// always answers 503 so whatever is accepted stays in the buffer.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/http.h"
#include "core/record_batch.h"
#include "gateway/app/gateway_app.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

class Refusing : public Uplink {
 public:
  Result<UplinkResponse> SendBatch(const std::string&, const std::string&) override {
    return UplinkResponse{503, "{\"error\":\"unavailable\"}"};
  }
};

GatewayConfig TestConfig(const testing::TempDir& dir) {
  GatewayConfig c;
  c.gateway_id = GatewayId("gw-test");
  c.country = CountryCode("DE");
  c.data_dir = dir.Sub("data");
  c.mqtt_enabled = false;
  c.http_port = testing::FreePort();
  c.http_max_body_bytes = 64 * 1024;
  c.http_max_events_per_request = 10;
  c.forward_backoff_initial_ms = 60000;  // one failed attempt, then quiet
  c.forward_backoff_max_ms = 60000;
  c.regions = {RegionConfig{RegionId("eu-central"), "http://127.0.0.1:1",
                            {CountryCode("DE"), CountryCode("FR")}},
               RegionConfig{RegionId("us-east"), "http://127.0.0.1:1", {CountryCode("US")}}};
  return c;
}

rapidjson::Document Json(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  return d;
}

class GatewayHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    app_ = std::make_unique<GatewayApp>(TestConfig(dir_));
    app_->SetUplinkFactory([](const RegionConfig&) { return std::make_unique<Refusing>(); });
    Status st = app_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    client_ = std::make_unique<HttpClient>("http://127.0.0.1:" +
                                           std::to_string(app_->http_port()));
  }
  HttpResponse Post(const std::string& body, const std::string& ct = "application/x-ndjson") {
    Result<HttpResponse> r = client_->Send("POST", "/v1/events", body, ct);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : HttpResponse{};
  }
  uint64_t Buffered() { return app_->buffer()->total_buffered_records(); }

  testing::TempDir dir_;
  std::unique_ptr<GatewayApp> app_;
  std::unique_ptr<HttpClient> client_;
};

std::string Ndjson(int n, int bad_index = -1) {
  std::string body;
  for (int i = 0; i < n; ++i) {
    if (i == bad_index) {
      body += "{\"device_id\":\"dev " + std::to_string(i) + "\"}\n";
    } else {
      body += "{\"device_id\":\"dev-" + std::to_string(i) + "\",\"ts\":" + std::to_string(1000 + i) +
              (i % 2 ? ",\"country\":\"US\"" : "") + "}\n";
    }
  }
  return body;
}

TEST_F(GatewayHttpTest, ValidNdjsonIsAcceptedAndDurable) {
  HttpResponse r = Post(Ndjson(5));
  ASSERT_EQ(r.status, 202) << r.body;
  rapidjson::Document d = Json(r.body);
  ASSERT_TRUE(d.IsObject() && d.HasMember("accepted")) << r.body;
  EXPECT_EQ(d["accepted"].GetInt(), 5);
  EXPECT_EQ(Buffered(), 5u);
  EXPECT_EQ(app_->buffer()->buffered_records(RegionId("eu-central")), 3u);
  EXPECT_EQ(app_->buffer()->buffered_records(RegionId("us-east")), 2u);
  Result<ReadBatchResult> rb = app_->buffer()->ReadBatch(RegionId("us-east"), 0, 10, 1 << 20);
  ASSERT_TRUE(rb.ok());
  ASSERT_EQ(rb->records.size(), 2u);
  const SensorEvent& e = rb->records[0].event;
  EXPECT_EQ(e.device_id.value(), "dev-1");
  EXPECT_EQ(e.ts_ms, 1001);
  EXPECT_EQ(e.source, "http");
  EXPECT_EQ(e.gateway_id.value(), "gw-test");
  EXPECT_EQ(e.payload, "{\"device_id\":\"dev-1\",\"ts\":1001,\"country\":\"US\"}");

  Result<HttpResponse> m = client_->Get("/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("sluice_gateway_received_total"), std::string::npos);
  EXPECT_NE(m->body.find("sluice_gateway_buffered_records"), std::string::npos);
  Result<HttpResponse> h = client_->Get("/healthz");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->status, 200);
}

TEST_F(GatewayHttpTest, BadEventAtIndex3Is400AndStoresNothing) {
  ASSERT_EQ(Post(Ndjson(2)).status, 202);
  HttpResponse r = Post(Ndjson(6, 3));
  ASSERT_EQ(r.status, 400) << r.body;
  rapidjson::Document d = Json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["error"].GetString(), "invalid_event");
  EXPECT_EQ(d["index"].GetInt(), 3);
  EXPECT_STREQ(d["field"].GetString(), "device_id");
  EXPECT_TRUE(d.HasMember("reason"));
  EXPECT_EQ(Buffered(), 2u);
}

// Hostile or careless clients (issue 10): each answer is 400 naming index and field, and
// nothing of the request is buffered. Before, a NUL ended the body early (202 {"accepted":1},
// the second event dropped), a second "country" routed the event, ts = INT64_MAX and a payload
// nested 30,000 deep were stored.
TEST_F(GatewayHttpTest, HostileBodiesAre400AndStoreNothing) {
  struct Case {
    std::string body;
    int64_t index;
    std::string field;
  };
  const std::string deep = std::string(30'000, '[') + std::string(30'000, ']');
  for (const Case& c :
       {Case{std::string("{\"device_id\":\"a\"}\0{\"device_id\":\"b\"}", 35), 1, ""},
        Case{R"([{"device_id":"a"},{"device_id":"b","country":"DE","country":"US"}])", 1,
             "country"},
        Case{R"({"device_id":"a","ts":9223372036854775807})", 0, "ts"},
        Case{R"({"device_id":"a","v":)" + deep + "}", 0, "v"},
        Case{"{\"device_id\":\"a\",\"sensor\":\"\xc3\x28\"}", 0, "sensor"}}) {
    HttpResponse r = Post(c.body, "application/json");
    ASSERT_EQ(r.status, 400) << r.body;
    rapidjson::Document d = Json(r.body);
    ASSERT_TRUE(d.IsObject()) << r.body;
    EXPECT_EQ(d["index"].GetInt(), c.index) << r.body;
    EXPECT_EQ(std::string(d.HasMember("field") ? d["field"].GetString() : ""), c.field) << r.body;
  }
  EXPECT_EQ(Buffered(), 0u);
}

TEST_F(GatewayHttpTest, TooManyEventsAndTooLargeBodyAre413) {
  HttpResponse r = Post(Ndjson(11));
  EXPECT_EQ(r.status, 413) << r.body;
  std::string big = "{\"device_id\":\"d\",\"pad\":\"" + std::string(70 * 1024, 'x') + "\"}";
  HttpResponse r2 = Post(big, "application/json");
  EXPECT_EQ(r2.status, 413) << r2.body;
  EXPECT_EQ(Buffered(), 0u);
}

TEST_F(GatewayHttpTest, CountryWithoutRegionIs422) {
  HttpResponse r = Post("[{\"device_id\":\"a\"},{\"device_id\":\"b\",\"country\":\"JP\"}]",
                        "application/json");
  ASSERT_EQ(r.status, 422) << r.body;
  rapidjson::Document d = Json(r.body);
  EXPECT_STREQ(d["field"].GetString(), "country");
  EXPECT_EQ(d["index"].GetInt(), 1);
  EXPECT_EQ(Buffered(), 0u);
}

TEST_F(GatewayHttpTest, ConcurrentRequestsAllAcknowledged) {
  std::vector<std::thread> threads;
  std::atomic<int> accepted{0};
  std::string url = "http://127.0.0.1:" + std::to_string(app_->http_port());
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      HttpClient c(url);
      for (int i = 0; i < 10; ++i) {
        Result<HttpResponse> r = c.Send("POST", "/v1/events", Ndjson(3), "application/x-ndjson");
        if (r.ok() && r->status == 202) {
          accepted += 3;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(accepted.load(), 120);
  EXPECT_EQ(Buffered(), 120u);
  EXPECT_EQ(app_->buffer()->next_seq(), 120u);
}

// The production HttpUplink against an in-process fake broker: events posted to the gateway are
// forwarded as one Kafka RecordBatch v2 per region and removed from the buffer after the 200.
TEST(GatewayForwardTest, ForwardsOverHttpToTheRegionBroker) {
  std::mutex mu;
  std::vector<std::pair<std::string, RecordBatch>> got;  // (path, batch)
  HttpServerOptions so;
  so.port = testing::FreePort();
  auto broker = HttpServer::Start(so, [&](HttpRequest&& req, HttpResponder respond) {
    Result<RecordBatch> b = DecodeBatch(req.body);
    if (!b.ok() || req.Header("content-type") != "application/vnd.kafka.record-batch.v2") {
      respond(HttpResponse::Error(400, "corrupt_batch", "bad"));
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    got.emplace_back(req.path, std::move(b.value()));
    respond(HttpResponse::Json(200, "{}"));
  });
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  testing::TempDir dir;
  GatewayConfig c = TestConfig(dir);
  c.forward_linger_ms = 0;
  c.regions[0].url = "http://127.0.0.1:" + std::to_string(so.port);
  GatewayApp app(c);
  ASSERT_TRUE(app.Start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(app.http_port()));
  Result<HttpResponse> r = client.Send(
      "POST", "/v1/events", "{\"device_id\":\"a\"}\n{\"device_id\":\"b\",\"ts\":7}\n",
      "application/x-ndjson");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 202);
  RegionId eu("eu-central");
  ASSERT_TRUE(testing::WaitFor([&] { return app.buffer()->buffered_records(eu) == 0; }, 10000));
  std::lock_guard<std::mutex> lock(mu);
  size_t records = 0;
  for (const auto& [path, batch] : got) {
    EXPECT_EQ(path, "/v1/topics/sensors/records");
    records += batch.records.size();
  }
  ASSERT_EQ(records, 2u);
  const Record& second = got.back().second.records.back();
  EXPECT_EQ(*second.key, "b");
  EXPECT_EQ(second.timestamp_ms, 7);
  EXPECT_EQ(*second.FindHeader(kHeaderGatewayId), "gw-test");
  EXPECT_EQ(*second.FindHeader(kHeaderSource), "http");
  EXPECT_EQ(app.forwarder("eu-central")->forwarded(), 2u);
  app.Stop();
  (*broker)->Stop();
}

// residency.country_source: registry (issue 13): a device's pinned country decides its region;
// an event claiming another country, or from a device the registry does not know, is refused
// 422 with the field, the index and both countries, and nothing of the request is buffered.
TEST(GatewayCountrySourceTest, TheDeviceRegistryPinsCountriesAndRefusesContradictions) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteFile(dir.Sub("devices.yaml"),
                                 "devices:\n  boiler-7: FR\nprefixes:\n  us-: US\n"));
  GatewayConfig c = TestConfig(dir);
  c.country_source = CountrySourceKind::kRegistry;
  c.device_registry = dir.Sub("devices.yaml");
  GatewayApp app(c);
  app.SetUplinkFactory([](const RegionConfig&) { return std::make_unique<Refusing>(); });
  ASSERT_TRUE(app.Start().ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(app.http_port()));
  auto post = [&](const std::string& body) {
    auto r = client.Send("POST", "/v1/events", body, "application/x-ndjson");
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : HttpResponse{};
  };
  HttpResponse ok = post("{\"device_id\":\"boiler-7\"}\n{\"device_id\":\"us-3\",\"country\":\"US\"}\n");
  EXPECT_EQ(ok.status, 202) << ok.body;
  EXPECT_EQ(app.buffer()->buffered_records(RegionId("eu-central")), 1u) << "FR: eu-central";
  EXPECT_EQ(app.buffer()->buffered_records(RegionId("us-east")), 1u);

  HttpResponse forged = post("{\"device_id\":\"us-4\"}\n{\"device_id\":\"boiler-7\",\"country\":\"US\"}\n");
  EXPECT_EQ(forged.status, 422) << forged.body;
  rapidjson::Document d = Json(forged.body);
  EXPECT_EQ(std::string(d["error"].GetString()), "country_contradiction");
  EXPECT_EQ(std::string(d["field"].GetString()), "country");
  EXPECT_EQ(d["index"].GetInt64(), 1);
  const std::string reason = d["reason"].GetString();
  EXPECT_NE(reason.find("claims country US"), std::string::npos) << reason;
  EXPECT_NE(reason.find("pins it to FR"), std::string::npos) << reason;

  HttpResponse unknown = post("{\"device_id\":\"stray-1\",\"country\":\"DE\"}\n");
  EXPECT_EQ(unknown.status, 422) << unknown.body;
  EXPECT_EQ(std::string(Json(unknown.body)["error"].GetString()), "device_unregistered");
  EXPECT_EQ(std::string(Json(unknown.body)["field"].GetString()), "device_id");
  EXPECT_EQ(app.buffer()->total_buffered_records(), 2u) << "refused requests buffer nothing";
  app.Stop();
}

}  // namespace
}  // namespace sluice::gateway
