// BrokerOptions: the broker's configuration (config/broker-*.yaml), read and validated once at
// start-up. LoadBrokerOptions throws ConfigError "<file>: <key>: <reason>" on a missing, wrongly
// typed, invalid or unknown key, so main can print it and exit 2.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cloud-broker/auth/authorizer.h"
#include "cloud-broker/log/partition_log.h"
#include "core/config.h"
#include "core/http.h"
#include "core/residency_policy_file.h"
#include "core/strong_types.h"
#include "core/tls.h"

namespace sluice::broker {

struct BrokerOptions {
  std::string broker_id = "broker-1";
  std::string data_dir = "./data/broker";
  RegionId region;
  std::vector<CountryCode> countries;  // region.countries; with a policy file, what it lists
  // residency.policy_file, loaded (the deployment's one residency policy); nullptr: the
  // broker's own region.countries decide.
  std::shared_ptr<const ResidencyPolicyFile> residency_policy;
  // audit.max_bytes: the residency audit log (<data_dir>/audit/refusals.jsonl) at most; past it
  // refusals are answered 503 until it is archived.
  int64_t audit_max_bytes = int64_t{1} << 30;
  std::string http_host = "127.0.0.1";
  int http_port = 9101;
  // http.tls.*: https, and with client_ca_file mutual TLS (only gateways and consumers holding a
  // certificate the CA signed get in). Required when http.host is not loopback, unless
  // http.insecure_plaintext is true.
  TlsServerOptions tls;
  int64_t max_body_bytes = 16LL * 1024 * 1024;
  int http_threads = 4;
  // http.max_header_bytes, .max_header_fields, .header_timeout, .body_timeout, .idle_timeout,
  // .max_connections (core/http.h HttpServerOptions; max_body_bytes above).
  HttpServerOptions http_limits;
  // auth.*: principals, API keys, ACLs (cloud-broker/auth/authorizer.h).
  AuthOptions auth;
  int64_t max_ids_per_principal = 64;  // producers.max_ids_per_principal (auth on)
  bool auto_create_topics = true;
  int32_t default_partitions = 4;
  int64_t segment_bytes = 128LL * 1024 * 1024;
  FlushPolicy flush = FlushPolicy::kAlways;
  // --- storage: log.* defaults for every topic (per-topic overrides: POST /v1/topics) ---
  int64_t segment_ms = 7LL * 24 * 3600 * 1000;       // log.segment_ms
  int64_t index_interval_bytes = 4096;               // log.index_interval_bytes
  int64_t flush_ms = 1000;                           // log.flush_interval (flush: interval)
  int64_t flush_bytes = -1;                          // log.flush_bytes (flush: interval)
  int64_t retention_ms = -1;                         // log.retention_ms
  int64_t retention_bytes = -1;                      // log.retention_bytes
  int64_t retention_check_interval_ms = 300000;      // log.retention_check_interval
  int64_t max_open_files = 0;  // log.max_open_files; 0: a quarter of RLIMIT_NOFILE (>= 16)
  FileOps* file_ops = nullptr;  // test seam (fault injection); nullptr: the real file system
  // --- end storage ---
  // produce.max_future: refuse records timestamped more than this after the broker's clock
  // (Kafka's message.timestamp.after.max.ms); -1: no bound.
  int64_t max_future_ms = 24LL * 3600 * 1000;
  int64_t query_default_limit = 100;
  int64_t query_max_limit = 100000;
  // query.threads, query.max_waiting, query.timeout: GET /v1/query runs on its own pool
  // (cloud-broker/query/query_pool.h), never on the HTTP threads.
  // query.index, query.index_interval: each partition's device/time/country index
  // (cloud-broker/index) under <data_dir>/index, kept behind the log by one thread; queries read
  // it and scan only the uncovered tail. Off: every query scans the partitions it reads.
  bool query_index = true;
  int64_t query_index_interval_ms = 200;
  bool query_index_low_priority = true;  // query.index_priority: low | normal
  bool query_low_priority = true;  // query.priority: low (nice 10) | normal
  int query_threads = 1;
  int64_t query_max_waiting = 8;
  int64_t query_timeout_ms = 10000;
  std::function<void()> on_query_start;  // test seam (ServiceOptions::on_query_start)
  int64_t max_producer_ids = 10000;  // producers.max_ids: idempotent-producer state cap (LRU)
  // producers.max_waiting: threads for pipelined produce requests that wait for the batch they
  // follow (server/pipeline_pool.h), so waiting never holds an HTTP thread; 0: they wait on the
  // HTTP threads as before (at most http.threads - 1 at once, the rest refused with 409).
  int64_t max_waiting_produce = 16;
  // produce.append_threads: fixed threads that append the partitions of one produce request in
  // parallel (cloud-broker/produce/append_pool.h); 0: appended one after another.
  int append_threads = 4;
  // topics.max_partitions: partitions of all topics together at most, on a single broker or in
  // a replicated region (each counted once; internal topics excluded there).
  int64_t max_partitions = 10000;
  // groups.max_members, groups.max_groups, groups.offsets_retention (-1: off): consumer groups
  // (cloud-broker/groups/group_coordinator.h GroupOptions): members of one group and groups
  // with members at most, and how long an idle group's offsets are kept.
  int64_t group_max_members = 1000;
  int64_t group_max_groups = 10000;
  int64_t group_offsets_retention_ms = 7LL * 24 * 3600 * 1000;
  std::string log_level = "info";

  // --- replication (cloud-broker/replication; docs/ARCHITECTURE.md "Replication") ---
  // broker.advertised_url: what peers, gateways and clients dial to reach this broker (Kafka's
  // advertised.listeners); default: http(s)://<http.host>:<http.port>.
  std::string advertised_url;
  // replication.etcd_endpoints: the region's etcd members; empty: a single-broker region with
  // no replication (today's behaviour, the embedded default).
  std::vector<std::string> etcd_endpoints;
  int32_t min_insync_replicas = 2;         // replication.min_insync_replicas
  int32_t replication_factor = 3;          // replication.factor (topics need that many brokers)
  int64_t replica_lag_max_ms = 10000;      // replication.replica_lag_max
  int64_t lease_ttl_s = 3;                 // replication.lease_ttl (whole seconds, etcd's unit)
  int64_t replication_timeout_ms = 10000;  // replication.timeout: acks=all waits at most this
  int64_t state_poll_ms = 200;             // replication.state_poll
  // replication.unclean_leader_election: with no live in-sync replica, elect a live out-of-sync
  // one (availability over durability: what it lacks is lost). Off: the partition waits.
  bool unclean_leader_election = false;
  // replication.offsets_partitions: partitions of __consumer_offsets, where the region keeps
  // consumer groups' committed offsets (a group's coordinator leads its partition). Read when
  // the topic is first created; changing it later moves groups' partitions: do not.
  int32_t offsets_partitions = 8;
  bool replicated() const { return !etcd_endpoints.empty(); }
};

// Reads every broker key from `config` (region.name and region.countries are required), checks
// the values, then calls config.RejectUnknownKeys(). Throws ConfigError.
BrokerOptions LoadBrokerOptions(const Config& config);

}  // namespace sluice::broker
