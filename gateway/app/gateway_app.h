// GatewayApp: wires the gateway together so main() and in-process tests run the same thing.
//   Start(): open the buffer (<data_dir>/buffer), one Forwarder thread per region, the HTTP
//   endpoints, the MQTT source.
//   Stop(): stop ingest (MQTT, then HTTP), let the commit thread finish what is queued, stop the
//   forwarders, close the DB. Idempotent; the destructor calls it.
// Threads: the buffer's commit thread, one forwarder thread per region, cpprestsdk's pool,
// Paho's callback thread, the MQTT supervisor, and a maintenance thread (TTL sweep every
// min(ttl/4, 10s) when buffer.ttl is set; CompactRange over delivered ranges).
// Thread-safety: Start()/Stop() from one thread; accessors are thread-safe after Start().
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/http.h"
#include "core/metrics.h"
#include "core/status.h"
#include "gateway/app/gateway_config.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/forward/forwarder.h"
#include "gateway/forward/uplink.h"
#include "gateway/ingest/http_ingest.h"
#include "gateway/ingest/mqtt_source.h"
#include "gateway/routing/region_router.h"

namespace sluice::gateway {

class GatewayApp {
 public:
  // Makes the uplink of one region; the default is HttpUplink(url, forward.request_timeout).
  using UplinkFactory = std::function<std::unique_ptr<Uplink>(const RegionConfig&)>;

  explicit GatewayApp(GatewayConfig config, Clock& clock = SystemClock::Instance());
  ~GatewayApp();
  GatewayApp(const GatewayApp&) = delete;
  GatewayApp& operator=(const GatewayApp&) = delete;

  void SetUplinkFactory(UplinkFactory factory) { uplink_factory_ = std::move(factory); }

  Status Start();
  void Stop();

  const GatewayConfig& config() const { return config_; }
  EventBuffer* buffer() { return buffer_.get(); }
  MetricsRegistry& metrics() { return metrics_; }
  MqttSource* mqtt() { return mqtt_.get(); }
  Forwarder* forwarder(const std::string& region);
  int http_port() const { return server_ ? server_->port() : 0; }

 private:
  void Maintain();

  GatewayConfig config_;
  Clock& clock_;
  UplinkFactory uplink_factory_;
  MetricsRegistry metrics_;
  // Residency failover (policy failover: next_allowed): where `region`'s forwarder may move
  // records while it is down; empty under hold.
  std::function<std::optional<RegionId>(const CountryCode&)> FailoverTarget(
      const RegionId& region);

  RegionRouter router_;
  RegionHealth health_;  // before the forwarders that report to it
  std::unique_ptr<CountrySource> country_source_;  // outlives the ingest paths that ask it
  std::unique_ptr<EventBuffer> buffer_;
  std::shared_ptr<std::atomic<EventBuffer*>> live_buffer_;
  std::vector<std::unique_ptr<Uplink>> uplinks_;
  std::map<std::string, std::unique_ptr<Forwarder>> forwarders_;
  std::unique_ptr<HttpIngest> http_ingest_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<MqttSource> mqtt_;
  bool started_ = false;
  std::mutex maint_mu_;
  std::condition_variable maint_cv_;
  bool maint_stop_ = false;
  std::thread maintenance_;
};

}  // namespace sluice::gateway
