// MqttSource: subscribes to device topics on an MQTT broker (Paho MQTT C++ async client) and
// appends each message to the EventBuffer.
//
// Topic `<anything>/<device_id>/<sensor>`: the last two levels name the device and sensor. The
// payload is kept as bytes; when it is a JSON object its ts and country are used as for HTTP.
// QoS 1/2: Paho acknowledges a message when the arrival callback returns, so the callback blocks
// until the group commit has made the event durable (a failed append is retried with backoff
// until it succeeds or the source stops; a full buffer under `reject` drops it, counted). Paho C
// has no manual acknowledgement, so QoS 1 runs one message per commit (one fsync each, about
// 5 k/s here) unless other sources share that commit. QoS 0: the event is queued into the group
// commit without waiting; at most qos0_max_pending of them are accepted and not yet committed
// (the most a crash can lose); past that, messages are dropped (reason "qos0_backlog") rather
// than blocking Paho. Every drop is counted in sluice_gateway_dropped_total{source="mqtt",
// reason} and logged (rate-limited).
// Connection: a persistent session (clean_session=false) under a stable client id
// (mqtt.client_id, default the gateway id), so Mosquitto queues QoS 1/2 messages published while
// the gateway is down or restarting and delivers them, and what it sent unacknowledged, on the
// next connection (up to its max_queued_messages: config/README.md). The supervisor thread
// connects, reconnects after a lost connection (backoff 200 ms..5 s) and subscribes after every
// connection, so a changed mqtt.topics takes effect.
// Retained messages: a subscription made while the broker still holds our session replaces an
// identical one and makes the broker send each matching retained message again (MQTT 3.1.1
// 3.8.4), flagged retain=1; a message on an established subscription always comes with retain=0
// (3.3.1.3). So when the broker reports the session present, every retain=1 delivery is a
// replay of what the session already delivered (dup=1 ones too: a replay cut short by a crash is
// sent again flagged dup): skipped, counted (reason "retained_replay"). A retained message is
// ingested once per subscription the broker creates (first start, or after Mosquitto lost the
// session), not once per restart. The price: a retained message first delivered to a new session
// and lost to a gateway crash before it was stored is not ingested from the redelivery (it
// stays the topic's retained value in Mosquitto).
// At-least-once: a crash (SIGKILL) after a QoS 1 message was stored and before Paho's PUBACK
// left makes Mosquitto deliver it again, stored a second time (at most Mosquitto's
// max_inflight_messages per crash); a clean stop acknowledges everything it stored.
// Stop disconnects before the callbacks are detached: Paho acknowledges whatever reaches a
// detached callback, so a message arriving during the disconnect is stored like any other.
// No mqtt::exception leaves this class.
// Threads: Paho's callback thread (message arrival, connected handler) and the supervisor.
// Thread-safety: Start()/Stop() from one thread; the accessors are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/ingest/event_parser.h"
#include "gateway/routing/country_source.h"
#include "gateway/routing/region_router.h"

namespace mqtt {
class async_client;
class iaction_listener;
}  // namespace mqtt

namespace sluice::gateway {

struct MqttSourceOptions {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string client_id;
  std::vector<std::string> topics{"sensors/+/+"};
  int qos = 1;
  GatewayId gateway_id;
  CountryCode country;  // default for messages that name none
  OverflowPolicy overflow = OverflowPolicy::kDropOldest;  // buffer.overflow.mqtt
  int64_t qos0_max_pending = 10000;                       // buffer.qos0_max_pending
  int64_t max_payload_bytes = 256 * 1024;                 // mqtt.max_payload_bytes
  IngestLimits limits;                                    // ingest.*, for JSON payloads
  CountrySource* country_source = nullptr;  // residency.country_source; nullptr: event
  // An event of a country the policy allows in no region cannot be refused to an MQTT device
  // (it was acknowledged by Mosquitto): it is kept in the buffer's residency quarantine, never
  // forwarded; beyond this many quarantined records it is dropped (residency.quarantine_max_records).
  int64_t quarantine_max_records = 100000;
};

class MqttSource {
 public:
  MqttSource(EventBuffer& buffer, const RegionRouter& router, Clock& clock,
             MqttSourceOptions options, MetricsRegistry& metrics);
  ~MqttSource();  // Stop()

  // Creates the client and starts connecting in the background. kInvalidArgument on a malformed
  // URI; an unreachable broker is not an error (the supervisor keeps trying).
  Status Start();
  // Disconnects; a blocked QoS 1 callback gives up. Idempotent.
  void Stop();

  bool connected() const;
  bool subscribed() const { return subscribed_.load(); }
  // QoS 0 messages accepted and not yet committed (never above qos0_max_pending).
  int64_t qos0_pending() const { return qos0_pending_->load(); }

  // Handles one message (topic, payload, qos); public for tests. Blocks for qos >= 1.
  void OnMessage(const std::string& topic, std::string payload, int qos);
  // Connections the broker answered with its session for us still present (for tests).
  int64_t sessions_resumed() const { return sessions_resumed_.load(); }

 private:
  void Supervise();
  // Connects once; true when connected (then subscribed, or subscribing).
  bool ConnectOnce();
  void Subscribe();
  void Drop(const std::string& reason, const std::string& detail);

  EventBuffer& buffer_;
  const RegionRouter& router_;
  Clock& clock_;
  MqttSourceOptions options_;
  MetricsRegistry& metrics_;
  Counter& received_;
  Counter& quarantined_;  // kept in the residency quarantine (a country allowed nowhere)
  Counter& held_;  // QoS 1 messages held back (not acknowledged) while the disk is full
  RateLimitedLog log_;
  std::unique_ptr<mqtt::iaction_listener> sub_listener_;
  std::unique_ptr<mqtt::async_client> client_;
  std::atomic<bool> subscribed_{false};
  // The broker had our session at the last connect: retain=1 deliveries are replays.
  std::atomic<bool> skip_retained_{false};
  std::atomic<int64_t> sessions_resumed_{0};
  // Shared with in-flight callbacks, which may run after Stop() on the commit thread.
  std::shared_ptr<std::atomic<int64_t>> qos0_pending_ =
      std::make_shared<std::atomic<int64_t>>(0);

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool lost_ = false;  // the connection dropped: the supervisor reconnects
  std::thread supervisor_;
};

}  // namespace sluice::gateway
