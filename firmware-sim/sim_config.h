// SimConfig: the simulator's settings, read from a Config tree shaped like config/sim.yaml.
// LoadSimConfig throws ConfigError ("<file>: <key>: <reason>") on a missing, malformed or
// unknown key; it is called once at start-up.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/tls.h"

namespace sluice::sim {

enum class Transport { kMqtt, kHttp, kMixed };

const char* TransportName(Transport t);

struct SiteConfig {
  std::string name;
  std::vector<std::string> countries;  // ISO 3166-1 alpha-2; devices draw theirs from this list
  Transport transport = Transport::kMixed;
  std::string mqtt_uri;           // required when some device of the site uses MQTT
  std::string mqtt_topic_prefix;  // topic = <prefix>/<device_id>/<sensor>
  std::string http_url;           // required when some device of the site uses HTTP
  TlsClientOptions http_tls;      // sites[].http_tls.*: for an https:// gateway
};

struct SimConfig {
  uint64_t seed = 42;
  int64_t devices = 10;
  int64_t duration_ms = 5000;
  double rate_per_device = 1.0;  // events per second per device; may be fractional
  std::vector<std::string> sensors = {"temperature"};
  int64_t payload_bytes = 120;
  std::string manifest;  // path of the JSON manifest; "" writes none
  // Optional knobs (documented in README.md), with defaults that suit the demo.
  int http_workers = 4;             // threads sending HTTP requests, shared by all sites
  int http_max_attempts = 5;        // per request, on 503 or a transport error
  int64_t http_backoff_initial_ms = 50;
  int64_t http_backoff_max_ms = 1000;
  int64_t http_timeout_ms = 10000;
  int64_t http_max_batch = 500;      // events per NDJSON request at most
  int64_t mqtt_connect_timeout_ms = 5000;
  int64_t mqtt_max_inflight = 256;   // unfinished publishes per site before waiting
  int64_t tick_ms = 10;              // scheduler granularity
  std::string log_level = "info";    // top-level `log_level`
  std::vector<SiteConfig> sites;
};

// Reads and validates `sim.*` and `sites[]`, then calls RejectUnknownKeys().
SimConfig LoadSimConfig(const Config& config);

}  // namespace sluice::sim
