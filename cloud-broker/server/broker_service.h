// BrokerService: the broker's HTTP API (docs/API.md, "Broker"): produce, list topics, fetch,
// query, healthz, metrics. It owns no threads: HttpServer calls Handle on its pool threads and
// every request is answered before Handle returns (produce answers after its fsync).
// Thread-safety: thread-safe; everything it touches (TopicStore, PartitionLog, metrics) is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/residency/residency_policy.h"
#include "cloud-broker/server/broker_metrics.h"
#include "cloud-broker/server/record_json.h"
#include "core/http.h"
#include "core/logging.h"

namespace sluice::broker {

struct ServiceOptions {
  std::string broker_id;
  int64_t query_default_limit = 100;
  int64_t query_max_limit = 100000;
};

class BrokerService {
 public:
  BrokerService(ServiceOptions options, TopicStore& store, const ResidencyPolicy& policy,
                BrokerMetrics& metrics);

  void Handle(HttpRequest&& request, HttpResponder respond);
  HttpResponse Route(const HttpRequest& request);

  // POST /v1/topics/{topic}/records (produce.cc).
  HttpResponse Produce(const std::string& topic, const std::string& body);

 private:
  HttpResponse ListTopics();
  HttpResponse Fetch(const std::string& topic, const std::string& partition,
                     const HttpRequest& request);
  HttpResponse Query(const HttpRequest& request);
  HttpResponse Health();
  // Counts (and logs, rate-limited per reason) a refused produce request; nothing was stored.
  HttpResponse Refuse(HttpResponse response, const std::string& topic,
                      const std::string& reason, size_t records);

  const ServiceOptions options_;
  TopicStore& store_;
  const ResidencyPolicy& policy_;
  BrokerMetrics& metrics_;
  RateLimitedLog refusal_log_;
};

// Splits "/a/b/c" into {"a","b","c"} (empty segments dropped).
std::vector<std::string> SplitPath(const std::string& path);

}  // namespace sluice::broker
