// QoS 1 across gateway restarts, with a real Mosquitto and the real sluice-gateway binary: a
// device (a Paho client here) publishes 3,200 QoS 1 messages, each acknowledged by Mosquitto,
// while the gateway is stopped (SIGTERM), down, started again, SIGKILLed and started again.
// Every message must end up in the gateway's buffer (zero loss; counted by reading the buffer
// after the gateway stopped), and a retained message must be ingested once, not once per
// re-subscription.
#include <gtest/gtest.h>
#include <mqtt/async_client.h>

#include <csignal>
#include <iostream>
#include <deque>
#include <map>
#include <set>
#include <thread>

#include "gateway/buffer/event_buffer.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

constexpr int kPerPhase = 800;
constexpr const char* kClientId = "gw-restart-test";
constexpr const char* kFilter = "site/sensors/+/+";

// A device: publishes QoS 1 with at most 32 unacknowledged (Paho refuses past ~100).
class Device {
 public:
  explicit Device(const std::string& uri) : client_(uri, "device-pub", nullptr) {
    auto opts = mqtt::connect_options_builder().clean_session(true).finalize();
    client_.connect(opts)->wait();
  }
  ~Device() {
    try {
      client_.disconnect()->wait();
    } catch (const mqtt::exception&) {
    }
  }
  // Publishes seqs [from, to) and returns once Mosquitto acknowledged every one.
  void Publish(int from, int to) {
    std::deque<mqtt::delivery_token_ptr> unacked;
    for (int seq = from; seq < to; ++seq) {
      const std::string topic = "site/sensors/dev-" + std::to_string(seq % 8) + "/temp";
      unacked.push_back(client_.publish(topic, "{\"seq\":" + std::to_string(seq) + "}", 1, false));
      if (unacked.size() >= 32) {
        unacked.front()->wait();
        unacked.pop_front();
      }
    }
    for (auto& t : unacked) {
      t->wait();
    }
  }
  void PublishRetained(const std::string& topic, const std::string& payload) {
    client_.publish(topic, payload, 1, true)->wait();
  }

 private:
  mqtt::async_client client_;
};

class GatewayMqttRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mosquitto_ = testing::Mosquitto::Start(dir_);
    ASSERT_NE(mosquitto_, nullptr) << "cannot start mosquitto";
    http_port_ = testing::FreePort();
    config_ = dir_.Sub("gw.yaml");
    ASSERT_TRUE(testing::WriteFile(
        config_, "gateway:\n  id: gw-restart\n  country: DE\n  data_dir: " + dir_.Sub("data") +
                     "\nmqtt:\n  uri: " + mosquitto_->uri() + "\n  client_id: " + kClientId +
                     "\n  topics: [\"" + kFilter + "\"]\n  qos: 1\n"
                     "http:\n  port: " + std::to_string(http_port_) +
                     "\nforward:\n  backoff_initial: 60s\n  backoff_max: 60s\n"
                     "regions:\n  - name: eu-central\n    url: http://127.0.0.1:1\n"
                     "    countries: [DE]\n"));
  }

  std::unique_ptr<testing::ChildProcess> StartGateway() {
    auto gw = testing::ChildProcess::Start(
        {testing::BinPath("sluice-gateway"), "--config", config_},
        dir_.Sub("gateway-" + std::to_string(++starts_) + ".log"));
    EXPECT_NE(gw, nullptr);
    EXPECT_TRUE(testing::WaitHttpOk(http_port_, "/healthz", 20000)) << gw->ReadLog();
    return gw;
  }

  double Buffered() {
    std::string body;
    if (testing::HttpGet(http_port_, "/metrics", &body) != 200) {
      return -1;
    }
    return testing::MetricSum(body, "sluice_gateway_buffered_records");
  }

  // (device, payload) of every record in the stopped gateway's buffer.
  std::vector<std::pair<std::string, std::string>> ReadBuffer() {
    BufferOptions o;
    o.path = dir_.Sub("data") + "/buffer";
    auto buf = EventBuffer::Open(o);
    EXPECT_TRUE(buf.ok()) << buf.status().ToString();
    std::vector<std::pair<std::string, std::string>> out;
    if (!buf.ok()) {
      return out;
    }
    uint64_t cursor = 0;
    while (true) {
      Result<ReadBatchResult> r = (*buf)->ReadBatch(RegionId("eu-central"), cursor, 1000, 1 << 20);
      EXPECT_TRUE(r.ok());
      if (!r.ok() || r->records.empty()) {
        break;
      }
      for (const BufferedRecord& rec : r->records) {
        out.emplace_back(rec.event.device_id.value(), rec.event.payload);
      }
      cursor = r->next_cursor;
    }
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::Mosquitto> mosquitto_;
  int http_port_ = 0;
  std::string config_;
  int starts_ = 0;
};

