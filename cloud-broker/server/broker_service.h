// BrokerService: the broker's HTTP API (docs/API.md, "Broker"): produce, list topics, fetch,
// query, healthz, metrics. It owns no threads: HttpServer calls Handle on its pool threads and
// most requests are answered before Handle returns (produce answers after its fsync); queries
// are handed to the QueryPool and long-poll fetches to the FetchWaiter, which answer later.
// Thread-safety: thread-safe; everything it touches (TopicStore, PartitionLog, metrics) is.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/produce/produce_service.h"
#include "cloud-broker/query/query.h"
#include "cloud-broker/residency/residency_policy.h"
#include "cloud-broker/server/broker_metrics.h"
#include "cloud-broker/server/record_json.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/logging.h"

namespace sluice::broker {

class ProducerTable;  // cloud-broker/producers/producer_table.h
class GroupRoutes;    // cloud-broker/server/group_routes.h (consumer groups)
class FetchWaiter;    // cloud-broker/server/fetch_waiter.h (long-poll fetch)

// --- storage: fetch long-poll bound and the 416 answer (topic_routes.cc) ---
inline constexpr int64_t kMaxFetchWaitMs = 30000;
// 416 {"error": "offset_out_of_range", ..., "start_offset", "end_offset"}.
HttpResponse OffsetOutOfRange(const PartitionLog& log, int64_t offset);
// --- end storage ---

class PipelinePool;
class Authorizer;      // cloud-broker/auth/authorizer.h
class ProducerOwners;  // cloud-broker/auth/producer_owners.h
class AppendPool;  // cloud-broker/produce/append_pool.h
class QueryPool;   // cloud-broker/query/query_pool.h
class AuditLog;    // cloud-broker/residency/audit_log.h
class StoreIndexer;  // cloud-broker/index/store_indexer.h
class ReplicaManager;  // cloud-broker/replication/replica_manager.h

struct ServiceOptions {
  std::string broker_id;
  std::string advertised_url;  // broker.advertised_url (GET /v1/metadata)
  // Replicated region: produce only on leaders, follower fetch routes, metadata from etcd;
  // nullptr: a single-broker region.
  ReplicaManager* replication = nullptr;
  // Replicated region: creates a topic in the region's etcd (the controller's placement);
  // POST /v1/topics and auto-creation by produce go through it instead of the local store.
  // config.partitions 0: topics.default_partitions; its retention/flush overrides travel with
  // the topic to every replica. Returns the partition count created.
  std::function<Result<int32_t>(const std::string& topic, const TopicConfig& config)>
      create_replicated_topic;
  // ... and by produce to an unknown topic (topics.auto_create), with the default partitions.
  std::function<Status(const std::string& topic)> auto_create_replicated_topic;
  int64_t replication_timeout_ms = 10000;  // replication.timeout (acks=all)
  int64_t query_default_limit = 100;
  int64_t query_max_limit = 100000;
  // Idempotent-producer state (exactly-once produce); nullptr turns deduplication off.
  ProducerTable* producers = nullptr;
  // Consumer-group endpoints under /v1/groups; nullptr answers them 404.
  GroupRoutes* groups = nullptr;
  // Parks fetches with wait_ms at the end of a partition (storage); nullptr answers at once.
  FetchWaiter* fetch_waiter = nullptr;
  // Runs produce requests carrying Sluice-After-Seq off the HTTP threads; nullptr: inline.
  PipelinePool* pipeline_pool = nullptr;
  // Authentication and ACLs (server/access.cc); nullptr: every request is allowed.
  Authorizer* auth = nullptr;
  // The region's audit log of residency refusals (cloud-broker/residency/audit_log.h); nullptr:
  // refusals are counted and logged only.
  AuditLog* audit = nullptr;
  // Binds producer ids to principals; nullptr (auth off): any client may use any producer id.
  ProducerOwners* producer_owners = nullptr;
  // Appends the partitions of one produce request in parallel; nullptr: one after another.
  AppendPool* append_pool = nullptr;
  // produce.max_future: records timestamped further ahead of clock->NowMs() are refused (400);
  // < 0: no bound.
  int64_t max_future_ms = 24LL * 3600 * 1000;
  // Runs GET /v1/query off the HTTP threads (bounded; 503 when full); nullptr: inline.
  QueryPool* query_pool = nullptr;
  // query.index: the partitions' indexes queries read; nullptr: queries scan.
  StoreIndexer* indexer = nullptr;
  // query.timeout: a query's time budget from its arrival, including its wait in the pool's
  // queue; past it the answer is 503 query_timeout. <= 0: none.
  int64_t query_timeout_ms = 10000;
  const Clock* clock = &SystemClock::Instance();  // produce.max_future's and the query deadline's
  // Test seam: runs on the thread that scans, right before the scan of every query.
  std::function<void()> on_query_start;
};

class BrokerService {
 public:
  BrokerService(ServiceOptions options, TopicStore& store, const ResidencyPolicy& policy,
                BrokerMetrics& metrics);

  void Handle(HttpRequest&& request, HttpResponder respond);
  HttpResponse Route(const HttpRequest& request);

