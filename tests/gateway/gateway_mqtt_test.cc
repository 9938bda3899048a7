// MQTT ingest against a real Mosquitto: messages published with mosquitto_pub land in the
// buffer (QoS 1 and 0), JSON payload fields are used, invalid topics are dropped and counted.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <sstream>

#include "gateway/app/gateway_app.h"
#include "gateway/buffer/buffer_check.h"
#include "tests/common/small_disk.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

class Refusing : public Uplink {
 public:
  Result<UplinkResponse> SendBatch(const std::string&, const std::string&) override {
    return UplinkResponse{503, "{}"};
  }
};

class GatewayMqttTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mosquitto_ = testing::Mosquitto::Start(dir_);
    ASSERT_NE(mosquitto_, nullptr) << "cannot start mosquitto";
    GatewayConfig c;
    c.gateway_id = GatewayId("gw-mqtt");
    c.country = CountryCode("DE");
    c.data_dir = dir_.Sub("data");
    c.http_enabled = false;
    c.mqtt_uri = mosquitto_->uri();
    c.mqtt_client_id = "gw-mqtt-test";
    c.mqtt_topics = {"site/sensors/+/+"};
    c.mqtt_qos = 1;
    c.mqtt_max_payload_bytes = 64;
    c.ingest.max_json_depth = 3;
    c.forward_backoff_initial_ms = 60000;
    c.forward_backoff_max_ms = 60000;
    c.regions = {RegionConfig{RegionId("eu-central"), "http://127.0.0.1:1", {CountryCode("DE")}},
                 RegionConfig{RegionId("us-east"), "http://127.0.0.1:1", {CountryCode("US")}}};
    Configure(c);
    app_ = std::make_unique<GatewayApp>(c);
    app_->SetUplinkFactory([](const RegionConfig&) { return std::make_unique<Refusing>(); });
    Status st = app_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(testing::WaitFor([&] { return app_->mqtt()->subscribed(); }, 15000));
  }

  virtual void Configure(GatewayConfig&) {}

  void Publish(const std::string& topic, const std::string& payload, int qos) {
    int code = testing::RunCommand({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p",
                                    std::to_string(mosquitto_->port()), "-q",
                                    std::to_string(qos), "-t", topic, "-m", payload},
                                   dir_.Sub("pub.log"), 10000);
    ASSERT_EQ(code, 0) << testing::ReadFileOrEmpty(dir_.Sub("pub.log"));
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::Mosquitto> mosquitto_;
  std::unique_ptr<GatewayApp> app_;
};

TEST_F(GatewayMqttTest, MessagesLandInTheBuffer) {
  Publish("site/sensors/dev-1/temp", "{\"v\":1,\"ts\":1234,\"country\":\"US\"}", 1);
  Publish("site/sensors/dev-2/hum", "raw-bytes", 0);
  EventBuffer* buf = app_->buffer();
  ASSERT_TRUE(testing::WaitFor([&] { return buf->total_buffered_records() == 2; }, 10000));

  Result<ReadBatchResult> us = buf->ReadBatch(RegionId("us-east"), 0, 10, 1 << 20);
  ASSERT_EQ(us->records.size(), 1u);
  const SensorEvent& e = us->records[0].event;
  EXPECT_EQ(e.device_id.value(), "dev-1");
  EXPECT_EQ(e.sensor, "temp");
  EXPECT_EQ(e.ts_ms, 1234);
  EXPECT_EQ(e.source, "mqtt");
  EXPECT_EQ(e.payload, "{\"v\":1,\"ts\":1234,\"country\":\"US\"}");

  Result<ReadBatchResult> eu = buf->ReadBatch(RegionId("eu-central"), 0, 10, 1 << 20);
  ASSERT_EQ(eu->records.size(), 1u);
  EXPECT_EQ(eu->records[0].event.device_id.value(), "dev-2");
  EXPECT_EQ(eu->records[0].event.country.value(), "DE");
  EXPECT_EQ(eu->records[0].event.payload, "raw-bytes");
}