TEST_F(GatewayMqttRestartTest, Qos1MessagesSurviveRestartsAndRetainedIsIngestedOnce) {
  auto gw = StartGateway();
  ASSERT_TRUE(mosquitto_->WaitSubscribed(kClientId, kFilter, 20000)) << gw->ReadLog();
  Device device(mosquitto_->uri());
  device.PublishRetained("site/sensors/dev-r/state", "{\"retained\":1}");

  // 1. Gateway up.
  device.Publish(0, kPerPhase);
  // 2. SIGTERM while publishing: the rest arrives while the gateway disconnects or is down.
  std::thread pub([&] { device.Publish(kPerPhase, 2 * kPerPhase); });
  EXPECT_EQ(gw->Stop(SIGTERM, 20000), 0) << gw->ReadLog();
  pub.join();
  // 3. Started again while publishing; then SIGKILLed while publishing.
  pub = std::thread([&] { device.Publish(2 * kPerPhase, 3 * kPerPhase); });
  gw = StartGateway();
  pub.join();
  pub = std::thread([&] { device.Publish(3 * kPerPhase, 4 * kPerPhase); });
  gw->Stop(SIGKILL, 10000);
  pub.join();
  // 4. Up again: Mosquitto delivers what it queued for the session.
  gw = StartGateway();
  ASSERT_TRUE(testing::WaitFor([&] { return Buffered() >= 4 * kPerPhase + 1; }, 60000, 50))
      << "buffered " << Buffered() << " of " << 4 * kPerPhase + 1 << "\n"
      << gw->ReadLog();
  // The SIGKILL's duplicates count in Buffered() too, so reaching the total does not mean every
  // message Mosquitto still queued for the session has arrived (a CI run stopped waiting with 36
  // on their way, 125 duplicates): wait until nothing more arrives for a second.
  double last = -1;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const double now = Buffered();
        const bool settled = now == last;
        last = now;
        return settled;
      },
      60000, 1000))
      << gw->ReadLog();
  // The last gateway resubscribed in a resumed session: Mosquitto replayed the retained message
  // (skipped, counted). Wait for that count so the check below sees the replay settled.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::string body;
        return testing::HttpGet(http_port_, "/metrics", &body) == 200 &&
               body.find("reason=\"retained_replay\"") != std::string::npos;
      },
      20000, 50))
      << gw->ReadLog();
  EXPECT_EQ(gw->Stop(SIGTERM, 20000), 0) << gw->ReadLog();

  std::map<int, int> seen;  // seq -> copies
  int retained_copies = 0;
  for (const auto& [device_id, payload] : ReadBuffer()) {
    if (device_id == "dev-r") {
      ++retained_copies;
      continue;
    }
    const size_t colon = payload.find(':');
    ASSERT_NE(colon, std::string::npos) << payload;
    ++seen[std::stoi(payload.substr(colon + 1))];
  }
  int missing = 0, duplicated = 0;
  for (int seq = 0; seq < 4 * kPerPhase; ++seq) {
    missing += seen.count(seq) == 0 ? 1 : 0;
    duplicated += seen.count(seq) != 0 && seen[seq] > 1 ? 1 : 0;
  }
  EXPECT_EQ(missing, 0) << "QoS 1 messages Mosquitto acknowledged are not in the buffer";
  // At-least-once: what the SIGKILLed gateway stored but had not yet acknowledged (PUBACKs
  // still in its socket are lost with the process) Mosquitto sends again: at most its
  // max_inflight_messages (1000 in tests/common/mosquitto.cc), counted here for the record.
  EXPECT_LE(duplicated, 1000);
  std::cout << "duplicates after one SIGKILL: " << duplicated << std::endl;
  EXPECT_EQ(retained_copies, 1) << "a retained message was ingested again on re-subscription";
}

}  // namespace
}  // namespace sluice::gateway
