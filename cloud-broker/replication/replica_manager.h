// ReplicaManager: this broker's part in replicating its region's partitions (Kafka's
// ReplicaManager + ReplicaFetcherManager, with the partition states in etcd, partition_state.h).
//
// Roles. A state thread reads the region's partition states and registered brokers every
// state_poll_ms. For each partition this broker is a replica of, it creates the local log if
// missing and takes the role the state names:
// - leader (state.leader == self): records its leader epoch as starting at its log end
//   (KIP-101), stamps that epoch on every batch it appends (ProduceService), tracks each
//   follower's log end from its fetches, and sets the high watermark to the smallest log end of
//   the in-sync set (its own durable end included). It shrinks the in-sync set when a follower
//   has not caught up for replica_lag_max_ms and grows it when one has, both only by
//   compare-and-swap on the partition's state; a swap refused because the state changed under
//   it makes it step down at once (zombie fencing) until the next read says otherwise.
// - follower: a fetcher thread per leader broker first truncates the local log where it
//   diverged from the leader's (OffsetForLeaderEpoch, KIP-279; never by high watermark), then
//   fetches raw batches, appends them at the leader's offsets (durable per the log's flush
//   policy before the next fetch reports the new end) and sets its high watermark to
//   min(leader's, own end).
// - neither (offline or not a replica): answers not_leader.
// Losing the broker's etcd registration (OnRegistrationLost) steps every leader down at once:
// nothing is acknowledged until the state says it leads again.
//
// Produce (acks=all): CheckLeader before appending (not_leader; not_enough_replicas when the
// in-sync set is below min_insync_replicas, nothing stored), then AwaitReplicated until the high
// watermark covers the batch (kUnavailable not_enough_replicas after the timeout or if the set
// shrank below the minimum; kFailedPrecondition not_leader if leadership moved: the records may
// survive, a retry with the same producer id is deduplicated).
//
// Thread-safety: thread-safe. Handlers may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/produce/produce_service.h"
#include "cloud-broker/replication/etcd_client.h"
#include "cloud-broker/replication/partition_state.h"
#include "cloud-broker/replication/replica_fetch.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/metrics.h"

namespace sluice::broker {

struct ReplicaManagerOptions {
  std::string broker_id;
  std::string region;
  int32_t min_insync_replicas = 2;
  int64_t replica_lag_max_ms = 10000;
  int64_t state_poll_ms = 200;
  int64_t fetch_wait_ms = 500;
  int64_t fetch_max_bytes = 1 << 20;
  int64_t fetch_backoff_ms = 100;  // after a failed fetch
  HttpClientOptions peer_http;     // TLS towards the other brokers
  std::map<std::string, std::string> peer_headers;  // e.g. Authorization for an API key
  const Clock* clock = &SystemClock::Instance();
  // sluice_broker_isr_shrinks_total / _expands_total; nullptr: not exported.
  MetricsRegistry* metrics = nullptr;
  // Runs on the state thread when this broker becomes a partition's leader, after its epoch is
  // recorded and before the partition takes any produce (no follower append runs meanwhile; the
  // manager's lock is not held): e.g. rebuild the partition's idempotent-producer state from the
  // log it replicated.
  std::function<void(const std::string& topic, int32_t partition, PartitionLog& log)>
      on_become_leader;
};

class ReplicaFetcher;  // replica_fetcher.h

// A partition a fetcher replicates, as the manager sees it now.
struct FollowedPartition {
  std::string topic;
  int32_t partition = 0;
  int32_t epoch = 0;
  bool truncated = false;  // its diverged tail was cut for this epoch
  PartitionLog* log = nullptr;
  // Held while appending as a follower (and while the partition becomes leader), so no
  // follower append of an old epoch lands after this broker started leading.
  std::shared_ptr<std::mutex> append_mu;
};

enum class ReplicaRole { kNone, kLeader, kFollower };

class ReplicaManager : public PartitionLeadership {
 public:
  ReplicaManager(ReplicaManagerOptions options, EtcdClient& etcd, TopicStore& store);
  ~ReplicaManager() override;  // Stop()