TEST_F(GatewayMqttTest, InvalidMessagesAreDroppedAndCounted) {
  Publish("site/sensors/bad id!/temp", "{}", 1);
  Publish("site/sensors/dev-3/temp", "{\"country\":\"JP\"}", 1);
  Publish("site/sensors/dev-4/temp", "{\"ts\":\"soon\"}", 1);
  Publish("site/sensors/dev-6/temp", std::string(65, 'x'), 1);  // over mqtt.max_payload_bytes
  Publish("site/sensors/dev-7/temp", "{\"any_member\":[[[1]]]}", 1);  // over max_json_depth 3
  Publish("site/sensors/dev-8/temp", "{\"country\":\"DE\",\"country\":\"US\"}", 1);
  Publish("site/sensors/dev-5/temp", "ok", 1);  // a valid one after the bad ones
  EventBuffer* buf = app_->buffer();
  ASSERT_TRUE(testing::WaitFor([&] { return buf->total_buffered_records() == 1; }, 10000));
  std::string m = app_->metrics().RenderPrometheus();
  EXPECT_NE(m.find("reason=\"invalid_device_id\""), std::string::npos) << m;
  // JP is stored in no region: kept in the residency quarantine, not dropped.
  EXPECT_EQ(buf->residency_quarantined(), 1u);
  EXPECT_EQ(m.find("reason=\"no_region\""), std::string::npos) << m;
  EXPECT_NE(m.find("reason=\"invalid_ts\""), std::string::npos) << m;
  EXPECT_NE(m.find("reason=\"too_large\""), std::string::npos) << m;
  // Labels from a fixed set, whatever member of the payload broke a rule.
  EXPECT_NE(m.find("reason=\"invalid_payload\""), std::string::npos) << m;
  EXPECT_NE(m.find("reason=\"invalid_country\""), std::string::npos) << m;
  EXPECT_EQ(m.find("any_member"), std::string::npos) << m;
}

// Residency (issue 13): an MQTT event of a country no region may store was acknowledged to
// the device by Mosquitto, so it cannot be refused: it is kept in the local residency
// quarantine with its reason, counted, listed by --check-buffer, and never forwarded; beyond
// residency.quarantine_max_records it is dropped and counted.
TEST_F(GatewayMqttTest, EventsOfACountryAllowedNowhereAreQuarantinedListedAndNeverForwarded) {
  Publish("site/sensors/br-1/temp", "{\"country\":\"BR\",\"v\":1}", 1);
  Publish("site/sensors/de-1/temp", "{\"country\":\"DE\",\"v\":2}", 1);
  Publish("site/sensors/br-2/temp", "{\"country\":\"BR\",\"v\":3}", 0);
  EventBuffer* buf = app_->buffer();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return buf->residency_quarantined() == 2 && buf->total_buffered_records() == 1; },
      10000));
  EXPECT_EQ(buf->buffered_records(RegionId("eu-central")), 1u);
  EXPECT_EQ(buf->buffered_records(RegionId("us-east")), 0u);
  std::string m = app_->metrics().RenderPrometheus();
  EXPECT_EQ(testing::MetricSum(m, "sluice_gateway_residency_quarantined_total"), 2) << m;
  app_->Stop();
  std::ostringstream report;
  ASSERT_TRUE(CheckBuffer(dir_.Sub("data") + "/buffer", report).ok());
  const std::string r = report.str();
  EXPECT_NE(r.find("refused (residency) r/residency/0: no_region: country BR is allowed in no "
                   "region by residency policy regions (topic site/sensors/br-1/temp); device "
                   "br-1, country BR"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("device br-2, country BR"), std::string::npos) << r;
  EXPECT_NE(r.find("refused (residency) 2,"), std::string::npos) << r;
  EXPECT_NE(r.find("region eu-central: queued 1 records"), std::string::npos) << r;
}

class GatewayMqttSmallQuarantineTest : public GatewayMqttTest {
  void Configure(GatewayConfig& c) override { c.residency_quarantine_max_records = 1; }
};

TEST_F(GatewayMqttSmallQuarantineTest, BeyondItsBoundTheQuarantineDropsAndCounts) {
  Publish("site/sensors/br-1/temp", "{\"country\":\"BR\"}", 1);
  Publish("site/sensors/br-2/temp", "{\"country\":\"BR\"}", 1);
  Publish("site/sensors/de-1/temp", "{\"country\":\"DE\"}", 1);
  EventBuffer* buf = app_->buffer();
  ASSERT_TRUE(testing::WaitFor([&] { return buf->total_buffered_records() == 1; }, 10000));
  EXPECT_EQ(buf->residency_quarantined(), 1u);
  const std::string m = app_->metrics().RenderPrometheus();
  EXPECT_NE(m.find("reason=\"residency_quarantine_full\""), std::string::npos) << m;
}

