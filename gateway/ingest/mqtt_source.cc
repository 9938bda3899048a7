#include "gateway/ingest/mqtt_source.h"

#include <mqtt/async_client.h>

#include <chrono>
#include <future>

#include "core/backoff.h"
#include "core/thread_name.h"
#include "gateway/ingest/event_parser.h"

namespace sluice::gateway {
namespace {

constexpr const char* kLog = "mqtt";

// Marks the source subscribed when the SUBACK arrives.
class SubscribeListener : public mqtt::iaction_listener {
 public:
  SubscribeListener(std::atomic<bool>* flag, RateLimitedLog* log) : flag_(flag), log_(log) {}
  void on_success(const mqtt::token&) override { *flag_ = true; }
  void on_failure(const mqtt::token& tok) override {
    log_->Log(LogLevel::kError, kLog, "subscribe",
              "subscribe failed, rc=" + std::to_string(tok.get_return_code()));
  }

 private:
  std::atomic<bool>* flag_;
  RateLimitedLog* log_;
};

}  // namespace

MqttSource::MqttSource(EventBuffer& buffer, const RegionRouter& router, Clock& clock,
                       MqttSourceOptions options, MetricsRegistry& metrics)
    : buffer_(buffer), router_(router), clock_(clock), options_(std::move(options)),
      metrics_(metrics),
      received_(metrics.GetCounter("sluice_gateway_received_total",
                                   "Events accepted into the buffer", {{"source", "mqtt"}})),
      quarantined_(metrics.GetCounter(
          "sluice_gateway_residency_quarantined_total",
          "MQTT events of a country no region may store, kept in the residency quarantine")),
      held_(metrics.GetCounter("sluice_gateway_mqtt_held_total",
                               "QoS 1 messages held unacknowledged while the disk is full")) {}

MqttSource::~MqttSource() { Stop(); }

Status MqttSource::Start() {
  try {
    client_ = std::make_unique<mqtt::async_client>(options_.uri, options_.client_id,
                                                   static_cast<mqtt::iclient_persistence*>(nullptr));
  } catch (const mqtt::exception& e) {
    return Status::InvalidArgument("mqtt client for " + options_.uri + ": " + e.what());
  }
  client_->set_connection_lost_handler([this](const std::string& cause) {
    subscribed_ = false;
    log_.Log(LogLevel::kWarn, kLog, "lost", "connection lost (" + cause + "), reconnecting");
    std::lock_guard<std::mutex> lock(mu_);
    lost_ = true;
    cv_.notify_all();
  });
  client_->set_message_callback([this](mqtt::const_message_ptr msg) {
    try {
      if (msg->is_retained() && skip_retained_.load()) {
        // A replay caused by re-subscribing in a session that already delivered it.
        Drop("retained_replay", "topic " + msg->get_topic() +
                                    ": retained message sent again on re-subscribe");
        return;
      }
      OnMessage(msg->get_topic(), msg->to_string(), msg->get_qos());
    } catch (const std::exception& e) {
      log_.Log(LogLevel::kError, kLog, "callback", std::string("message handler: ") + e.what());
    }
  });
  // One listener for the source's lifetime: Paho keeps a reference until each SUBACK.
  sub_listener_ = std::make_unique<SubscribeListener>(&subscribed_, &log_);
  supervisor_ = std::thread([this] {
    SetCurrentThreadName("mqtt-supervise");
    Supervise();
  });
  return Status::Ok();
}

bool MqttSource::ConnectOnce() {
  auto opts = mqtt::connect_options_builder()
                  .clean_session(false)
                  .keep_alive_interval(std::chrono::seconds(20))
                  .connect_timeout(std::chrono::seconds(5))
                  .finalize();
  try {
    mqtt::token_ptr tok = client_->connect(opts);
    if (!tok->wait_for(std::chrono::seconds(10))) {
      return false;
    }
    const bool resumed = tok->get_connect_response().is_session_present();
    // Before subscribing: the replays that subscription causes must find the flag set.
    skip_retained_ = resumed;
    if (resumed) {
      sessions_resumed_.fetch_add(1);
    }
    LogInfo(kLog, "connected to " + options_.uri + " as " + options_.client_id + " (" +
                      (resumed ? "session resumed" : "new session") + ")");
    Subscribe();
    return true;
  } catch (const mqtt::exception& e) {
    log_.Log(LogLevel::kWarn, kLog, "connect",
             "cannot connect to " + options_.uri + ": " + e.what() + "; retrying");
    return false;
  }
}

void MqttSource::Supervise() {
  Backoff backoff(200, 5000);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lost_ = false;
    lock.unlock();
    const bool up = ConnectOnce();
    lock.lock();
    if (up) {
      backoff.Reset();
      cv_.wait(lock, [&] { return stop_ || lost_; });
    } else {
      cv_.wait_for(lock, std::chrono::milliseconds(backoff.NextDelayMs()), [&] { return stop_; });
    }
  }
}

