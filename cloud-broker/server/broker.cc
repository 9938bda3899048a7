#include "cloud-broker/server/broker.h"

#include "cloud-broker/replication/topic_admin.h"
#include "core/logging.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "broker";
}  // namespace

Broker::Broker(BrokerOptions options) : options_(std::move(options)) {}

Broker::~Broker() { Stop(); }

Result<std::unique_ptr<Broker>> Broker::Start(const BrokerOptions& options) {
  std::unique_ptr<Broker> b(new Broker(options));
  b->metrics_ = std::make_unique<BrokerMetrics>(b->registry_);

  TopicStoreOptions so;
  so.data_dir = options.data_dir;
  so.log.segment_bytes = options.segment_bytes;
  so.log.flush = options.flush;
  // --- storage: log defaults, maintenance, long-poll wake-up ---
  so.log.segment_ms = options.segment_ms;
  so.log.index_interval_bytes = options.index_interval_bytes;
  so.log.flush_ms = options.flush_ms;
  so.log.flush_bytes = options.flush_bytes;
  so.log.retention_ms = options.retention_ms;
  so.log.retention_bytes = options.retention_bytes;
  so.retention_check_interval_ms = options.retention_check_interval_ms;
  so.max_open_files = static_cast<size_t>(options.max_open_files);
  if (options.file_ops != nullptr) {
    so.log.file_ops = options.file_ops;
  }
  b->fetch_waiter_ = std::make_unique<FetchWaiter>();
  FetchWaiter* waiter = b->fetch_waiter_.get();
  so.log.on_visible = [waiter] { waiter->Notify(); };
  // --- end storage ---
  // A replicated region's topics come from etcd (the controller's placement); its replicas'
  // high watermarks are set by replication, not by the local fsync.
  so.auto_create = options.auto_create_topics && !options.replicated();
  so.log.managed_high_watermark = options.replicated();
  so.default_partitions = options.default_partitions;
  so.max_partitions = options.replicated() ? 0 : options.max_partitions;  // replicated: below
  Result<std::unique_ptr<TopicStore>> store = TopicStore::Open(so);
  if (!store.ok()) {
    return Status(store.status().code(),
                  "cannot open data dir " + options.data_dir + ": " + store.status().message());
  }
  b->store_ = std::move(store).value();
  b->metrics_->WatchFileCache(b->store_->file_cache());
  b->metrics_->RecoveryTruncated(b->store_->recovery_truncated_bytes());
  for (const Topic* t : b->store_->Topics()) {
    b->metrics_->WatchTopic(*t);
  }

  // --- exactly-once: rebuild the idempotent-producer state from the log before serving ---
  // Waiting slots: the pipeline pool's threads, plus (when they are all busy) HTTP threads but
  // one, so a waiter never takes the last thread the batch it waits for needs.
  b->producers_ = std::make_unique<ProducerTable>(
      static_cast<size_t>(options.max_producer_ids), &b->registry_,
      static_cast<int>(options.max_waiting_produce) + options.http_threads - 1);
  if (options.max_waiting_produce > 0) {
    b->pipeline_pool_ = std::make_unique<PipelinePool>(static_cast<int>(options.max_waiting_produce));
  }
  if (options.append_threads > 0) {
    Result<std::unique_ptr<AppendPool>> pool = AppendPool::Create(options.append_threads);
    if (!pool.ok()) {
      return Status(pool.status().code(), "produce.append_threads: " + pool.status().message());
    }
    b->append_pool_ = std::move(pool).value();
  }
  Result<std::unique_ptr<QueryPool>> queries =
      QueryPool::Create(options.query_threads, static_cast<size_t>(options.query_max_waiting),
                        options.query_low_priority);
  if (!queries.ok()) {
    return Status(queries.status().code(), "query.threads: " + queries.status().message());
  }
  b->query_pool_ = std::move(queries).value();
  QueryPool* qp = b->query_pool_.get();
  b->registry_.AddGaugeFn("sluice_broker_queries_running", "Queries running on the query pool",
                          {}, [qp] { return static_cast<double>(qp->running()); });
  b->registry_.AddGaugeFn("sluice_broker_queries_waiting",
                          "Queries waiting for a query thread (at most query.max_waiting)", {},
                          [qp] { return static_cast<double>(qp->waiting()); });
  if (options.query_index) {
    StoreIndexerOptions io;
    io.dir = options.data_dir + "/index";
    io.interval_ms = options.query_index_interval_ms;
    io.low_priority = options.query_index_low_priority;
    b->indexer_ = std::make_unique<StoreIndexer>(io, *b->store_);
    StoreIndexer* indexer = b->indexer_.get();
    b->registry_.AddGaugeFn("sluice_broker_index_lag_records",
                            "Records below the high watermarks not indexed yet (queries scan "
                            "them)",
                            {}, [indexer] { return static_cast<double>(indexer->lag()); });
    indexer->Start();
  }
  std::string why_not;
  Result<bool> loaded =
      b->producers_->LoadSnapshot(*b->store_, b->ProducerSnapshotPath(), &why_not);
  if (loaded.ok() && *loaded) {
    LogInfo(kComponent, "producer state loaded from the snapshot of the last clean stop: " +
                            std::to_string(b->producers_->size()) + " producers");
  } else {
    Result<uint64_t> rebuilt = b->producers_->RebuildFromLog(*b->store_);
    if (!rebuilt.ok()) {
      return Status(rebuilt.status().code(),
                    "cannot rebuild producer state: " + rebuilt.status().message());
    }
    LogInfo(kComponent, "producer state rebuilt from " + std::to_string(*rebuilt) +
                            " batches (" + why_not + "): " +
                            std::to_string(b->producers_->size()) + " producers");
  }
  // --- end exactly-once ---


  b->policy_ = options.residency_policy != nullptr
                   ? std::make_unique<ResidencyPolicy>(options.region, options.residency_policy)
                   : std::make_unique<ResidencyPolicy>(options.region, options.countries);
  // The region's audit log of residency refusals (<data_dir>/audit).
  Result<std::unique_ptr<AuditLog>> audit =
      AuditLog::Open(options.data_dir + "/audit", options.audit_max_bytes);
  if (!audit.ok()) {
    return audit.status();
  }
  b->audit_ = std::move(audit).value();
  ServiceOptions svc;
  svc.audit = b->audit_.get();
  svc.broker_id = options.broker_id;
  svc.advertised_url = options.advertised_url;
  svc.replication_timeout_ms = options.replication_timeout_ms;
  // --- replication: the replica manager exists before serving; it starts after ---
  if (options.replicated()) {
    EtcdClientOptions eo;
    Result<std::unique_ptr<EtcdClient>> etcd = EtcdClient::Create(options.etcd_endpoints, eo);
    if (!etcd.ok()) {
      return Status(etcd.status().code(), "replication.etcd_endpoints: " +
                                              etcd.status().message());
    }
    b->etcd_ = std::move(etcd).value();
    ReplicaManagerOptions ro;
    ro.broker_id = options.broker_id;
    ro.region = options.region.value();
    ro.min_insync_replicas = options.min_insync_replicas;
    ro.replica_lag_max_ms = options.replica_lag_max_ms;
    ro.state_poll_ms = options.state_poll_ms;
    ro.metrics = &b->registry_;
    if (options.tls.enabled()) {
      // Peers present this broker's own certificate and trust the region's CA.
      ro.peer_http.tls.ca_file = options.tls.client_ca_file;
      ro.peer_http.tls.cert_file = options.tls.cert_file;
      ro.peer_http.tls.key_file = options.tls.key_file;
    }
    ProducerTable* producers = b->producers_.get();
    ro.on_become_leader = [producers](const std::string& topic, int32_t p, PartitionLog& log) {
      Result<uint64_t> n = producers->RebuildPartition(topic, p, log.dir());
      if (!n.ok()) {
        LogError(kComponent, "rebuilding producer state of " + topic + "-" + std::to_string(p) +
                                 ": " + n.status().ToString());
      }
    };
    b->replicas_ = std::make_unique<ReplicaManager>(ro, *b->etcd_, *b->store_);
    svc.replication = b->replicas_.get();
    EtcdClient* etcd_client = b->etcd_.get();
    const std::string region = options.region.value();
    const ResidencyPolicy* residency = b->policy_.get();  // outlives the service
    const int32_t factor = options.replication_factor;
    const int32_t default_partitions =
        std::min(options.default_partitions, kMaxPartitionsPerTopic);
    ReplicaManager* replicas = b->replicas_.get();
    const int64_t max_partitions = options.max_partitions;
    svc.create_replicated_topic = [etcd_client, region, residency, factor, default_partitions,
                                   replicas, max_partitions](
                                      const std::string& topic,
                                      const TopicConfig& config) -> Result<int32_t> {
      const int32_t partitions = config.partitions > 0 ? config.partitions : default_partitions;
      // topics.max_partitions over the region, from the last view of etcd: two creates at once
      // may pass it together, by at most their own partitions.
      int64_t held = 0;
      for (const auto& [name, t] : replicas->View().topics) {
        held += IsInternalTopic(name) ? 0 : t.partitions;
      }
      if (held + partitions > max_partitions) {
        return Status::TooLarge("topic " + topic + " would bring region " + region +
                                "'s partitions to " + std::to_string(held + partitions) +
                                ", over the limit of " + std::to_string(max_partitions) +
                                " (topics.max_partitions)");
      }
      Result<std::vector<BrokerInfo>> live = ListBrokers(*etcd_client, region);
      if (!live.ok()) {
        return live.status();
      }
      if (static_cast<int32_t>(live->size()) < factor) {
        // As Kafka (INVALID_REPLICATION_FACTOR): never a topic with fewer replicas than
        // configured for good because a broker was restarting or not registered yet.
        return Status::Unavailable("replication.factor is " + std::to_string(factor) + " but " +
                                   std::to_string(live->size()) +
                                   " brokers are registered in region " + region +
                                   "; retry when they are");
      }
      Result<TopicAssignment> t =
          CreateTopic(*etcd_client, *residency, topic, partitions, factor, config);
      if (!t.ok()) {
        return t.status();
      }
      return t->partitions;
    };
    if (options.auto_create_topics) {
      auto create = svc.create_replicated_topic;
      svc.auto_create_replicated_topic = [create](const std::string& topic) -> Status {
        Result<int32_t> n = create(topic, TopicConfig{});
        return n.ok() ? Status::Ok() : n.status();
      };
    }
  }
  // --- end replication ---
  // --- consumer groups: durable offsets and the coordinator (cloud-broker/groups) ---
  if (options.replicated()) {
    ReplicatedOffsetsOptions oo;
    oo.broker_id = options.broker_id;
    oo.residency = b->policy_.get();
    oo.partitions = options.offsets_partitions;
    oo.replication_factor = options.replication_factor;
    oo.replication_timeout_ms = options.replication_timeout_ms;
    if (options.retention_ms > 0) {
      // Group-state snapshots well inside time retention, so it never takes a live offset.
      oo.snapshot_interval_ms = std::min(oo.snapshot_interval_ms, options.retention_ms / 4);
    }
    b->group_offsets_ =
        std::make_unique<ReplicatedOffsets>(oo, *b->replicas_, *b->etcd_, *b->store_);
  } else {
    Result<std::unique_ptr<OffsetStore>> offsets =
        OffsetStore::Open(options.data_dir + "/groups");
    if (!offsets.ok()) {
      return Status(offsets.status().code(),
                    "cannot open group offsets: " + offsets.status().message());
    }
    b->group_offsets_ = std::move(offsets).value();
  }
  TopicStore* topic_store = b->store_.get();
  GroupOptions group_options;
  group_options.max_members_per_group = options.group_max_members;
  group_options.max_groups = options.group_max_groups;
  group_options.offsets_retention_ms = options.group_offsets_retention_ms;
  b->groups_ = std::make_unique<GroupCoordinator>(
      group_options, *b->group_offsets_,
      [topic_store](const TopicName& t) {
        const Topic* topic = topic_store->Find(t);
        return topic == nullptr ? -1 : topic->partition_count();
      },
      SystemClock::Instance(), b->registry_);
  b->groups_->StartReaper();
  b->group_routes_ = std::make_unique<GroupRoutes>(*b->groups_, options.broker_id,
                                                   options.advertised_url);
  // --- end consumer groups ---
  svc.query_default_limit = options.query_default_limit;
  svc.query_max_limit = options.query_max_limit;
  svc.max_future_ms = options.max_future_ms;
  svc.groups = b->group_routes_.get();  // consumer groups
  svc.producers = b->producers_.get();
  svc.fetch_waiter = b->fetch_waiter_.get();  // storage: long-poll fetch
  svc.pipeline_pool = b->pipeline_pool_.get();
  svc.append_pool = b->append_pool_.get();
  svc.query_pool = b->query_pool_.get();
  svc.indexer = b->indexer_.get();
  svc.query_timeout_ms = options.query_timeout_ms;
  svc.on_query_start = options.on_query_start;
  // --- authentication, ACLs, producer-id ownership (cloud-broker/auth) ---
  if (options.auth.required) {
    Result<std::unique_ptr<Authorizer>> auth =
        Authorizer::Create(options.auth, SystemClock::Instance());
    if (!auth.ok()) {
      return auth.status();
    }
    b->auth_ = std::move(auth).value();
    Result<std::unique_ptr<ProducerOwners>> owners =
        ProducerOwners::Open(options.data_dir, options.max_ids_per_principal);
    if (!owners.ok()) {
      return owners.status();
    }
    b->producer_owners_ = std::move(owners).value();
    svc.auth = b->auth_.get();
    svc.producer_owners = b->producer_owners_.get();
  }
  b->service_ = std::make_unique<BrokerService>(svc, *b->store_, *b->policy_, *b->metrics_);

  HttpServerOptions ho = options.http_limits;
  ho.threads = options.http_threads;
  ho.host = options.http_host;
  ho.port = options.http_port;
  ho.max_body_bytes = options.max_body_bytes;
  ho.tls = options.tls;
  BrokerService* service = b->service_.get();
  Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(
      ho, [service](HttpRequest&& req, HttpResponder respond) {
        service->Handle(std::move(req), std::move(respond));
      });
  if (!server.ok()) {
    return server.status();
  }
  b->server_ = std::move(server).value();
  Status replication = b->StartReplication();
  if (!replication.ok()) {
    return replication;
  }
  std::string countries;
  for (const CountryCode& c : options.countries) {
    countries += (countries.empty() ? "" : ",") + c.value();
  }
  LogInfo(kComponent, "broker " + options.broker_id + " listening on " +
                          (options.tls.enabled() ? "https://" : "http://") +
                          options.http_host + ":" + std::to_string(b->server_->port()) +
                          " region=" + options.region.value() + " countries=" + countries +
                          (options.residency_policy != nullptr
                               ? " (+ default: " +
                                     std::string(options.residency_policy->DefaultAllows(
                                                     options.region)
                                                     ? "yes"
                                                     : "no") +
                                     ") residency_policy=" + options.residency_policy->origin() +
                                     " " + options.residency_policy->version()
                               : std::string()) +
                          " data_dir=" + options.data_dir + " topics=" +
                          std::to_string(b->store_->Topics().size()));
  return b;
}

