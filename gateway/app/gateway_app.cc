#include "gateway/app/gateway_app.h"

#include "gateway/forward/leader_uplink.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>

#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice::gateway {

GatewayApp::GatewayApp(GatewayConfig config, Clock& clock)
    : config_(std::move(config)), clock_(clock) {}

GatewayApp::~GatewayApp() { Stop(); }

Forwarder* GatewayApp::forwarder(const std::string& region) {
  auto it = forwarders_.find(region);
  return it == forwarders_.end() ? nullptr : it->second.get();
}

std::function<std::optional<RegionId>(const CountryCode&)> GatewayApp::FailoverTarget(
    const RegionId& region) {
  if (!router_.fails_over()) {
    return {};  // hold: records wait for their region
  }
  const RegionHealth* health = &health_;
  const RegionRouter* router = &router_;
  return [router, health, region](const CountryCode& country) {
    return router->NextAllowed(country, region,
                               [health](const RegionId& r) { return health->IsUp(r); });
  };
}

Status GatewayApp::Start() {
  Result<RegionRouter> router = RegionRouter::Create(config_.regions, config_.residency_policy);
  if (!router.ok()) {
    return router.status();
  }
  router_ = std::move(router.value());
  // Which residency policy this gateway routes by: a fleet running mixed versions shows it.
  metrics_
      .GetGauge("sluice_residency_policy_info",
                "1, labelled with the residency policy's version (sha256 of the policy file, or "
                "regions without one)",
                {{"version", router_.policy_version()}})
      .Set(1);

  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) {
    return Status::IOError("cannot create " + config_.data_dir + ": " + ec.message());
  }
  BufferOptions bo;
  bo.path = config_.data_dir + "/buffer";
  bo.sync = config_.buffer_sync;
  bo.sync_interval_ms = config_.buffer_sync_interval_ms;
  bo.max_bytes = config_.buffer_max_bytes;
  bo.overflow = config_.buffer_overflow_http;
  bo.write_buffer_bytes = static_cast<size_t>(config_.buffer_write_buffer_bytes);
  bo.unacknowledged_commit_delay_ms = config_.buffer_qos0_commit_delay_ms;
  bo.min_free_bytes = config_.buffer_min_free_bytes;
  bo.metrics = &metrics_;
  Result<std::unique_ptr<EventBuffer>> buf = EventBuffer::Open(bo);
  if (!buf.ok()) {
    return buf.status();
  }
  buffer_ = std::move(buf.value());
  started_ = true;

  live_buffer_ = std::make_shared<std::atomic<EventBuffer*>>(buffer_.get());
  auto live = live_buffer_;  // gauges read nothing once the buffer is closed
  metrics_.AddGaugeFn("sluice_gateway_buffer_disk_free_bytes",
                      "Free bytes on the buffer's filesystem (commits keep buffer.min_free_bytes)",
                      {}, [live] {
                        EventBuffer* b = live->load();
                        return b ? static_cast<double>(b->DiskFreeBytes()) : 0.0;
                      });
  for (const RegionConfig& rc : router_.regions()) {
    RegionId region = rc.name;
    MetricLabels l{{"region", region.value()}};
    metrics_.AddGaugeFn("sluice_gateway_buffered_records", "Records waiting in the buffer", l,
                        [live, region] {
                          EventBuffer* b = live->load();
                          return b ? static_cast<double>(b->buffered_records(region)) : 0.0;
                        });
    metrics_.AddGaugeFn("sluice_gateway_buffered_bytes", "Bytes of records waiting in the buffer",
                        l, [live, region] {
                          EventBuffer* b = live->load();
                          return b ? static_cast<double>(b->buffered_bytes(region)) : 0.0;
                        });
    std::unique_ptr<Uplink> uplink;
    if (uplink_factory_) {
      uplink = uplink_factory_(rc);
    } else if (!rc.urls.empty()) {  // a replicated region: to each partition's leader
      uplink = std::make_unique<LeaderUplink>(rc.urls, config_.forward_request_timeout_ms,
                                              config_.forward_tls);
    } else {
      uplink = std::make_unique<HttpUplink>(rc.url, config_.forward_request_timeout_ms,
                                            config_.forward_tls);
    }
    ForwarderOptions fo;
    fo.region = region;
    fo.gateway_id = config_.gateway_id;
    fo.topic = config_.forward_topic;
    fo.batch_max_records = static_cast<size_t>(config_.forward_batch_max_records);
    fo.batch_max_bytes = static_cast<size_t>(config_.forward_batch_max_bytes);
    fo.linger_ms = config_.forward_linger_ms;
    fo.max_in_flight = static_cast<size_t>(config_.forward_max_in_flight);
    fo.backoff_initial_ms = config_.forward_backoff_initial_ms;
    fo.backoff_max_ms = config_.forward_backoff_max_ms;
    fo.health = &health_;
    fo.failover_target = FailoverTarget(region);
    fo.failover_after_ms = config_.residency_failover_after_ms;
    auto fwd = std::make_unique<Forwarder>(*buffer_, *uplink, clock_, fo, &metrics_);
    fwd->Start();
    uplinks_.push_back(std::move(uplink));
    forwarders_[region.value()] = std::move(fwd);
  }

  {
    std::lock_guard<std::mutex> lock(maint_mu_);
    maint_stop_ = false;
  }
  maintenance_ = std::thread([this] {
    SetCurrentThreadName("gw-maintain");
    Maintain();
  });

  Result<std::unique_ptr<CountrySource>> countries = CountrySource::Create(
      config_.country_source, config_.country, config_.device_registry, clock_);
  if (!countries.ok()) {
    return countries.status();
  }
  country_source_ = std::move(countries).value();

  if (config_.http_enabled) {
    HttpIngestOptions ho;
    ho.country_source = country_source_.get();
    ho.gateway_id = config_.gateway_id;
    ho.country = config_.country;
    ho.max_events_per_request = static_cast<size_t>(config_.http_max_events_per_request);
    ho.limits = config_.ingest;
    ho.overflow = config_.buffer_overflow_http;
    http_ingest_ = std::make_unique<HttpIngest>(*buffer_, router_, clock_, ho, metrics_);
    HttpServerOptions so = config_.http_limits;
    so.threads = config_.http_threads;
    so.host = config_.http_host;
    so.port = config_.http_port;
    so.max_body_bytes = config_.http_max_body_bytes;
    so.tls = config_.http_tls;
    HttpIngest* ingest = http_ingest_.get();
    Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(
        so, [ingest](HttpRequest&& req, HttpResponder respond) {
          ingest->Handle(std::move(req), std::move(respond));
        });
    if (!server.ok()) {
      return server.status();
    }
    server_ = std::move(server.value());
    LogInfo("gateway", "HTTP listening on " + config_.http_host + ":" +
                           std::to_string(server_->port()));
  }
  if (config_.mqtt_enabled) {
    MqttSourceOptions mo;
    mo.uri = config_.mqtt_uri;
    mo.client_id = config_.mqtt_client_id;
    mo.topics = config_.mqtt_topics;
    mo.qos = config_.mqtt_qos;
    mo.gateway_id = config_.gateway_id;
    mo.country = config_.country;
    mo.overflow = config_.buffer_overflow_mqtt;
    mo.qos0_max_pending = config_.buffer_qos0_max_pending;
    mo.max_payload_bytes = config_.mqtt_max_payload_bytes;
    mo.limits = config_.ingest;
    mo.country_source = country_source_.get();
    mo.quarantine_max_records = config_.residency_quarantine_max_records;
    mqtt_ = std::make_unique<MqttSource>(*buffer_, router_, clock_, mo, metrics_);
    SLUICE_RETURN_IF_ERROR(mqtt_->Start());
  }
  LogInfo("gateway", "gateway " + config_.gateway_id.value() + " started, " +
                         std::to_string(buffer_->total_buffered_records()) + " records buffered");
  return Status::Ok();
}

