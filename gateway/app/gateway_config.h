// GatewayConfig: every key of the gateway's YAML config (config/gateway-*.yaml), read and
// validated at start-up. FromConfig() reads each key, calls RejectUnknownKeys(), and throws
// ConfigError("<file>: <key>: <reason>") on a missing, mistyped or invalid value (a country listed
// by two regions, an unknown buffer.sync mode, a port out of range...).
// Thread-safety: a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/residency_policy_file.h"
#include "core/logging.h"
#include "core/strong_types.h"
#include "core/http.h"
#include "core/tls.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/ingest/event_parser.h"
#include "gateway/routing/country_source.h"
#include "gateway/routing/region_router.h"

namespace sluice::gateway {

struct GatewayConfig {
  GatewayId gateway_id;
  CountryCode country;
  std::string data_dir;

  bool mqtt_enabled = true;
  std::string mqtt_uri = "tcp://127.0.0.1:1883";
  std::string mqtt_client_id;
  std::vector<std::string> mqtt_topics{"sensors/+/+"};
  int mqtt_qos = 1;
  int64_t mqtt_max_payload_bytes = 256 * 1024;  // larger MQTT payloads are dropped, counted

  bool http_enabled = true;
  std::string http_host = "127.0.0.1";
  int http_port = 9201;
  TlsServerOptions http_tls;  // http.tls.*: the ingest endpoint over https (mutual TLS optional)
  int64_t http_max_body_bytes = 4 << 20;
  int64_t http_max_events_per_request = 10000;
  int http_threads = 4;
  // http.max_header_bytes, .max_header_fields, .header_timeout, .body_timeout, .idle_timeout,
  // .max_connections (core/http_config.h).
  HttpServerOptions http_limits;
  IngestLimits ingest;  // ingest.max_json_depth, ingest.max_future (HTTP and MQTT)

  SyncMode buffer_sync = SyncMode::kAlways;
  int64_t buffer_sync_interval_ms = 1000;
  int64_t buffer_max_bytes = int64_t{1} << 30;  // bytes of queued records
  int64_t buffer_ttl_ms = 0;                     // 0: records never expire
  OverflowPolicy buffer_overflow_http = OverflowPolicy::kReject;
  OverflowPolicy buffer_overflow_mqtt = OverflowPolicy::kDropOldest;
  int64_t buffer_qos0_max_pending = 10000;  // QoS 0 messages accepted but not yet committed
  int64_t buffer_qos0_commit_delay_ms = 5;  // how long QoS 0 messages may wait for their commit
  int64_t buffer_write_buffer_bytes = int64_t{16} << 20;  // LevelDB memtable (memory vs speed)
  int64_t buffer_min_free_bytes = int64_t{100} << 20;     // disk space every commit leaves free

  std::string forward_topic = "sensors";
  int64_t forward_batch_max_records = 1000;
  int64_t forward_batch_max_bytes = 1 << 20;
  int64_t forward_linger_ms = 20;
  int64_t forward_max_in_flight = 4;  // batches per region sent and not yet answered
  int64_t forward_request_timeout_ms = 10000;
  // forward.tls.*: CA that signed the brokers' certificates (empty: the system's CAs) and the
  // gateway's own certificate + key, presented to brokers that require mutual TLS.
  TlsClientOptions forward_tls;
  int64_t forward_backoff_initial_ms = 100;
  int64_t forward_backoff_max_ms = 30000;

  std::vector<RegionConfig> regions;
  // residency.policy_file, loaded: where each country's records may go (its regions and their
  // brokers); nullptr: the `regions:` list decides.
  std::shared_ptr<const ResidencyPolicyFile> residency_policy;
  // residency.country_source / residency.device_registry (gateway/routing/country_source.h).
  CountrySourceKind country_source = CountrySourceKind::kEvent;
  std::string device_registry;  // resolved path; required with country_source registry
  // residency.failover_after: with the policy's `failover: next_allowed`, how long a region must
  // be unreachable before its never-sent records move to the next allowed region.
  int64_t residency_failover_after_ms = 30000;
  // residency.quarantine_max_records: MQTT events of a country allowed nowhere kept at most.
  int64_t residency_quarantine_max_records = 100000;
  LogLevel log_level = LogLevel::kInfo;

  // Throws ConfigError. Reads every key, then rejects unknown ones.
  static GatewayConfig FromConfig(const Config& cfg);
};

}  // namespace sluice::gateway
