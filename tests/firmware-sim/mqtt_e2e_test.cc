// The simulator against a real Mosquitto: a Paho subscriber counts what arrives, which must be
// exactly the manifest's mqtt_sent, each device's seqs 1..sent once, on the documented topics.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <mqtt/async_client.h>
#include <rapidjson/document.h>

#include "core/clock.h"
#include "firmware-sim/simulator.h"
#include "tests/common/test_env.h"
#include "tests/firmware-sim/sim_test_util.h"

namespace sluice::sim {
namespace {

using testing::ConfigFromYaml;

class Collector : public virtual mqtt::callback {
 public:
  void message_arrived(mqtt::const_message_ptr msg) override {
    std::lock_guard<std::mutex> lock(mu);
    ++count;
    rapidjson::Document doc;
    const std::string payload = msg->to_string();
    doc.Parse(payload.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("device_id") ||
        !doc.HasMember("seq") || !doc.HasMember("sensor")) {
      problems.push_back("bad payload on " + msg->get_topic() + ": " + payload);
      return;
    }
    const std::string id = doc["device_id"].GetString();
    const std::string expect_topic = "site-a/sensors/" + id + "/" + doc["sensor"].GetString();
    if (msg->get_topic() != expect_topic) {
      problems.push_back("topic " + msg->get_topic() + " != " + expect_topic);
    }
    if (!seqs[id].insert(doc["seq"].GetUint64()).second) {
      problems.push_back("duplicate " + id + " seq " + std::to_string(doc["seq"].GetUint64()));
    }
  }
  size_t Count() {
    std::lock_guard<std::mutex> lock(mu);
    return count;
  }
  std::mutex mu;
  size_t count = 0;
  std::map<std::string, std::set<uint64_t>> seqs;
  std::vector<std::string> problems;
};

TEST(MqttE2eTest, SubscriberReceivesExactlyMqttSent) {
  sluice::testing::TempDir dir;
  auto broker = sluice::testing::Mosquitto::Start(dir);
  ASSERT_NE(broker, nullptr);

  Collector collector;
  mqtt::async_client sub(broker->uri(), "sim-test-sub", mqtt::create_options(MQTTVERSION_DEFAULT),
                         nullptr);
  sub.set_callback(collector);
  mqtt::connect_options copts;
  copts.set_clean_session(true);
  ASSERT_TRUE(sub.connect(copts)->wait_for(std::chrono::seconds(10)));
  ASSERT_TRUE(sub.subscribe("site-a/sensors/#", 0)->wait_for(std::chrono::seconds(10)));

  // Mixed site, a small in-flight window so flow control is exercised (600 events, window 8).
  const std::string manifest = dir.Sub("manifest.json");
  SimConfig c = ConfigFromYaml(
      "sim:\n  seed: 5\n  devices: 20\n  duration: 1s\n  rate_per_device: 60\n"
      "  sensors: [t, h]\n  payload_bytes: 100\n  mqtt_max_inflight: 8\n  manifest: " +
      manifest +
      "\nsites:\n  - name: a\n    countries: [DE, US]\n    transport: mqtt\n"
      "    mqtt_uri: " +
      broker->uri() + "\n    mqtt_topic_prefix: site-a/sensors/\n");
  auto report = RunSimulation(c, SystemClock::Instance());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const ManifestTotals& t = report->manifest.totals;
  EXPECT_EQ(t.mqtt_errors, 0u);
  EXPECT_EQ(t.http_sent, 0u);
  EXPECT_EQ(t.mqtt_sent, t.sent);
  EXPECT_EQ(t.sent, 1200u) << "20 devices x 1 s x 60/s";

  EXPECT_TRUE(sluice::testing::WaitFor([&] { return collector.Count() >= t.mqtt_sent; }, 20000))
      << "received " << collector.Count() << " of " << t.mqtt_sent;
  sub.disconnect()->wait_for(std::chrono::seconds(5));
  std::lock_guard<std::mutex> lock(collector.mu);
  EXPECT_EQ(collector.count, t.mqtt_sent);
  EXPECT_TRUE(collector.problems.empty()) << collector.problems.front();
  for (const ManifestDevice& d : report->manifest.devices) {
    std::set<uint64_t> expect;
    for (uint64_t s = 1; s <= d.sent; ++s) expect.insert(s);
    EXPECT_EQ(collector.seqs[d.device_id], expect) << d.device_id;
    EXPECT_EQ(d.transport, "mqtt");
  }
  // The manifest on disk says the same.
  rapidjson::Document doc;
  doc.Parse(testing::ReadWholeFile(manifest).c_str());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_EQ(doc["totals"]["mqtt_sent"].GetUint64(), collector.count);
}

TEST(MqttE2eTest, UnreachableBrokerFailsTheStart) {
  SimConfig c = ConfigFromYaml(
      "sim:\n  devices: 2\n  mqtt_connect_timeout: 1s\n"
      "sites:\n  - name: a\n    countries: [DE]\n    transport: mqtt\n"
      "    mqtt_uri: tcp://127.0.0.1:" +
      std::to_string(sluice::testing::FreePort()) + "\n");
  auto report = RunSimulation(c, SystemClock::Instance());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(report.status().message().find("cannot connect to MQTT"), std::string::npos)
      << report.status().message();
}

}  // namespace
}  // namespace sluice::sim
