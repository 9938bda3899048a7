#include "firmware-sim/mqtt_publisher.h"

#include <unistd.h>

#include <chrono>

#include <mqtt/async_client.h>

namespace sluice::sim {
namespace {

constexpr int kMaxBufferedRetries = 100;
constexpr int64_t kTokenWaitMs = 10000;

}  // namespace

Result<std::unique_ptr<MqttPublisher>> MqttPublisher::Connect(const SimConfig& config, int site,
                                                              const std::vector<Device>& fleet,
                                                              Ledger* ledger) {
  const SiteConfig& s = config.sites[static_cast<size_t>(site)];
  const std::string client_id =
      "sluice-sim-" + s.name + "-" + std::to_string(static_cast<long>(::getpid()));
  try {
    mqtt::create_options create(MQTTVERSION_DEFAULT);
    // Paho counts every unsent publish against this limit, connected or not; the in-flight
    // window below stays well under it.
    create.set_max_buffered_messages(static_cast<int>(config.mqtt_max_inflight) * 4 + 100);
    auto client = std::make_unique<mqtt::async_client>(s.mqtt_uri, client_id, create, nullptr);
    mqtt::connect_options opts;
    opts.set_clean_session(true);
    opts.set_keep_alive_interval(std::chrono::seconds(30));
    opts.set_connect_timeout(
        std::chrono::seconds(std::max<int64_t>(1, (config.mqtt_connect_timeout_ms + 999) / 1000)));
    opts.set_automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(5));
    auto tok = client->connect(opts);
    if (!tok->wait_for(std::chrono::milliseconds(config.mqtt_connect_timeout_ms))) {
      return Status::Unavailable("cannot connect to MQTT " + s.mqtt_uri + ": timed out after " +
                                 std::to_string(config.mqtt_connect_timeout_ms) + " ms");
    }
    return std::unique_ptr<MqttPublisher>(
        new MqttPublisher(config, site, fleet, ledger, std::move(client)));
  } catch (const mqtt::exception& e) {
    return Status::Unavailable("cannot connect to MQTT " + s.mqtt_uri + ": " + e.what());
  } catch (const std::exception& e) {
    return Status::Unavailable("cannot connect to MQTT " + s.mqtt_uri + ": " + e.what());
  }
}

MqttPublisher::MqttPublisher(const SimConfig& config, int site, const std::vector<Device>& fleet,
                             Ledger* ledger, std::unique_ptr<mqtt::async_client> client)
    : config_(config),
      site_(config.sites[static_cast<size_t>(site)]),
      fleet_(fleet),
      ledger_(ledger),
      client_(std::move(client)) {}

MqttPublisher::~MqttPublisher() {
  if (client_) Drain(1000);
}

void MqttPublisher::Fail(int device, uint64_t seq, const std::string& why) {
  ++errors_;
  ledger_->Resolve(device, seq, Outcome::kFailed);
  log_.Log(LogLevel::kWarn, "sim", "mqtt-fail-" + site_.name,
           "site " + site_.name + ": MQTT publish to " + site_.mqtt_uri + " failed: " + why);
}

void MqttPublisher::WaitOldest(int64_t timeout_ms) {
  InFlight f = std::move(inflight_.front());
  inflight_.pop_front();
  try {
    if (f.token->wait_for(std::chrono::milliseconds(timeout_ms))) {
      ledger_->Resolve(f.device, f.seq, Outcome::kDelivered);
    } else {
      Fail(f.device, f.seq, "not delivered within " + std::to_string(timeout_ms) + " ms");
    }
  } catch (const mqtt::exception& e) {
    Fail(f.device, f.seq, e.what());
  } catch (const std::exception& e) {
    Fail(f.device, f.seq, e.what());
  }
}

void MqttPublisher::ReapCompleted() {
  while (!inflight_.empty() && inflight_.front().token->is_complete()) WaitOldest(0);
}

void MqttPublisher::Publish(const Event& event) {
  if (!client_) {
    Fail(event.device, event.seq, "client already disconnected");
    return;
  }
  const Device& d = fleet_[static_cast<size_t>(event.device)];
  const std::string topic = site_.mqtt_topic_prefix + "/" + d.id + "/" + event.sensor;
  const std::string payload = EventPayload(d, event, config_.payload_bytes);
  ReapCompleted();
  while (static_cast<int64_t>(inflight_.size()) >= config_.mqtt_max_inflight) {
    WaitOldest(kTokenWaitMs);
  }
  for (int attempt = 0;; ++attempt) {
    try {
      auto msg = mqtt::make_message(topic, payload.data(), payload.size(), 0, false);
      mqtt::delivery_token_ptr tok = client_->publish(msg);
      inflight_.push_back({tok, event.device, event.seq});
      return;
    } catch (const mqtt::exception& e) {
      // -12: Paho's buffer is full. Make room by finishing the oldest publish, then retry.
      if (e.get_return_code() == MQTTASYNC_MAX_BUFFERED_MESSAGES && !inflight_.empty() &&
          attempt < kMaxBufferedRetries) {
        WaitOldest(kTokenWaitMs);
        continue;
      }
      Fail(event.device, event.seq, e.what());
      return;
    } catch (const std::exception& e) {
      Fail(event.device, event.seq, e.what());
      return;
    }
  }
}

void MqttPublisher::Drain(int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!inflight_.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    WaitOldest(std::max<int64_t>(0, left));
  }
  if (!client_) return;
  try {
    if (client_->is_connected()) {
      client_->disconnect(std::chrono::milliseconds(2000))->wait_for(std::chrono::seconds(5));
    }
  } catch (const mqtt::exception& e) {
    LogWarn("sim", "site " + site_.name + ": MQTT disconnect: " + std::string(e.what()));
  } catch (const std::exception& e) {
    LogWarn("sim", "site " + site_.name + ": MQTT disconnect: " + std::string(e.what()));
  }
  client_.reset();
}

}  // namespace sluice::sim