void GatewayApp::Stop() {
  if (!started_) {
    return;
  }
  started_ = false;
  if (mqtt_) {
    mqtt_->Stop();
  }
  if (server_) {
    server_->Stop();
  }
  buffer_->StopAppends();  // commits what is queued; answers the last HTTP requests
  {
    std::lock_guard<std::mutex> lock(maint_mu_);
    maint_stop_ = true;
    maint_cv_.notify_all();
  }
  if (maintenance_.joinable()) {
    maintenance_.join();
  }
  for (auto& [name, fwd] : forwarders_) {
    fwd->RequestStop();  // all at once: each may wait for its answers in flight
  }
  for (auto& [name, fwd] : forwarders_) {
    fwd->Stop();
  }
  mqtt_.reset();
  server_.reset();
  http_ingest_.reset();
  forwarders_.clear();
  uplinks_.clear();
  live_buffer_->store(nullptr);
  buffer_.reset();
  LogInfo("gateway", "gateway " + config_.gateway_id.value() + " stopped");
}

void GatewayApp::Maintain() {
  const int64_t ttl = config_.buffer_ttl_ms;
  const int64_t period_ms = ttl > 0 ? std::clamp<int64_t>(ttl / 4, 10, 10000) : 10000;
  std::unique_lock<std::mutex> lock(maint_mu_);
  while (!maint_stop_) {
    maint_cv_.wait_for(lock, std::chrono::milliseconds(period_ms), [&] { return maint_stop_; });
    if (maint_stop_) {
      break;
    }
    lock.unlock();
    if (ttl > 0) {
      buffer_->ExpireOlderThan(clock_.NowMs() - ttl);
    }
    buffer_->CompactRemoved();
    lock.lock();
  }
}

}  // namespace sluice::gateway
