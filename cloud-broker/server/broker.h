// Broker: one regional broker instance: opens (and recovers) the topic store under data_dir,
// builds the residency policy and metrics, and serves the HTTP API. main() is a thin wrapper
// around it; tests run it in-process on a free port.
// Threads: none of its own; the HTTP server's pool (core/http.h, sized once per process with
// InitHttpThreads) runs every request. Thread-safety: Start/Stop from one thread; the accessors
// are safe while it runs.
#pragma once

#include <atomic>
#include <memory>

#include "cloud-broker/auth/authorizer.h"
#include "cloud-broker/auth/producer_owners.h"
#include "cloud-broker/groups/group_coordinator.h"
#include "cloud-broker/groups/offset_store.h"
#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/produce/append_pool.h"
#include "cloud-broker/index/store_indexer.h"
#include "cloud-broker/query/query_pool.h"
#include "cloud-broker/residency/audit_log.h"
#include "cloud-broker/producers/producer_table.h"
#include "cloud-broker/replication/broker_registry.h"
#include "cloud-broker/replication/controller.h"
#include "cloud-broker/replication/etcd_client.h"
#include "cloud-broker/replication/replica_manager.h"
#include "cloud-broker/replication/replicated_offsets.h"
#include "cloud-broker/residency/residency_policy.h"
#include "cloud-broker/server/broker_metrics.h"
#include "cloud-broker/server/broker_options.h"
#include "cloud-broker/server/broker_service.h"
#include "cloud-broker/server/pipeline_pool.h"
#include "cloud-broker/server/fetch_waiter.h"
#include "cloud-broker/server/group_routes.h"
#include "core/http.h"
#include "core/metrics.h"
#include "core/status.h"

namespace sluice::broker {

class Broker {
 public:
  // Opens the store and starts listening on options.http_host:http_port. kUnavailable if the
  // port cannot be bound; the store's error if the data directory cannot be opened.
  static Result<std::unique_ptr<Broker>> Start(const BrokerOptions& options);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Stops serving and flushes the logs. Idempotent.
  void Stop();

  int port() const { return server_->port(); }
  TopicStore& store() { return *store_; }
  FetchWaiter& fetch_waiter() { return *fetch_waiter_; }  // storage: long-poll
  ProducerTable& producers() { return *producers_; }
  GroupCoordinator& groups() { return *groups_; }
  StoreIndexer* indexer() { return indexer_.get(); }  // nullptr: query.index off
  ReplicaManager* replicas() { return replicas_.get(); }      // nullptr: not replicated
  Controller* controller() { return controller_.get(); }      // nullptr: not replicated
  MetricsRegistry& metrics() { return registry_; }
  const BrokerOptions& options() const { return options_; }

 private:
  explicit Broker(BrokerOptions options);
  std::string ProducerSnapshotPath() const { return options_.data_dir + "/producers.snapshot"; }

  BrokerOptions options_;
  MetricsRegistry registry_;
  std::unique_ptr<BrokerMetrics> metrics_;
  std::unique_ptr<FetchWaiter> fetch_waiter_;  // storage: outlives the store (on_visible)
  std::unique_ptr<TopicStore> store_;
  std::unique_ptr<ProducerTable> producers_;  // exactly-once produce state
  std::unique_ptr<PipelinePool> pipeline_pool_;  // pipelined produce requests that wait
  std::unique_ptr<AppendPool> append_pool_;      // produce.append_threads
  std::unique_ptr<QueryPool> query_pool_;        // query.threads: GET /v1/query
  std::unique_ptr<StoreIndexer> indexer_;        // query.index: <data_dir>/index
  std::unique_ptr<ResidencyPolicy> policy_;
  std::unique_ptr<AuditLog> audit_;  // <data_dir>/audit: residency refusals
  // Consumer groups: offsets (under <data_dir>/groups, or in __consumer_offsets when
  // replicated), coordinator (with its reaper thread).
  std::unique_ptr<OffsetBackend> group_offsets_;
  std::unique_ptr<GroupCoordinator> groups_;
  std::unique_ptr<GroupRoutes> group_routes_;
  std::unique_ptr<Authorizer> auth_;
  std::unique_ptr<ProducerOwners> producer_owners_;
  // --- replication (replication.etcd_endpoints set): etcd, membership, controller, replicas ---
  std::unique_ptr<EtcdClient> etcd_;
  std::unique_ptr<BrokerRegistration> registration_;
  std::unique_ptr<Controller> controller_;
  // The controller for the registration's callbacks (its own thread); nullptr until started.
  std::atomic<Controller*> controller_raw_{nullptr};
  std::unique_ptr<ReplicaManager> replicas_;
  Status StartReplication();  // broker_replication.cc
  void StopReplication();
  // --- end replication ---
  std::unique_ptr<BrokerService> service_;
  std::unique_ptr<HttpServer> server_;
  bool stopped_ = false;
};

}  // namespace sluice::broker