void Broker::Stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  StopReplication();  // others lead this broker's partitions from now on
  if (fetch_waiter_) {
    fetch_waiter_->Shutdown();  // storage: answer parked long-polls while the server runs
  }
  if (query_pool_) {
    // Before the server, which may wait for unanswered requests: waiting queries answer 503
    // stopping, running ones finish (within query.timeout), later ones get 503 stopping.
    query_pool_->Stop();
  }
  if (server_) {
    server_->Stop();
  }
  if (indexer_) {
    indexer_->Stop();  // after the queries that read its indexes
  }
  if (pipeline_pool_) {
    pipeline_pool_->Stop();  // pipelined produce requests still waiting finish (and answer)
  }
  if (append_pool_) {
    append_pool_->Stop();  // no produce runs any more: the server and the waiters are stopped
  }
  if (groups_) {
    groups_->StopReaper();  // consumer groups
  }
  if (store_) {
    bool flushed = true;
    for (const Topic* t : store_->Topics()) {
      for (int32_t p = 0; p < t->partition_count(); ++p) {
        Status st = t->partition(p)->Flush();
        if (!st.ok()) {
          flushed = false;
          LogError(kComponent, "flush " + t->name().value() + "-" + std::to_string(p) + ": " +
                                   st.ToString());
        }
      }
    }
    // --- exactly-once: the next start loads this instead of re-reading every log. Not after a
    // failed flush: bytes of a refused batch may be in a log the snapshot would not account for.
    if (producers_ && flushed) {
      Status st = producers_->WriteSnapshot(*store_, ProducerSnapshotPath());
      if (!st.ok()) {
        LogError(kComponent, "producer snapshot: " + st.ToString() +
                                 " (the next start rebuilds from the log)");
      }
    }
  }
}

}  // namespace sluice::broker
