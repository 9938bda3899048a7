#include "cloud-broker/server/broker_metrics.h"

namespace sluice::broker {

BrokerMetrics::BrokerMetrics(MetricsRegistry& registry)
    : registry_(registry),
      bytes_appended_(registry.GetCounter("sluice_broker_bytes_appended_total",
                                          "Bytes of record batches appended to partition logs")),
      recovery_truncated_(registry.GetCounter(
          "sluice_broker_recovery_truncated_bytes_total",
          "Bytes cut from torn or corrupt log tails when the broker opened its logs")) {
  registry.AddGaugeFn("sluice_broker_corrupt_batches_total",
                      "Corrupt batches found in old log segments (skipped by readers)", {},
                      [] { return static_cast<double>(PartitionLog::CorruptBatchesTotal()); });
  registry.AddGaugeFn("sluice_broker_file_open_failures_total",
                      "Failed opens of log, index and topic files (EMFILE/ENFILE when the "
                      "process is out of descriptors); the request answered 503",
                      {}, [] { return static_cast<double>(OpenFailuresTotal()); });
}

void BrokerMetrics::WatchFileCache(const FileCache& cache) {
  registry_.AddGaugeFn("sluice_broker_open_segment_files",
                       "Segment files the log keeps open now (log.max_open_files caps it)", {},
                       [&cache] { return static_cast<double>(cache.open_files()); });
  registry_.AddGaugeFn("sluice_broker_segment_file_evictions_total",
                       "Segment files closed to stay within log.max_open_files (reopened on "
                       "demand)",
                       {}, [&cache] { return static_cast<double>(cache.evictions()); });
}

void BrokerMetrics::ProduceRequest(int http_status) {
  registry_
      .GetCounter("sluice_broker_produce_requests_total", "Produce requests by HTTP status",
                  {{"status", std::to_string(http_status)}})
      .Inc();
}

void BrokerMetrics::Appended(const std::string& topic, uint64_t records, uint64_t bytes) {
  registry_
      .GetCounter("sluice_broker_records_appended_total", "Records appended, by topic",
                  {{"topic", topic}})
      .Inc(records);
  bytes_appended_.Inc(bytes);
}

void BrokerMetrics::Refused(const std::string& reason, uint64_t records) {
  registry_
      .GetCounter("sluice_broker_records_refused_total",
                  "Records of refused produce requests (nothing of them stored), by reason",
                  {{"reason", reason}})
      .Inc(records);
}

void BrokerMetrics::AuthRefusal(const std::string& reason) {
  registry_
      .GetCounter("sluice_broker_auth_refusals_total",
                  "Requests refused by authentication (401) or the ACLs (403), by reason",
                  {{"reason", reason}})
      .Inc();
}

void BrokerMetrics::ResidencyRefusal(const std::string& country) {
  registry_
      .GetCounter("sluice_broker_residency_refusals_total",
                  "Produce requests refused because a record's country is not of this region",
                  {{"country", country}})
      .Inc();
}

void BrokerMetrics::RecoveryTruncated(uint64_t bytes) { recovery_truncated_.Inc(bytes); }

void BrokerMetrics::WatchTopic(const Topic& topic) {
  {
    std::lock_guard lock(mu_);
    if (!watched_.insert(topic.name().value()).second) {
      return;
    }
  }
  for (int32_t p = 0; p < topic.partition_count(); ++p) {
    const PartitionLog* log = topic.partition(p);
    registry_.AddGaugeFn("sluice_broker_partition_end_offset",
                         "Next offset (high watermark) of each partition",
                         {{"topic", topic.name().value()}, {"partition", std::to_string(p)}},
                         [log] { return static_cast<double>(log->next_offset()); });
    registry_.AddGaugeFn("sluice_broker_partition_start_offset",
                         "First offset still stored (advances with retention)",
                         {{"topic", topic.name().value()}, {"partition", std::to_string(p)}},
                         [log] { return static_cast<double>(log->start_offset()); });
  }
}

}  // namespace sluice::broker