  // POST /v1/topics/{topic}/records (produce.cc: ProduceService over HTTP). after_seq: the
  // Sluice-After-Seq header (empty: absent), see cloud-broker/producers/producer_table.h
  // "Pipelining".
  // acks: the `acks` query parameter ("all", the default, or "1").
  // acks=0: checked now, answered 202, appended after the answer (server/produce.cc).
  HttpResponse ProduceWithoutWaiting(ProduceRequest request);
  // The HTTP answer to a produce outcome (metrics and refusal log included).
  HttpResponse ProduceAnswer(const ProduceRequest& request, const ProduceOutcome& out);
  HttpResponse Produce(const std::string& topic, const std::string& body,
                       const std::string& after_seq = "", const std::string& principal = "",
                       const std::string& acks = "", const std::string& request_id = "");
  // The request's X-Request-Id (printable, at most 128 bytes), else one made here.
  static std::string RequestIdOf(const HttpRequest& req);

 private:
  // --- storage: topic admin, timestamp lookup, long-poll (topic_routes.cc) ---
  HttpResponse StorageRoute(const HttpRequest& req, const std::vector<std::string>& p);
  HttpResponse CreateTopic(const HttpRequest& req);
  // Replicated region: in etcd, placed by the controller's rules (replication_routes.cc's peer).
  HttpResponse CreateReplicatedTopic(const std::string& name, const TopicConfig& config);
  HttpResponse DescribeTopic(const std::string& topic);
  HttpResponse OffsetForTime(const std::string& topic, const std::string& partition,
                             const HttpRequest& req);
  // True if it took the request: parked (answered later) or answered a bad wait_ms.
  bool MaybeParkFetch(const HttpRequest& req, const HttpResponder& respond);
  // --- end storage ---
  HttpResponse ListTopics(const std::string& principal);
  // Authenticates and authorizes `request` (server/access.cc), setting request.principal;
  // false after answering 401 or 403.
  bool Admit(HttpRequest& request, const HttpResponder& respond);
  // Replicated region: `offset` lies past the high watermark but within what this replica
  // holds (a follower behind the leader's high watermark, a leader waiting for its followers):
  // a fetch there gets an empty page (or parks), not 416.
  bool NotYetCommitted(const PartitionLog& log, int64_t offset) const;
  HttpResponse Fetch(const std::string& topic, const std::string& partition,
                     const HttpRequest& request);
  // --- queries (query_routes.cc) ---
  // True if it took the request: queued on the query pool, or answered 400/503 at once.
  bool MaybeQueueQuery(HttpRequest& req, const HttpResponder& respond);
  QueryDeadline QueryDeadlineFromNow() const;
  HttpResponse Query(const HttpRequest& request, const QueryDeadline& deadline);
  // GET /v1/audit (audit_routes.cc), on the query pool.
  HttpResponse Audit(const HttpRequest& request);
  // format=ndjson: one record per line as they are found, then a last line
  // {"end":true,"region","returned","next",...} (with "error" and "reason" if the query ran
  // past query.timeout or failed after records went out; before any record, the usual 503/500).
  void StreamQuery(const HttpRequest& request, const QueryDeadline& deadline,
                   const HttpResponder& respond);
  // The query's filter from its parameters and `format` (json | ndjson: no default limit,
  // any limit).
  Result<QueryFilter> ParseQueryRequest(const HttpRequest& req, std::string* bad_field) const;
  // "region","returned","next"[,"matched","counts_by_country"]: members of a query's answer.
  void WriteQuerySummary(JsonWriter& w, const QueryResult& res) const;
  // The last line of a streamed answer: {"end":true, the summary (if res), "error","reason"
  // (if error is not empty)}\n.
  std::string QueryEndLine(const QueryResult* res, const std::string& error,
                           const std::string& reason) const;
  HttpResponse QueryError(const Status& status);
  HttpResponse QueryTimedOut(const QueryResult& res);
  static constexpr int64_t kStreamLimit = int64_t{1} << 50;  // "every match"
  // GET /v1/query/aggregate (cloud-broker/query/aggregate.h).
  HttpResponse Aggregate(const HttpRequest& request, const QueryDeadline& deadline);
  IndexLookup Indexes() const;  // the partitions' indexes queries read (query.index)
  // 503 + Retry-After, counted in sluice_broker_queries_refused_total{reason}.
  HttpResponse RefuseQuery(const std::string& reason, const std::string& message);
  // --- end queries ---
  // --- replication (replication_routes.cc) ---
  // True if it took the request (POST /v1/replication/*): answered, or parked until data.
  bool MaybeReplicationRoute(const HttpRequest& req, const HttpResponder& respond);
  HttpResponse Metadata(const std::string& principal);
  // --- end replication ---
  HttpResponse Health();
  // Counts (and logs, rate-limited per reason) a refused produce request; nothing was stored.
  HttpResponse Refuse(HttpResponse response, const std::string& topic,
                      const std::string& reason, size_t records);

  const ServiceOptions options_;
  TopicStore& store_;
  const ResidencyPolicy& policy_;
  BrokerMetrics& metrics_;
  RateLimitedLog refusal_log_;
  ProduceService produce_;  // the produce path itself (cloud-broker/produce)
};

// Splits "/a/b/c" into {"a","b","c"} (empty segments dropped).
std::vector<std::string> SplitPath(const std::string& path);

}  // namespace sluice::broker