void MqttSource::Subscribe() {
  try {
    auto topics = mqtt::string_collection::create(options_.topics);
    mqtt::iasync_client::qos_collection qos(options_.topics.size(), options_.qos);
    client_->subscribe(topics, qos, nullptr, *sub_listener_);
  } catch (const mqtt::exception& e) {
    log_.Log(LogLevel::kError, kLog, "subscribe", std::string("subscribe: ") + e.what());
  }
}

bool MqttSource::connected() const {
  try {
    return client_ != nullptr && client_->is_connected();
  } catch (const mqtt::exception&) {
    return false;
  }
}

void MqttSource::Drop(const std::string& reason, const std::string& detail) {
  metrics_
      .GetCounter("sluice_gateway_dropped_total", "Refused or dropped events/requests",
                  {{"source", "mqtt"}, {"reason", reason}})
      .Inc();
  log_.Log(LogLevel::kWarn, kLog, reason, "dropped message (" + reason + "): " + detail);
}

void MqttSource::OnMessage(const std::string& topic, std::string payload, int qos) {
  if (static_cast<int64_t>(payload.size()) > options_.max_payload_bytes) {
    Drop("too_large", "topic " + topic + ": payload of " + std::to_string(payload.size()) +
                          " bytes exceeds mqtt.max_payload_bytes (" +
                          std::to_string(options_.max_payload_bytes) + ")");
    return;
  }
  size_t last = topic.rfind('/');
  if (last == std::string::npos || last == 0) {
    Drop("invalid_topic", "topic " + topic + " lacks <device_id>/<sensor>");
    return;
  }
  size_t prev = topic.rfind('/', last - 1);
  size_t dev_start = prev == std::string::npos ? 0 : prev + 1;
  std::string device = topic.substr(dev_start, last - dev_start);
  std::string sensor = topic.substr(last + 1);
  if (!IsValidDeviceId(device)) {
    Drop("invalid_device_id", "topic " + topic);
    return;
  }
  if (sensor.empty() || sensor.size() > kMaxSensorBytes || !IsValidSensor(sensor)) {
    Drop("invalid_sensor", "topic " + topic);
    return;
  }
  PayloadFields fields;
  std::string field;
  std::string reason;
  if (!ExtractPayloadFields(payload, clock_.NowMs(), options_.limits, &fields, &field,
                            &reason)) {
    // The metric label comes from a fixed set: `field` may name any member of the payload.
    const std::string label = field == "ts" || field == "country" ? field : "payload";
    Drop("invalid_" + label, "topic " + topic + ": " + (field.empty() ? "payload" : field) + " " +
                                 reason);
    return;
  }
  const int64_t now = clock_.NowMs();
  PendingEvent pe;
  pe.event.country = fields.country ? *fields.country : options_.country;
  if (options_.country_source != nullptr) {
    const CountryDecision d =
        options_.country_source->Decide(DeviceId(device), fields.country);
    if (!d.error.empty()) {
      Drop(d.error, "topic " + topic + ": " + d.reason);
      return;
    }
    pe.event.country = d.country;
  }
  const RegionConfig* region = router_.Route(pe.event.country);
  if (region == nullptr) {
    if (static_cast<int64_t>(buffer_.residency_quarantined()) >= options_.quarantine_max_records) {
      Drop("residency_quarantine_full",
           "topic " + topic + ": country " + pe.event.country.value() +
               " is allowed in no region and the residency quarantine holds " +
               std::to_string(options_.quarantine_max_records) + " records");
      return;
    }
    pe.refused_reason = "no_region: country " + pe.event.country.value() +
                        " is allowed in no region by residency policy " +
                        router_.policy_version() + " (topic " + topic + ")";
    log_.Log(LogLevel::kWarn, kLog, "no_region",
             "quarantined message (no_region): topic " + topic + ": country " +
                 pe.event.country.value() + " is allowed in no region");
  } else {
    pe.region = region->name;
  }
  const bool refused = region == nullptr;
  pe.event.device_id = DeviceId(std::move(device));
  pe.event.sensor = std::move(sensor);
  pe.event.ts_ms = fields.ts_ms ? *fields.ts_ms : now;
  pe.event.ingest_ms = now;
  pe.event.gateway_id = options_.gateway_id;
  pe.event.source = "mqtt";
  pe.event.payload = std::move(payload);

  if (qos == 0) {
    // Bounded: a crash can lose at most qos0_max_pending accepted QoS 0 messages.
    if (qos0_pending_->fetch_add(1) >= options_.qos0_max_pending) {
      qos0_pending_->fetch_sub(1);
      Drop("qos0_backlog", "more than " + std::to_string(options_.qos0_max_pending) +
                               " QoS 0 messages waiting for the commit");
      return;
    }
    std::vector<PendingEvent> one;
    one.push_back(std::move(pe));
    auto pending = qos0_pending_;
    buffer_.Append(std::move(one), [this, pending, refused](const Status& st, uint64_t) {
      if (st.ok()) {
        (refused ? quarantined_ : received_).Inc();
      } else {
        Drop(AppendRefusalReason(st), st.ToString());
      }
      pending->fetch_sub(1);
    }, options_.overflow, AppendWait::kUnacknowledged);
    return;
  }
  // QoS >= 1: Paho acknowledges when this callback returns, so persist first.
  Backoff backoff(50, 2000);
  bool held = false;
  while (true) {
    std::vector<PendingEvent> one;
    one.push_back(pe);
    auto promise = std::make_shared<std::promise<Status>>();
    std::future<Status> done = promise->get_future();
    buffer_.Append(std::move(one), [promise](const Status& st, uint64_t) {
      promise->set_value(st);
    }, options_.overflow);
    Status st = done.get();
    if (st.ok()) {
      (refused ? quarantined_ : received_).Inc();
      return;
    }
    if (IsBufferFull(st)) {
      Drop("buffer_full", st.ToString());  // buffer.overflow.mqtt: reject
      return;
    }
    if (IsDiskFull(st) && !held) {
      // Not acknowledged until it is stored: Mosquitto keeps it (and what follows) meanwhile.
      held = true;
      held_.Inc();
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_ || st.code() == StatusCode::kUnavailable) {
      lock.unlock();
      Drop("buffer_unavailable", st.ToString());
      return;
    }
    log_.Log(LogLevel::kWarn, kLog, "append", "append failed, retrying: " + st.ToString());
    cv_.wait_for(lock, std::chrono::milliseconds(backoff.NextDelayMs()), [&] { return stop_; });
  }
}

void MqttSource::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) {
      return;
    }
    stop_ = true;
    cv_.notify_all();
  }
  if (supervisor_.joinable()) {
    supervisor_.join();
  }
  if (client_) {
    try {
      // Disconnect first: a message Paho delivers meanwhile is stored (the buffer still takes
      // appends) before its acknowledgement. Paho's disable_callbacks() installs a callback
      // that acknowledges and discards, so it comes only once nothing can arrive.
      if (client_->is_connected()) {
        client_->disconnect(std::chrono::milliseconds(2000))->wait_for(std::chrono::seconds(5));
      }
      client_->disable_callbacks();
    } catch (const mqtt::exception& e) {
      log_.Log(LogLevel::kWarn, kLog, "disconnect", std::string("disconnect: ") + e.what());
    }
  }
  subscribed_ = false;
}

}  // namespace sluice::gateway