  // Starts the state thread (fetchers start as roles appear).
  void Start();
  void Stop();
  // Reads the states and applies them once, now (tests; Start's thread does it periodically).
  Status SyncOnce();
  // The registration's lease is gone: step down everywhere until the next successful read.
  void OnRegistrationLost();
  // This broker's incarnation (its registration's create revision), set at every
  // registration: a partition state whose leader is this broker under another incarnation is
  // not led (the broker restarted since it was elected).
  void SetIncarnation(int64_t incarnation) { incarnation_.store(incarnation); }
  int64_t incarnation() const { return incarnation_.load(); }

  // --- produce ---
  // The epoch to stamp, if this broker leads topic-partition and the in-sync set has at least
  // min_insync_replicas (when acks_all). kFailedPrecondition "not_leader" (message names the
  // leader and its URL when known) or kUnavailable "not_enough_replicas".
  Result<int32_t> CheckLeader(const std::string& topic, int32_t partition,
                              bool acks_all) override;
  // Waits until the high watermark reaches `end_offset` (one past the batch's last offset).
  Status AwaitReplicated(const std::string& topic, int32_t partition, int32_t epoch,
                         int64_t end_offset, int64_t timeout_ms) override;
  // The leader appended: wake parked follower fetches and recompute the high watermark.
  void OnLeaderAppend(const std::string& topic, int32_t partition) override;

  // --- peers (server/replication_routes.cc) ---
  // Answers what is there now; *ready false when nothing is new for any partition (the caller
  // may park the fetch and call again).
  ReplicaFetchResponse Fetch(const ReplicaFetchRequest& request, bool* has_data);
  EpochEndResponse EpochEnd(const EpochEndRequest& request);

  // True if Fetch would answer something now (new records past a fetch offset, or an error).
  bool HasDataFor(const ReplicaFetchRequest& request);
  // Bumped whenever any partition's role or epoch changes here: a parked follower fetch
  // answers at once (its partitions may have moved). Lock-free, for the FetchWaiter's
  // re-check, which must not take this manager's lock (the manager moves high watermarks, and
  // so notifies the waiter, while holding it).
  uint64_t roles_generation() const { return roles_generation_.load(); }

  // For metrics (sluice_broker_* gauges, server/broker_replication.cc).
  struct Stats {
    int64_t leading = 0;             // partitions this broker leads (ready)
    int64_t following = 0;           // partitions it follows
    int64_t under_replicated = 0;    // led partitions whose in-sync set is below its replicas
    int64_t under_min_isr = 0;       // led partitions below min_insync_replicas (acks=all refused)
    int64_t max_follower_lag = 0;    // records: the farthest in-sync follower behind, led ones
  };
  Stats stats();
  uint64_t isr_shrinks() const { return isr_shrinks_.load(); }
  uint64_t isr_expands() const { return isr_expands_.load(); }

  // What every broker of the region serves (GET /v1/metadata), from the last read of etcd.
  struct RegionView {
    std::map<std::string, std::string> brokers;  // id -> advertised URL (registered now)
    std::map<std::string, TopicAssignment> topics;
    std::map<std::pair<std::string, int32_t>, PartitionState> partitions;
  };
  RegionView View();

  ReplicaRole role(const std::string& topic, int32_t partition);
  // The leader's advertised URL for topic-partition ("" unknown).
  std::string LeaderUrl(const std::string& topic, int32_t partition);
  std::vector<std::string> isr(const std::string& topic, int32_t partition);
  // Called (no lock held) whenever a fetch may now find data: parked fetches re-check.
  void SetDataListener(std::function<void()> fn);

  // --- fetcher side (replica_fetcher.cc) ---
  std::vector<FollowedPartition> FollowedFrom(const std::string& leader_id);
  // The partition was truncated for `epoch` (no-op if its role or epoch changed meanwhile).
  void MarkTruncated(const std::string& topic, int32_t partition, int32_t epoch, bool truncated);
  // Records were appended or the high watermark moved on a follower: wake readers.
  void OnFollowerProgress();
  // True if this broker still follows topic-partition in `epoch` (call holding append_mu).
  bool StillFollowing(const std::string& topic, int32_t partition, int32_t epoch);

