#include "cloud-broker/server/broker_options.h"

#include <set>

#include "cloud-broker/log/topic_config.h"
#include "core/http_config.h"
#include "cloud-broker/log/topic_store.h"
#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::broker {

BrokerOptions LoadBrokerOptions(const Config& c) {
  BrokerOptions o;
  o.broker_id = c.GetString("broker.id", o.broker_id);
  if (o.broker_id.empty()) {
    c.Fail("broker.id", "must not be empty");
  }
  o.data_dir = c.GetString("broker.data_dir", o.data_dir);
  if (o.data_dir.empty()) {
    c.Fail("broker.data_dir", "must not be empty");
  }

  o.region = RegionId(c.RequireString("region.name"));
  if (o.region.value().empty()) {
    c.Fail("region.name", "must not be empty");
  }
  o.residency_policy = LoadResidencyPolicy(c, "residency.policy_file");
  if (o.residency_policy != nullptr) {
    const ResidencyPolicyFile& policy = *o.residency_policy;
    if (policy.FindRegion(o.region) == nullptr) {
      std::string known;
      for (const PolicyRegion& r : policy.regions()) {
        known += (known.empty() ? "" : ", ") + r.name.value();
      }
      c.Fail("region.name", "region " + o.region.value() + " is not in the residency policy " +
                                policy.origin() + " (its regions: " + known + ")");
    }
    if (c.Has("region.countries")) {
      c.Fail("region.countries",
             "remove it: the residency policy " + policy.origin() +
                 " says which countries this region stores (one policy, not two lists)");
    }
    o.countries = policy.ListedCountriesOf(o.region);  // for the start-up log line
  }
  std::vector<std::string> countries =
      o.residency_policy != nullptr ? std::vector<std::string>{}
                                    : c.GetStringList("region.countries", {});
  if (countries.empty() && o.residency_policy == nullptr) {
    c.Fail("region.countries",
           "must list at least one ISO 3166-1 alpha-2 country code (or set "
           "residency.policy_file)");
  }
  std::set<std::string> seen;
  for (const std::string& cc : countries) {
    if (!IsCountryCodeShape(cc)) {
      c.Fail("region.countries", "\"" + cc + "\" is not an ISO 3166-1 alpha-2 code (two " +
                                     "upper-case letters, e.g. DE)");
    }
    if (!seen.insert(cc).second) {
      c.Fail("region.countries", "\"" + cc + "\" is listed twice");
    }
    o.countries.emplace_back(cc);
  }

  o.audit_max_bytes = c.GetBytes("audit.max_bytes", o.audit_max_bytes);
  if (o.audit_max_bytes < (1 << 20)) {
    c.Fail("audit.max_bytes", "must be at least 1MiB");
  }

  o.http_host = c.GetString("http.host", o.http_host);
  int64_t port = c.GetInt("http.port", o.http_port);
  if (port < 1 || port > 65535) {
    c.Fail("http.port", "must be 1..65535, got " + std::to_string(port));
  }
  o.http_port = static_cast<int>(port);
  o.tls = TlsServerFromConfig(c, "http.tls");
  LoadHttpLimits(c, "http", &o.http_limits);
  o.auth = LoadAuthOptions(c, !o.tls.client_ca_file.empty());
  RequireTlsOffLoopback(c, "http.host", o.http_host, o.tls.enabled(), "http.insecure_plaintext");
  o.max_body_bytes = c.GetBytes("http.max_body_bytes", o.max_body_bytes);
  if (o.max_body_bytes < static_cast<int64_t>(kBatchHeaderSize)) {
    c.Fail("http.max_body_bytes", "must be at least " +
                                      std::to_string(kBatchHeaderSize) + " bytes");
  }
  int64_t threads = c.GetInt("http.threads", o.http_threads);
  if (threads < 1 || threads > 256) {
    c.Fail("http.threads", "must be 1..256, got " + std::to_string(threads));
  }
  o.http_threads = static_cast<int>(threads);

  o.auto_create_topics = c.GetBool("topics.auto_create", o.auto_create_topics);
  int64_t partitions = c.GetInt("topics.default_partitions", o.default_partitions);
  if (partitions < 1 || partitions > kMaxPartitions) {
    c.Fail("topics.default_partitions",
           "must be 1.." + std::to_string(kMaxPartitions) + ", got " + std::to_string(partitions));
  }
  o.default_partitions = static_cast<int32_t>(partitions);

  o.segment_bytes = c.GetBytes("log.segment_bytes", o.segment_bytes);
  if (o.segment_bytes < 1024) {
    c.Fail("log.segment_bytes", "must be at least 1KiB, got " + std::to_string(o.segment_bytes));
  }
  // --- storage: log.* keys (config/README.md) ---
  std::string flush = c.GetString("log.flush", "always");
  if (!ParseFlushPolicy(flush, &o.flush)) {
    c.Fail("log.flush", "must be \"always\", \"interval\" or \"never\", got \"" + flush + "\"");
  }
  // A limit is a positive duration/size, or -1 (off).
  auto off = [&](const std::string& key) {
    return c.Has(key) && c.GetString(key, "") == "-1";
  };
  auto limit_ms = [&](const std::string& key, int64_t def) -> int64_t {
    if (off(key)) return -1;
    int64_t v = c.GetDurationMs(key, def);
    if (v != -1 && v <= 0) c.Fail(key, "must be positive, or -1 for off");
    return v;
  };
  auto limit_bytes = [&](const std::string& key, int64_t def) -> int64_t {
    if (off(key)) return -1;
    int64_t v = c.GetBytes(key, def);
    if (v != -1 && v <= 0) c.Fail(key, "must be positive, or -1 for off");
    return v;
  };
  o.segment_ms = limit_ms("log.segment_ms", o.segment_ms);
  o.index_interval_bytes = c.GetBytes("log.index_interval_bytes", o.index_interval_bytes);
  if (o.index_interval_bytes < 1) {
    c.Fail("log.index_interval_bytes", "must be at least 1 byte");
  }
  o.flush_ms = limit_ms("log.flush_interval", o.flush_ms);
  o.flush_bytes = limit_bytes("log.flush_bytes", o.flush_bytes);
  o.retention_ms = limit_ms("log.retention_ms", o.retention_ms);
  o.retention_bytes = limit_bytes("log.retention_bytes", o.retention_bytes);
  o.retention_check_interval_ms =
      c.GetDurationMs("log.retention_check_interval", o.retention_check_interval_ms);
  if (o.retention_check_interval_ms < 10) {
    c.Fail("log.retention_check_interval", "must be at least 10ms");
  }
  o.max_open_files = c.GetInt("log.max_open_files", o.max_open_files);
  if (o.max_open_files != 0 && (o.max_open_files < 4 || o.max_open_files > 1'000'000)) {
    c.Fail("log.max_open_files", "must be 0 (a quarter of the open-file limit) or 4..1000000, "
                                 "got " + std::to_string(o.max_open_files));
  }
  // --- end storage ---

  o.max_future_ms = c.GetDurationMsOrOff("produce.max_future", o.max_future_ms);

  // --- replication ---
  o.advertised_url = c.GetString("broker.advertised_url",
                                 std::string(o.tls.enabled() ? "https://" : "http://") +
                                     o.http_host + ":" + std::to_string(o.http_port));
  if (o.advertised_url.rfind("http://", 0) != 0 && o.advertised_url.rfind("https://", 0) != 0) {
    c.Fail("broker.advertised_url", "must start with http:// or https://, got \"" +
                                        o.advertised_url + "\"");
  }
  o.etcd_endpoints = c.GetStringList("replication.etcd_endpoints", {});
  for (const std::string& e : o.etcd_endpoints) {
    if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0) {
      c.Fail("replication.etcd_endpoints", "\"" + e + "\" must start with http:// or https://");
    }
  }
  const int64_t min_isr = c.GetInt("replication.min_insync_replicas", o.min_insync_replicas);
  const int64_t factor = c.GetInt("replication.factor", o.replication_factor);
  if (factor < 1 || factor > 7) {
    c.Fail("replication.factor", "must be 1..7, got " + std::to_string(factor));
  }
  if (min_isr < 1 || min_isr > factor) {
    c.Fail("replication.min_insync_replicas",
           "must be 1..replication.factor (" + std::to_string(factor) + "), got " +
               std::to_string(min_isr));
  }
  o.min_insync_replicas = static_cast<int32_t>(min_isr);
  o.replication_factor = static_cast<int32_t>(factor);
  o.replica_lag_max_ms = c.GetDurationMs("replication.replica_lag_max", o.replica_lag_max_ms);
  if (o.replica_lag_max_ms < 100) {
    c.Fail("replication.replica_lag_max", "must be at least 100ms");
  }
  const int64_t ttl_ms = c.GetDurationMs("replication.lease_ttl", o.lease_ttl_s * 1000);
  if (ttl_ms < 1000 || ttl_ms % 1000 != 0) {
    c.Fail("replication.lease_ttl", "must be whole seconds, at least 1s");
  }
  o.lease_ttl_s = ttl_ms / 1000;
  o.replication_timeout_ms = c.GetDurationMs("replication.timeout", o.replication_timeout_ms);
  if (o.replication_timeout_ms < 1) {
    c.Fail("replication.timeout", "must be positive");
  }
  o.unclean_leader_election =
      c.GetBool("replication.unclean_leader_election", o.unclean_leader_election);
  o.state_poll_ms = c.GetDurationMs("replication.state_poll", o.state_poll_ms);
  if (o.state_poll_ms < 10 || o.state_poll_ms > 10000) {
    c.Fail("replication.state_poll", "must be 10ms..10s");
  }
  const int64_t offsets_partitions =
      c.GetInt("replication.offsets_partitions", o.offsets_partitions);
  if (offsets_partitions < 1 || offsets_partitions > 127) {
    c.Fail("replication.offsets_partitions",
           "must be 1..127, got " + std::to_string(offsets_partitions));
  }
  o.offsets_partitions = static_cast<int32_t>(offsets_partitions);

  o.query_default_limit = c.GetInt("query.default_limit", o.query_default_limit);
  o.query_max_limit = c.GetInt("query.max_limit", o.query_max_limit);
  if (o.query_max_limit < 1) {
    c.Fail("query.max_limit", "must be at least 1");
  }
  if (o.query_default_limit < 0 || o.query_default_limit > o.query_max_limit) {
    c.Fail("query.default_limit", "must be 0..query.max_limit (" +
                                      std::to_string(o.query_max_limit) + ")");
  }

  o.query_index = c.GetBool("query.index", o.query_index);
  o.query_index_interval_ms = c.GetDurationMs("query.index_interval", o.query_index_interval_ms);
  if (o.query_index_interval_ms < 10 || o.query_index_interval_ms > 60000) {
    c.Fail("query.index_interval", "must be 10ms..60s");
  }
  const std::string priority = c.GetString("query.index_priority", "low");
  if (priority != "low" && priority != "normal") {
    c.Fail("query.index_priority", "must be low or normal, got " + priority);
  }
  o.query_index_low_priority = priority == "low";
  const std::string query_priority = c.GetString("query.priority", "low");
  if (query_priority != "low" && query_priority != "normal") {
    c.Fail("query.priority", "must be low or normal, got " + query_priority);
  }
  o.query_low_priority = query_priority == "low";
  const int64_t query_threads = c.GetInt("query.threads", o.query_threads);
  if (query_threads < 1 || query_threads > 64) {
    c.Fail("query.threads", "must be 1..64, got " + std::to_string(query_threads));
  }
  o.query_threads = static_cast<int>(query_threads);
  o.query_max_waiting = c.GetInt("query.max_waiting", o.query_max_waiting);
  if (o.query_max_waiting < 0 || o.query_max_waiting > 4096) {
    c.Fail("query.max_waiting", "must be 0..4096, got " + std::to_string(o.query_max_waiting));
  }
  o.query_timeout_ms = c.GetDurationMs("query.timeout", o.query_timeout_ms);
  if (o.query_timeout_ms < 1) {
    c.Fail("query.timeout", "must be at least 1ms");
  }

  o.max_producer_ids = c.GetInt("producers.max_ids", o.max_producer_ids);
  o.max_waiting_produce = c.GetInt("producers.max_waiting", o.max_waiting_produce);
  o.max_ids_per_principal =
      c.GetInt("producers.max_ids_per_principal", o.max_ids_per_principal);
  if (o.max_ids_per_principal < 1 || o.max_ids_per_principal > 100000) {
    c.Fail("producers.max_ids_per_principal",
           "must be 1..100000, got " + std::to_string(o.max_ids_per_principal));
  }
  if (o.max_waiting_produce < 0 || o.max_waiting_produce > 1024) {
    c.Fail("producers.max_waiting",
           "must be 0..1024, got " + std::to_string(o.max_waiting_produce));
  }
  o.max_partitions = c.GetInt("topics.max_partitions", o.max_partitions);
  if (o.max_partitions < 1 || o.max_partitions > 1000000) {
    c.Fail("topics.max_partitions", "must be 1..1000000, got " + std::to_string(o.max_partitions));
  }
  o.group_max_members = c.GetInt("groups.max_members", o.group_max_members);
  if (o.group_max_members < 1 || o.group_max_members > 100000) {
    c.Fail("groups.max_members", "must be 1..100000, got " + std::to_string(o.group_max_members));
  }
  o.group_max_groups = c.GetInt("groups.max_groups", o.group_max_groups);
  if (o.group_max_groups < 1 || o.group_max_groups > 1000000) {
    c.Fail("groups.max_groups", "must be 1..1000000, got " + std::to_string(o.group_max_groups));
  }
  o.group_offsets_retention_ms =
      c.GetDurationMsOrOff("groups.offsets_retention", o.group_offsets_retention_ms);
  if (o.group_offsets_retention_ms == 0) {
    c.Fail("groups.offsets_retention", "must be positive, or off");
  }
  const int64_t append_threads = c.GetInt("produce.append_threads", o.append_threads);
  if (append_threads < 0 || append_threads > 256) {
    c.Fail("produce.append_threads", "must be 0..256, got " + std::to_string(append_threads));
  }
  o.append_threads = static_cast<int>(append_threads);
  if (o.max_producer_ids < 1 || o.max_producer_ids > 10000000) {
    c.Fail("producers.max_ids", "must be 1..10000000, got " + std::to_string(o.max_producer_ids));
  }

  o.log_level = c.GetString("log_level", o.log_level);
  LogLevel level;
  if (!ParseLogLevel(o.log_level, &level)) {
    c.Fail("log_level", "must be debug, info, warn or error, got \"" + o.log_level + "\"");
  }
  c.RejectUnknownKeys();
  return o;
}

}  // namespace sluice::broker
