#include "firmware-sim/sim_config.h"

#include <set>

#include "core/strong_types.h"

namespace sluice::sim {

const char* TransportName(Transport t) {
  switch (t) {
    case Transport::kMqtt:
      return "mqtt";
    case Transport::kHttp:
      return "http";
    case Transport::kMixed:
      return "mixed";
  }
  return "?";
}

namespace {

Transport ParseTransport(const Config& site, const std::string& key) {
  std::string t = site.GetString(key, "mixed");
  if (t == "mqtt") return Transport::kMqtt;
  if (t == "http") return Transport::kHttp;
  if (t == "mixed") return Transport::kMixed;
  site.Fail(key, "must be mqtt, http or mixed, got '" + t + "'");
}

SiteConfig LoadSite(const Config& site) {
  SiteConfig s;
  s.name = site.RequireString("name");
  if (s.name.empty()) site.Fail("name", "must not be empty");
  for (char c : s.name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) site.Fail("name", "may hold only [A-Za-z0-9._-] (it is part of device ids)");
  }
  s.countries = site.GetStringList("countries", {});
  if (s.countries.empty()) site.Fail("countries", "must list at least one country");
  for (const auto& c : s.countries) {
    if (!IsCountryCodeShape(c)) {
      site.Fail("countries", "'" + c + "' is not an ISO 3166-1 alpha-2 code (two upper-case letters)");
    }
  }
  s.transport = ParseTransport(site, "transport");
  s.mqtt_uri = site.GetString("mqtt_uri", "");
  s.mqtt_topic_prefix = site.GetString("mqtt_topic_prefix", "sensors");
  s.http_url = site.GetString("http_url", "");
  while (!s.http_url.empty() && s.http_url.back() == '/') s.http_url.pop_back();
  s.http_tls = TlsClientFromConfig(site, "http_tls");
  while (!s.mqtt_topic_prefix.empty() && s.mqtt_topic_prefix.back() == '/') {
    s.mqtt_topic_prefix.pop_back();
  }
  if (s.transport != Transport::kHttp && s.mqtt_uri.empty()) {
    site.Fail("mqtt_uri", "required when transport is mqtt or mixed");
  }
  if (s.transport != Transport::kMqtt && s.http_url.empty()) {
    site.Fail("http_url", "required when transport is http or mixed");
  }
  return s;
}

}  // namespace

SimConfig LoadSimConfig(const Config& config) {
  SimConfig c;
  const Config sim = config.Sub("sim");
  int64_t seed = sim.GetInt("seed", 42);
  if (seed < 0) sim.Fail("seed", "must be >= 0");
  c.seed = static_cast<uint64_t>(seed);
  c.devices = sim.GetInt("devices", c.devices);
  if (c.devices < 1) sim.Fail("devices", "must be >= 1");
  c.duration_ms = sim.GetDurationMs("duration", c.duration_ms);
  if (c.duration_ms <= 0) sim.Fail("duration", "must be > 0");
  c.rate_per_device = sim.GetDouble("rate_per_device", c.rate_per_device);
  if (!(c.rate_per_device > 0) || c.rate_per_device > 100000) {
    sim.Fail("rate_per_device", "must be in (0, 100000] events per second");
  }
  c.sensors = sim.GetStringList("sensors", c.sensors);
  if (c.sensors.empty()) sim.Fail("sensors", "must list at least one sensor");
  for (const auto& s : c.sensors) {
    bool ok = !s.empty() && s.size() <= 64;
    for (char ch : s) {
      ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-');
    }
    if (!ok) sim.Fail("sensors", "'" + s + "' is not a sensor name (1..64 of [A-Za-z0-9._-])");
  }
  c.payload_bytes = sim.GetBytes("payload_bytes", c.payload_bytes);
  if (c.payload_bytes < 0 || c.payload_bytes > 1024 * 1024) {
    sim.Fail("payload_bytes", "must be in [0, 1MiB]");
  }
  c.manifest = sim.GetString("manifest", "");
  c.http_workers = static_cast<int>(sim.GetInt("http_workers", c.http_workers));
  if (c.http_workers < 1 || c.http_workers > 64) sim.Fail("http_workers", "must be in [1, 64]");
  c.http_max_attempts = static_cast<int>(sim.GetInt("http_max_attempts", c.http_max_attempts));
  if (c.http_max_attempts < 1) sim.Fail("http_max_attempts", "must be >= 1");
  c.http_backoff_initial_ms = sim.GetDurationMs("http_backoff_initial", c.http_backoff_initial_ms);
  c.http_backoff_max_ms = sim.GetDurationMs("http_backoff_max", c.http_backoff_max_ms);
  if (c.http_backoff_initial_ms < 1 || c.http_backoff_max_ms < c.http_backoff_initial_ms) {
    sim.Fail("http_backoff_max", "backoff must satisfy 1ms <= initial <= max");
  }
  c.http_timeout_ms = sim.GetDurationMs("http_timeout", c.http_timeout_ms);
  if (c.http_timeout_ms < 1) sim.Fail("http_timeout", "must be > 0");
  c.http_max_batch = sim.GetInt("http_max_batch", c.http_max_batch);
  if (c.http_max_batch < 1) sim.Fail("http_max_batch", "must be >= 1");
  c.mqtt_connect_timeout_ms =
      sim.GetDurationMs("mqtt_connect_timeout", c.mqtt_connect_timeout_ms);
  if (c.mqtt_connect_timeout_ms < 1) sim.Fail("mqtt_connect_timeout", "must be > 0");
  c.mqtt_max_inflight = sim.GetInt("mqtt_max_inflight", c.mqtt_max_inflight);
  if (c.mqtt_max_inflight < 1 || c.mqtt_max_inflight > 100000) {
    sim.Fail("mqtt_max_inflight", "must be in [1, 100000]");
  }
  c.tick_ms = sim.GetDurationMs("tick", c.tick_ms);
  if (c.tick_ms < 1 || c.tick_ms > 1000) sim.Fail("tick", "must be in [1ms, 1s]");
  c.log_level = config.GetString("log_level", c.log_level);

  std::vector<Config> sites = config.GetList("sites");
  if (sites.empty()) config.Fail("sites", "must list at least one site");
  std::set<std::string> names;
  for (const Config& site : sites) {
    c.sites.push_back(LoadSite(site));
    if (!names.insert(c.sites.back().name).second) {
      site.Fail("name", "duplicate site name '" + c.sites.back().name + "'");
    }
  }
  config.RejectUnknownKeys();
  return c;
}

}  // namespace sluice::sim