 private:
  struct Progress {
    int64_t log_end = -1;          // from its last fetch; -1 unknown
    int64_t last_caught_up_ms = 0;
    int64_t last_fetch_ms = -1;  // -1: none since this broker became leader
    int64_t leader_end_at_last_fetch = 0;
  };
  struct Replica {
    std::string topic;
    int32_t partition = 0;
    PartitionLog* log = nullptr;
    PartitionState state;
    int64_t mod_revision = 0;
    ReplicaRole role = ReplicaRole::kNone;
    int32_t epoch = -1;                         // the epoch of the role taken
    std::map<std::string, Progress> followers;  // leader only
    bool truncated = false;                     // follower: diverged tail cut for this epoch
    int32_t min_leader_epoch = 0;  // after a lost registration: never re-lead an older epoch
    bool ready = false;  // leader: epoch recorded and producer state rebuilt; takes produce
    std::shared_ptr<std::mutex> append_mu = std::make_shared<std::mutex>();
  };

  Replica* Find(const std::string& topic, int32_t partition);  // mu_ held
  Status Apply(const std::map<std::string, TopicAssignment>& topics,
               const std::vector<std::pair<PartitionState, EtcdKeyValue>>& states,
               const std::map<std::string, std::string>& urls);
  // Under mu_: takes the role (not ready yet). PrepareLeader, without mu_, records the epoch
  // and rebuilds producer state once no follower append is in flight, then makes it ready.
  void BecomeLeader(Replica& r);
  void PrepareLeader(const std::string& topic, int32_t partition, int32_t epoch);
  void BecomeFollower(Replica& r);
  // Leader: high watermark = min end of the in-sync set (mu_ held).
  void UpdateHighWatermark(Replica& r);
  // Leader: shrink/expand proposals as compare-and-swap writes (no lock held while writing).
  void MaintainIsr();
  // Starts a fetcher per leader this broker follows, stops the others (no lock held).
  void ReconcileFetchers();
  void Run();
  // Writes every replica's high watermark to its partition directory (Kafka's
  // replication-offset-checkpoint, every kHighWatermarkCheckpointMs and at Stop), so a restarted
  // replica serves reads up to what was replicated before, not from nothing.
  void CheckpointHighWatermarks();
  static constexpr int64_t kHighWatermarkCheckpointMs = 5000;  // Kafka's default interval
  int64_t NowMs() const { return options_.clock->NowMs(); }

  const ReplicaManagerOptions options_;
  EtcdClient& etcd_;
  TopicStore& store_;

  std::mutex mu_;
  std::condition_variable hw_cv_;  // high watermarks or roles changed
  std::map<std::pair<std::string, int32_t>, Replica> replicas_;
  std::map<std::string, std::string> broker_urls_;
  std::map<std::string, int64_t> broker_incarnations_;  // registered now (KIP-380 check)
  std::map<std::string, TopicAssignment> topics_;
  std::map<std::pair<std::string, int32_t>, PartitionState> all_states_;
  std::mutex fetchers_mu_;  // not mu_: stopping a fetcher joins a thread that takes mu_
  std::map<std::string, std::unique_ptr<ReplicaFetcher>> fetchers_;  // by leader id
  // Told to stop, not yet returned (a request to a dead leader runs out its timeout); joined
  // once finished, or at Stop.
  std::vector<std::unique_ptr<ReplicaFetcher>> retiring_;
  std::function<void()> data_listener_;
  std::atomic<uint64_t> roles_generation_{0};
  std::atomic<int64_t> incarnation_{0};
  std::atomic<uint64_t> isr_shrinks_{0};
  std::atomic<uint64_t> isr_expands_{0};
  Counter* isr_shrinks_metric_ = nullptr;
  Counter* isr_expands_metric_ = nullptr;

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = true;
  std::thread thread_;
};

}  // namespace sluice::broker
