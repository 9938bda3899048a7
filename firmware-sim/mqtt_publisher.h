// MqttPublisher: one Paho async client per site, publishing events at QoS 0 to
// "<mqtt_topic_prefix>/<device_id>/<sensor>", with flow control: at most `mqtt_max_inflight`
// publishes may be unfinished before the publisher waits on the oldest delivery token (Paho
// throws error -12 once its send buffer is full, even while connected; STYLE.md). A publish
// that throws or whose token fails marks its event failed in the Ledger; a completed token
// marks it delivered. No Paho exception leaves this class.
// Thread-safety: not thread-safe; one thread (the simulator's MQTT worker) drives it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/logging.h"
#include "core/status.h"
#include "firmware-sim/fleet.h"
#include "firmware-sim/ledger.h"
#include "firmware-sim/sim_config.h"

namespace mqtt {
class async_client;
class delivery_token;
}  // namespace mqtt

namespace sluice::sim {

class MqttPublisher {
 public:
  // Connects to the site's broker; kUnavailable naming the URI if it cannot within the
  // configured timeout.
  static Result<std::unique_ptr<MqttPublisher>> Connect(const SimConfig& config, int site,
                                                        const std::vector<Device>& fleet,
                                                        Ledger* ledger);
  ~MqttPublisher();
  MqttPublisher(const MqttPublisher&) = delete;
  MqttPublisher& operator=(const MqttPublisher&) = delete;

  void Publish(const Event& event);
  // Waits (up to `timeout_ms`) for every publish to finish, then disconnects. Publishes still
  // unfinished at the deadline count as failed.
  void Drain(int64_t timeout_ms);

  uint64_t errors() const { return errors_; }

 private:
  struct InFlight {
    std::shared_ptr<mqtt::delivery_token> token;
    int device;
    uint64_t seq;
  };
  MqttPublisher(const SimConfig& config, int site, const std::vector<Device>& fleet,
                Ledger* ledger, std::unique_ptr<mqtt::async_client> client);
  // Waits for the oldest in-flight publish (up to timeout_ms) and resolves it.
  void WaitOldest(int64_t timeout_ms);
  // Resolves finished publishes at the front without waiting.
  void ReapCompleted();
  void Fail(int device, uint64_t seq, const std::string& why);

  const SimConfig& config_;
  const SiteConfig& site_;
  const std::vector<Device>& fleet_;
  Ledger* ledger_;
  std::unique_ptr<mqtt::async_client> client_;
  std::deque<InFlight> inflight_;
  uint64_t errors_ = 0;
  RateLimitedLog log_;
};

}  // namespace sluice::sim
