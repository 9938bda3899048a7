// The broker's Prometheus series (sluice_broker_*), kept in one place so names stay consistent.
// Thread-safety: thread-safe (counters are atomics; families are created under the registry's
// lock; the partition gauge set is guarded by its own mutex).
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "cloud-broker/log/topic_store.h"
#include "core/metrics.h"

namespace sluice::broker {

class BrokerMetrics {
 public:
  explicit BrokerMetrics(MetricsRegistry& registry);

  // sluice_broker_produce_requests_total{status="200"|"400"|...}
  void ProduceRequest(int http_status);
  // sluice_broker_records_appended_total{topic} and sluice_broker_bytes_appended_total.
  void Appended(const std::string& topic, uint64_t records, uint64_t bytes);
  // sluice_broker_records_refused_total{reason}: records of refused produce requests.
  void Refused(const std::string& reason, uint64_t records);
  // sluice_broker_auth_refusals_total{reason="unauthenticated"|"forbidden"}
  void AuthRefusal(const std::string& reason);
  // sluice_broker_residency_refusals_total{country}: requests refused for residency.
  void ResidencyRefusal(const std::string& country);
  // sluice_broker_recovery_truncated_bytes_total
  void RecoveryTruncated(uint64_t bytes);
  // sluice_broker_partition_end_offset{topic,partition} for each partition (once per topic).
  void WatchTopic(const Topic& topic);
  // Gauges of the log's open segment files and evictions; `cache` must outlive scrapes.
  void WatchFileCache(const FileCache& cache);

  MetricsRegistry& registry() { return registry_; }

 private:
  MetricsRegistry& registry_;
  Counter& bytes_appended_;
  Counter& recovery_truncated_;
  std::mutex mu_;
  std::set<std::string> watched_;
};

}  // namespace sluice::broker