// A full disk (below buffer.min_free_bytes) holds QoS 1 messages back unacknowledged instead of
// acknowledging and dropping them: Mosquitto keeps them, and they are all stored once space
// returns.
TEST(GatewayMqttDiskFullTest, QoS1IsHeldUnacknowledgedUntilSpaceReturns) {
  testing::TempDir dir;
  std::string why;
  auto disk = testing::SmallDisk::Mount(dir.Sub("disk"), int64_t{12} << 20, &why);
  if (disk == nullptr) {
    GTEST_SKIP() << why;
  }
  auto mosquitto = testing::Mosquitto::Start(dir);
  ASSERT_NE(mosquitto, nullptr) << "cannot start mosquitto";
  GatewayConfig c;
  c.gateway_id = GatewayId("gw-mqtt-full");
  c.country = CountryCode("DE");
  c.data_dir = disk->Sub("data");
  c.http_enabled = false;
  c.mqtt_uri = mosquitto->uri();
  c.mqtt_client_id = "gw-mqtt-full";
  c.mqtt_topics = {"site/sensors/+/+"};
  c.mqtt_qos = 1;
  c.buffer_min_free_bytes = int64_t{2} << 20;
  c.buffer_write_buffer_bytes = int64_t{256} << 10;
  c.forward_backoff_initial_ms = 60000;
  c.forward_backoff_max_ms = 60000;
  c.regions = {RegionConfig{RegionId("eu-central"), "http://127.0.0.1:1", {CountryCode("DE")}}};
  GatewayApp app(c);
  app.SetUplinkFactory([](const RegionConfig&) { return std::make_unique<Refusing>(); });
  ASSERT_TRUE(app.Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return app.mqtt()->subscribed(); }, 15000));

  // Another program takes the disk down to 1 MiB free, half the gateway's floor.
  EventBuffer* buf = app.buffer();
  ASSERT_TRUE(disk->Fill("other-app-2.log", disk->FreeBytes() - (int64_t{1} << 20)));
  const uint64_t before = buf->total_buffered_records();

  ASSERT_EQ(testing::RunCommand({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p",
                                 std::to_string(mosquitto->port()), "-q", "1", "-t",
                                 "site/sensors/dev-9/temp", "-m", "{\"v\":1}", "--repeat", "30"},
                                dir.Sub("pub.log"), 20000),
            0)
      << testing::ReadFileOrEmpty(dir.Sub("pub.log"));
  Counter& held = app.metrics().GetCounter("sluice_gateway_mqtt_held_total",
                                           "QoS 1 messages held unacknowledged while the disk is full");
  ASSERT_TRUE(testing::WaitFor([&] { return held.Value() >= 1; }, 10000))
      << buf->total_buffered_records() - before;
  EXPECT_EQ(buf->total_buffered_records(), before);
  const std::string m = app.metrics().RenderPrometheus();
  EXPECT_EQ(m.find("reason=\"disk_full\",source=\"mqtt\""), std::string::npos) << m;

  std::filesystem::remove(disk->Sub("other-app-2.log"));
  ASSERT_TRUE(testing::WaitFor([&] { return buf->total_buffered_records() == before + 30; }, 20000))
      << buf->total_buffered_records() - before;
  app.Stop();
}

// Broker restart: Paho reconnects automatically and the connected handler resubscribes (clean
// session), so messages published after the restart still arrive.
TEST(GatewayMqttReconnectTest, ResubscribesAfterBrokerRestart) {
  testing::TempDir dir;
  const int port = testing::FreePort();
  const std::string conf = dir.Sub("m.conf");
  ASSERT_TRUE(testing::WriteFile(conf, "listener " + std::to_string(port) +
                                           " 127.0.0.1\nallow_anonymous true\n"
                                           "persistence false\nlog_dest stderr\n"));
  auto start_broker = [&] {
    auto p = testing::ChildProcess::Start({testing::MosquittoBinary(), "-c", conf},
                                          dir.Sub("m.log"));
    EXPECT_TRUE(testing::WaitFor([&] { return testing::PortAcceptsConnections(port); }, 10000));
    return p;
  };
  auto broker = start_broker();
  GatewayConfig c;
  c.gateway_id = GatewayId("gw-re");
  c.country = CountryCode("DE");
  c.data_dir = dir.Sub("data");
  c.http_enabled = false;
  c.mqtt_uri = "tcp://127.0.0.1:" + std::to_string(port);
  c.mqtt_client_id = "gw-re";
  c.mqtt_topics = {"s/+/+"};
  c.regions = {RegionConfig{RegionId("eu-central"), "http://127.0.0.1:1", {CountryCode("DE")}}};
  c.forward_backoff_initial_ms = 60000;
  c.forward_backoff_max_ms = 60000;
  GatewayApp app(c);
  app.SetUplinkFactory([](const RegionConfig&) { return std::make_unique<Refusing>(); });
  ASSERT_TRUE(app.Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return app.mqtt()->subscribed(); }, 15000));
  broker->Stop(SIGKILL, 5000);
  ASSERT_TRUE(testing::WaitFor([&] { return !app.mqtt()->subscribed(); }, 15000));
  broker = start_broker();
  ASSERT_TRUE(testing::WaitFor([&] { return app.mqtt()->subscribed(); }, 30000));
  ASSERT_EQ(testing::RunCommand({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p",
                                 std::to_string(port), "-q", "1", "-t", "s/dev-9/t", "-m", "x"},
                                dir.Sub("pub.log"), 10000),
            0);
  EXPECT_TRUE(testing::WaitFor([&] { return app.buffer()->total_buffered_records() == 1; },
                               10000));
  app.Stop();
}

}  // namespace
}  // namespace sluice::gateway
