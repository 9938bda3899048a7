#include "gateway/app/gateway_config.h"

#include <fstream>
#include <map>
#include <sstream>

#include "core/http_config.h"
#include "core/json_check.h"
#include "core/record_batch.h"
#include "gateway/ingest/event_parser.h"

namespace sluice::gateway {
namespace {

bool IsName(const std::string& s) {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

int64_t Positive(const Config& cfg, const std::string& key, int64_t v) {
  if (v <= 0) {
    cfg.Fail(key, "must be > 0");
  }
  return v;
}

OverflowPolicy Overflow(const Config& cfg, const std::string& key, const std::string& def) {
  std::string v = cfg.GetString(key, def);
  if (v == "reject") {
    return OverflowPolicy::kReject;
  }
  if (v != "drop_oldest") {
    cfg.Fail(key, "must be 'reject' or 'drop_oldest', not '" + v + "'");
  }
  return OverflowPolicy::kDropOldest;
}

}  // namespace

GatewayConfig GatewayConfig::FromConfig(const Config& cfg) {
  GatewayConfig g;
  std::string id = cfg.RequireString("gateway.id");
  if (!IsValidDeviceId(id)) {
    cfg.Fail("gateway.id", "must be 1..128 bytes of [A-Za-z0-9._:-]");
  }
  g.gateway_id = GatewayId(id);
  std::string country = cfg.RequireString("gateway.country");
  if (!IsCountryCodeShape(country)) {
    cfg.Fail("gateway.country", "must be 2 upper-case letters (ISO 3166-1 alpha-2)");
  }
  g.country = CountryCode(country);
  g.data_dir = cfg.RequireString("gateway.data_dir");
  if (g.data_dir.empty()) {
    cfg.Fail("gateway.data_dir", "must not be empty");
  }

  g.mqtt_enabled = cfg.GetBool("mqtt.enabled", true);
  g.mqtt_uri = cfg.GetString("mqtt.uri", g.mqtt_uri);
  if (g.mqtt_uri.rfind("tcp://", 0) != 0 && g.mqtt_uri.rfind("mqtt://", 0) != 0 &&
      g.mqtt_uri.rfind("ssl://", 0) != 0 && g.mqtt_uri.rfind("ws://", 0) != 0) {
    cfg.Fail("mqtt.uri", "must start with tcp://, mqtt://, ssl:// or ws://");
  }
  g.mqtt_client_id = cfg.GetString("mqtt.client_id", id);
  if (g.mqtt_client_id.empty()) {
    cfg.Fail("mqtt.client_id", "must not be empty");
  }
  g.mqtt_topics = cfg.GetStringList("mqtt.topics", g.mqtt_topics);
  if (g.mqtt_topics.empty()) {
    cfg.Fail("mqtt.topics", "must name at least one topic filter");
  }
  for (const std::string& t : g.mqtt_topics) {
    if (t.empty()) {
      cfg.Fail("mqtt.topics", "a topic filter is empty");
    }
  }
  int64_t qos = cfg.GetInt("mqtt.qos", 1);
  if (qos < 0 || qos > 2) {
    cfg.Fail("mqtt.qos", "must be 0, 1 or 2");
  }
  g.mqtt_qos = static_cast<int>(qos);
  g.mqtt_max_payload_bytes = cfg.GetBytes("mqtt.max_payload_bytes", g.mqtt_max_payload_bytes);
  if (g.mqtt_max_payload_bytes < 1 || g.mqtt_max_payload_bytes > 16 * 1024 * 1024) {
    cfg.Fail("mqtt.max_payload_bytes", "must be between 1 and 16MiB");
  }

  g.http_enabled = cfg.GetBool("http.enabled", true);
  g.http_host = cfg.GetString("http.host", g.http_host);
  int64_t port = cfg.GetInt("http.port", g.http_port);
  if (port < 1 || port > 65535) {
    cfg.Fail("http.port", "must be in 1..65535");
  }
  g.http_port = static_cast<int>(port);
  g.http_tls = TlsServerFromConfig(cfg, "http.tls");
  LoadHttpLimits(cfg, "http", &g.http_limits);
  if (g.http_enabled) {
    RequireTlsOffLoopback(cfg, "http.host", g.http_host, g.http_tls.enabled(),
                          "http.insecure_plaintext");
  } else {
    cfg.GetBool("http.insecure_plaintext", false);  // accepted, unused
  }
  g.http_max_body_bytes =
      Positive(cfg, "http.max_body_bytes", cfg.GetBytes("http.max_body_bytes", 4 << 20));
  g.http_max_events_per_request = Positive(
      cfg, "http.max_events_per_request", cfg.GetInt("http.max_events_per_request", 10000));
  g.ingest.max_json_depth = static_cast<int>(
      cfg.GetInt("ingest.max_json_depth", g.ingest.max_json_depth));
  if (g.ingest.max_json_depth < 1 || g.ingest.max_json_depth > kMaxJsonDepthLimit) {
    cfg.Fail("ingest.max_json_depth",
             "must be 1.." + std::to_string(kMaxJsonDepthLimit) + " (brokers render payloads "
             "up to that depth as JSON)");
  }
  g.ingest.max_future_ms = cfg.GetDurationMsOrOff("ingest.max_future", g.ingest.max_future_ms);
  int64_t threads = cfg.GetInt("http.threads", 4);
  if (threads < 1 || threads > 256) {
    cfg.Fail("http.threads", "must be in 1..256");
  }
  g.http_threads = static_cast<int>(threads);

  std::string sync = cfg.GetString("buffer.sync", "always");
  if (sync == "always") {
    g.buffer_sync = SyncMode::kAlways;
  } else if (sync == "interval") {
    g.buffer_sync = SyncMode::kInterval;
  } else {
    cfg.Fail("buffer.sync", "must be 'always' or 'interval', not '" + sync + "'");
  }
  g.buffer_sync_interval_ms =
      Positive(cfg, "buffer.sync_interval", cfg.GetDurationMs("buffer.sync_interval", 1000));
  g.buffer_max_bytes =
      Positive(cfg, "buffer.max_bytes", cfg.GetBytes("buffer.max_bytes", g.buffer_max_bytes));
  g.buffer_ttl_ms = cfg.GetDurationMs("buffer.ttl", 0);
  if (g.buffer_ttl_ms < 0) {
    cfg.Fail("buffer.ttl", "must be >= 0 (0: records never expire)");
  }
  g.buffer_overflow_http = Overflow(cfg, "buffer.overflow.http", "reject");
  g.buffer_overflow_mqtt = Overflow(cfg, "buffer.overflow.mqtt", "drop_oldest");
  g.buffer_qos0_max_pending = Positive(cfg, "buffer.qos0_max_pending",
                                       cfg.GetInt("buffer.qos0_max_pending", 10000));
  g.buffer_qos0_commit_delay_ms =
      cfg.GetDurationMs("buffer.qos0_commit_delay", g.buffer_qos0_commit_delay_ms);
  if (g.buffer_qos0_commit_delay_ms < 0 || g.buffer_qos0_commit_delay_ms > 1000) {
    cfg.Fail("buffer.qos0_commit_delay", "must be in 0ms..1s");
  }
  g.buffer_write_buffer_bytes =
      cfg.GetBytes("buffer.write_buffer_bytes", g.buffer_write_buffer_bytes);
  if (g.buffer_write_buffer_bytes < (int64_t{64} << 10) ||
      g.buffer_write_buffer_bytes > (int64_t{1} << 30)) {
    // LevelDB would clamp silently; say so at start-up instead.
    cfg.Fail("buffer.write_buffer_bytes", "must be in 64KiB..1GiB");
  }
  g.buffer_min_free_bytes = cfg.GetBytes("buffer.min_free_bytes", g.buffer_min_free_bytes);

  g.forward_topic = cfg.GetString("forward.topic", "sensors");
  if (!IsName(g.forward_topic)) {
    cfg.Fail("forward.topic", "must be 1..64 characters of [A-Za-z0-9._-]");
  }
  g.forward_batch_max_records = Positive(cfg, "forward.batch_max_records",
                                         cfg.GetInt("forward.batch_max_records", 1000));
  if (g.forward_batch_max_records > static_cast<int64_t>(kMaxRecordsPerBatch)) {
    // A broker refuses larger batches for good (400): they would be dead-lettered.
    cfg.Fail("forward.batch_max_records",
             "must be at most " + std::to_string(kMaxRecordsPerBatch) + " (the broker's bound)");
  }
  g.forward_batch_max_bytes = Positive(cfg, "forward.batch_max_bytes",
                                       cfg.GetBytes("forward.batch_max_bytes", 1 << 20));
  g.forward_linger_ms = cfg.GetDurationMs("forward.linger", 20);
  if (g.forward_linger_ms < 0) {
    cfg.Fail("forward.linger", "must be >= 0");
  }
  g.forward_max_in_flight = cfg.GetInt("forward.max_in_flight", 4);
  if (g.forward_max_in_flight < 1 || g.forward_max_in_flight > 16) {
    cfg.Fail("forward.max_in_flight", "must be 1..16 batches");
  }
  g.forward_request_timeout_ms = Positive(cfg, "forward.request_timeout",
                                          cfg.GetDurationMs("forward.request_timeout", 10000));
  g.forward_tls = TlsClientFromConfig(cfg, "forward.tls");
  g.forward_backoff_initial_ms = Positive(cfg, "forward.backoff_initial",
                                          cfg.GetDurationMs("forward.backoff_initial", 100));
  g.forward_backoff_max_ms =
      Positive(cfg, "forward.backoff_max", cfg.GetDurationMs("forward.backoff_max", 30000));
  if (g.forward_backoff_max_ms < g.forward_backoff_initial_ms) {
    cfg.Fail("forward.backoff_max", "must be >= forward.backoff_initial");
  }

  g.residency_failover_after_ms = Positive(
      cfg, "residency.failover_after", cfg.GetDurationMs("residency.failover_after", 30000));
  g.residency_quarantine_max_records =
      cfg.GetInt("residency.quarantine_max_records", g.residency_quarantine_max_records);
  if (g.residency_quarantine_max_records < 0) {
    cfg.Fail("residency.quarantine_max_records", "must be >= 0 (0: drop them, counted)");
  }
  const std::string source = cfg.GetString("residency.country_source", "event");
  if (!ParseCountrySource(source, &g.country_source)) {
    cfg.Fail("residency.country_source", "must be event, site or registry, got " + source);
  }
  const std::string registry = cfg.GetString("residency.device_registry", "");
  if (g.country_source == CountrySourceKind::kRegistry && registry.empty()) {
    cfg.Fail("residency.country_source",
             "registry needs residency.device_registry (a file of device ids and prefixes)");
  }
  if (!registry.empty()) {
    if (g.country_source != CountrySourceKind::kRegistry) {
      cfg.Fail("residency.device_registry", "only read with residency.country_source: registry");
    }
    g.device_registry = cfg.PathAt("residency.device_registry", registry);
    Result<DeviceRegistryMap> parsed = [&]() -> Result<DeviceRegistryMap> {
      std::ifstream in(g.device_registry, std::ios::binary);
      if (!in) return Status::NotFound("cannot read " + g.device_registry);
      std::stringstream ss;
      ss << in.rdbuf();
      return ParseDeviceRegistry(ss.str(), g.device_registry);
    }();
    if (!parsed.ok()) {
      cfg.Fail("residency.device_registry", parsed.status().message());
    }
  }
  g.residency_policy = LoadResidencyPolicy(cfg, "residency.policy_file");
  if (g.residency_policy != nullptr) {
    const ResidencyPolicyFile& policy = *g.residency_policy;
    if (cfg.Has("regions")) {
      cfg.Fail("regions", "remove it: the residency policy " + policy.origin() +
                              " lists the regions and which countries each stores");
    }
    for (const PolicyRegion& pr : policy.regions()) {
      if (pr.brokers.empty()) {
        cfg.Fail("residency.policy_file", "region " + pr.name.value() + " of " +
                                              policy.origin() +
                                              " has no brokers: a gateway needs their URLs");
      }
      RegionConfig rc;
      rc.name = pr.name;
      rc.url = pr.brokers.front();
      if (pr.brokers.size() > 1) {
        rc.urls = pr.brokers;
      }
      for (const std::string& url : pr.brokers) {
        RequireTlsOffLoopback(cfg, "residency.policy_file", UrlHost(url),
                              url.rfind("https://", 0) == 0, "forward.insecure_plaintext");
      }
      rc.countries = policy.ListedCountriesOf(pr.name);
      g.regions.push_back(std::move(rc));
    }
    if (policy.Allowed(g.country).empty()) {
      cfg.Fail("gateway.country", "the residency policy " + policy.origin() +
                                      " allows country " + g.country.value() + " in no region");
    }
  }
  std::vector<Config> regions =
      g.residency_policy != nullptr ? std::vector<Config>{} : cfg.GetList("regions");
  if (regions.empty() && g.residency_policy == nullptr) {
    cfg.Fail("regions", "must list at least one region (or set residency.policy_file)");
  }
  std::map<std::string, std::string> owner;  // country -> region
  for (size_t i = 0; i < regions.size(); ++i) {
    const Config& r = regions[i];
    const std::string at = "regions." + std::to_string(i);
    RegionConfig rc;
    std::string name = r.RequireString("name");
    if (!IsName(name)) {
      cfg.Fail(at + ".name", "must be 1..64 characters of [A-Za-z0-9._-]");
    }
    for (const RegionConfig& prev : g.regions) {
      if (prev.name.value() == name) {
        cfg.Fail(at + ".name", "region " + name + " is listed twice");
      }
    }
    rc.name = RegionId(name);
    if (r.Has("urls")) {
      if (r.Has("url")) {
        cfg.Fail(at + ".urls", "give either url (one broker) or urls (a replicated region)");
      }
      rc.urls = r.GetStringList("urls", {});
      if (rc.urls.empty() || rc.urls.size() > 64) {
        cfg.Fail(at + ".urls", "must list 1..64 broker URLs of the region");
      }
      rc.url = rc.urls.front();
    } else {
      rc.url = r.RequireString("url");
    }
    for (const std::string& url : rc.urls.empty() ? std::vector<std::string>{rc.url} : rc.urls) {
      const std::string key = at + (rc.urls.empty() ? ".url" : ".urls");
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        cfg.Fail(key, "must start with http:// or https://");
      }
      RequireTlsOffLoopback(cfg, key, UrlHost(url), url.rfind("https://", 0) == 0,
                            "forward.insecure_plaintext");
    }
    std::vector<std::string> countries = r.GetStringList("countries", {});
    if (countries.empty()) {
      cfg.Fail(at + ".countries", "must list at least one country");
    }
    for (const std::string& c : countries) {
      if (!IsCountryCodeShape(c)) {
        cfg.Fail(at + ".countries", "'" + c + "' is not 2 upper-case letters");
      }
      auto [it, inserted] = owner.emplace(c, name);
      if (!inserted) {
        cfg.Fail(at + ".countries",
                 "country " + c + " is already listed in region " + it->second);
      }
      rc.countries.push_back(CountryCode(c));
    }
    g.regions.push_back(std::move(rc));
  }
  if (g.residency_policy == nullptr && owner.count(g.country.value()) == 0) {
    cfg.Fail("gateway.country", "country " + g.country.value() + " is listed in no region");
  }

  std::string level = cfg.GetString("log_level", "info");
  if (!ParseLogLevel(level, &g.log_level)) {
    cfg.Fail("log_level", "must be debug, info, warn or error");
  }
  cfg.RejectUnknownKeys();
  return g;
}

}  // namespace sluice::gateway
