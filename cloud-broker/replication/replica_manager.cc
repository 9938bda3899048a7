#include "cloud-broker/replication/replica_manager.h"

#include <algorithm>
#include <tuple>

#include "cloud-broker/replication/broker_registry.h"
#include "cloud-broker/replication/replica_fetcher.h"
#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "replica";

std::string Tp(const std::string& topic, int32_t p) { return topic + "-" + std::to_string(p); }

}  // namespace

ReplicaManager::ReplicaManager(ReplicaManagerOptions options, EtcdClient& etcd, TopicStore& store)
    : options_(std::move(options)), etcd_(etcd), store_(store) {
  if (options_.metrics != nullptr) {
    isr_shrinks_metric_ = &options_.metrics->GetCounter(
        "sluice_broker_isr_shrinks_total",
        "In-sync set shrinks this broker wrote as a leader (a follower fell behind)");
    isr_expands_metric_ = &options_.metrics->GetCounter(
        "sluice_broker_isr_expands_total",
        "In-sync set expansions this broker wrote as a leader (a follower caught up)");
  }
}

ReplicaManager::~ReplicaManager() { Stop(); }

void ReplicaManager::Start() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (!stop_) {
    return;
  }
  stop_ = false;
  thread_ = std::thread([this] {
    SetCurrentThreadName("replica-state");
    Run();
  });
}

void ReplicaManager::Stop() {
  bool was_running;
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    was_running = !stop_;
    stop_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (was_running) {
    CheckpointHighWatermarks();  // a clean stop restarts reading from where replicas agreed
  }
  std::map<std::string, std::unique_ptr<ReplicaFetcher>> fetchers;
  std::vector<std::unique_ptr<ReplicaFetcher>> retiring;
  {
    std::lock_guard<std::mutex> lock(fetchers_mu_);
    fetchers.swap(fetchers_);
    retiring.swap(retiring_);
  }
  for (auto& [id, f] : fetchers) {
    f->RequestStop();  // all at once, then join: one request timeout at most in total
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, r] : replicas_) {
      r.role = ReplicaRole::kNone;
    }
  }
  fetchers.clear();  // joins their threads, no lock held (they call back into this object)
  retiring.clear();
  hw_cv_.notify_all();
}

void ReplicaManager::Run() {
  int64_t last_checkpoint_ms = NowMs();
  while (true) {
    Status st = SyncOnce();
    if (!st.ok()) {
      LogWarn(kComponent, "reading the region's partition states: " + st.ToString());
    }
    MaintainIsr();
    if (NowMs() - last_checkpoint_ms >= kHighWatermarkCheckpointMs) {
      CheckpointHighWatermarks();
      last_checkpoint_ms = NowMs();
    }
    std::unique_lock<std::mutex> lock(run_mu_);
    if (run_cv_.wait_for(lock, std::chrono::milliseconds(options_.state_poll_ms),
                         [&] { return stop_; })) {
      return;
    }
  }
}

void ReplicaManager::CheckpointHighWatermarks() {
  std::vector<PartitionLog*> logs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, r] : replicas_) {
      logs.push_back(r.log);
    }
  }
  for (PartitionLog* log : logs) {
    Status st = log->CheckpointHighWatermark();
    if (!st.ok()) {
      LogWarn(kComponent, log->dir() + ": high-watermark checkpoint: " + st.ToString());
    }
  }
}

Status ReplicaManager::SyncOnce() {
  Result<std::vector<EtcdKeyValue>> topic_kvs = etcd_.GetPrefix(TopicsPrefix(options_.region));
  if (!topic_kvs.ok()) {
    return topic_kvs.status();
  }
  Result<std::vector<EtcdKeyValue>> state_kvs =
      etcd_.GetPrefix(PartitionsPrefix(options_.region));
  if (!state_kvs.ok()) {
    return state_kvs.status();
  }
  Result<std::vector<BrokerInfo>> brokers = ListBrokers(etcd_, options_.region);
  if (!brokers.ok()) {
    return brokers.status();
  }
  std::map<std::string, TopicAssignment> topics;
  for (const EtcdKeyValue& kv : *topic_kvs) {
    Result<TopicAssignment> t = ParseTopicAssignment(kv.value);
    if (t.ok()) {
      topics[t->name] = *t;
    } else {
      LogWarn(kComponent, kv.key + ": " + t.status().ToString());
    }
  }
  std::vector<std::pair<PartitionState, EtcdKeyValue>> states;
  for (const EtcdKeyValue& kv : *state_kvs) {
    Result<PartitionState> s = ParsePartitionState(kv.value);
    if (s.ok()) {
      states.emplace_back(std::move(s).value(), kv);
    } else {
      LogWarn(kComponent, kv.key + ": " + s.status().ToString());
    }
  }
  std::map<std::string, std::string> urls;
  std::map<std::string, int64_t> incarnations;
  for (const BrokerInfo& b : *brokers) {
    urls[b.id] = b.url;
    incarnations[b.id] = b.incarnation;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    broker_incarnations_ = std::move(incarnations);
  }
  return Apply(topics, states, urls);
}

Status ReplicaManager::Apply(const std::map<std::string, TopicAssignment>& topics,
                             const std::vector<std::pair<PartitionState, EtcdKeyValue>>& states,
                             const std::map<std::string, std::string>& urls) {
  std::function<void()> listener;
  std::vector<std::tuple<std::string, int32_t, int32_t>> new_leaders;
  {
    std::lock_guard<std::mutex> lock(mu_);
    broker_urls_ = urls;
    topics_ = topics;
    all_states_.clear();
    for (const auto& [state, kv] : states) {
      std::string topic;
      int32_t p = 0;
      if (!ParsePartitionKey(options_.region, kv.key, &topic, &p)) {
        continue;
      }
      all_states_[{topic, p}] = state;
      Replica* existing = Find(topic, p);
      if (!state.IsReplica(options_.broker_id)) {
        if (existing != nullptr && existing->role != ReplicaRole::kNone) {
          existing->role = ReplicaRole::kNone;
          roles_generation_.fetch_add(1);
        }
        continue;
      }
      if (existing == nullptr) {
        auto t = topics.find(topic);
        if (t == topics.end()) {
          continue;  // its topic key is not visible yet
        }
        Topic* local = store_.Find(TopicName(topic));
        if (local == nullptr) {
          // With the region's overrides for it: every replica keeps and syncs alike.
          Result<Topic*> created = store_.Create(TopicName(topic), t->second.config);
          if (!created.ok()) {
            LogError(kComponent, "cannot create local log of topic " + topic + ": " +
                                     created.status().ToString());
            continue;
          }
          local = *created;
        }
        PartitionLog* log = local->partition(p);
        if (log == nullptr) {
          LogError(kComponent, "topic " + topic + " has no partition " + std::to_string(p) +
                                   " locally (partition count changed?)");
          continue;
        }
        Replica& r = replicas_[{topic, p}];
        r.topic = topic;
        r.partition = p;
        r.log = log;
        existing = &r;
      }
      Replica& r = *existing;
      r.state = state;
      r.mod_revision = kv.mod_revision;
      const int64_t self = incarnation_.load();
      // Elected as another incarnation of this broker (before a restart): not ours to lead;
      // the controller elects anew (leader_election.h). Until then, no role.
      const bool elected_as_us = state.leader_incarnation == 0 || self == 0 ||
                                 state.leader_incarnation == self;
      if (state.leader == options_.broker_id && state.leader_epoch >= r.min_leader_epoch &&
          elected_as_us) {
        if (r.role != ReplicaRole::kLeader || r.epoch != state.leader_epoch) {
          BecomeLeader(r);
          new_leaders.emplace_back(topic, p, r.epoch);
        }
        UpdateHighWatermark(r);
      } else if (!state.leader.empty() && state.leader != options_.broker_id) {
        if (r.role != ReplicaRole::kFollower || r.epoch != state.leader_epoch) {
          BecomeFollower(r);
        }
      } else if (r.role != ReplicaRole::kNone) {
        LogInfo(kComponent, Tp(topic, p) + ": no role (leader " +
                                (state.leader.empty() ? "none" : state.leader) + ", epoch " +
                                std::to_string(state.leader_epoch) + ")");
        r.role = ReplicaRole::kNone;
        roles_generation_.fetch_add(1);
      }
    }
    listener = data_listener_;
  }
  ReconcileFetchers();
  for (const auto& [topic, p, epoch] : new_leaders) {
    PrepareLeader(topic, p, epoch);
  }
  hw_cv_.notify_all();
  if (listener) {
    listener();
  }
  return Status::Ok();
}

void ReplicaManager::BecomeLeader(Replica& r) {
  roles_generation_.fetch_add(1);
  r.role = ReplicaRole::kLeader;
  r.ready = false;
  r.epoch = r.state.leader_epoch;
  r.followers.clear();
  const int64_t now = NowMs();
  for (const std::string& id : r.state.replicas) {
    if (id != options_.broker_id) {
      Progress pr;
      pr.last_caught_up_ms = now;  // Kafka: in-sync followers get a full lag window
      r.followers[id] = pr;
    }
  }
}

void ReplicaManager::PrepareLeader(const std::string& topic, int32_t partition, int32_t epoch) {
  std::shared_ptr<std::mutex> append_mu;
  PartitionLog* log = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Replica* r = Find(topic, partition);
    if (r == nullptr || r->role != ReplicaRole::kLeader || r->epoch != epoch) {
      return;
    }
    append_mu = r->append_mu;
    log = r->log;
  }
  std::lock_guard<std::mutex> appending(*append_mu);  // no follower append in flight
  Status st = log->AssignLeaderEpoch(epoch);
  if (st.ok() && options_.on_become_leader) {
    options_.on_become_leader(topic, partition, *log);
  }
  std::lock_guard<std::mutex> lock(mu_);
  Replica* r = Find(topic, partition);
  if (r == nullptr || r->role != ReplicaRole::kLeader || r->epoch != epoch) {
    return;
  }
  if (!st.ok()) {
    LogError(kComponent, Tp(topic, partition) + ": cannot record leader epoch " +
                             std::to_string(epoch) + ": " + st.ToString());
    r->role = ReplicaRole::kNone;
    return;
  }
  r->ready = true;
  LogInfo(kComponent, Tp(topic, partition) + ": leader for epoch " + std::to_string(epoch) +
                          " from offset " + std::to_string(log->log_end_offset()));
}

void ReplicaManager::BecomeFollower(Replica& r) {
  roles_generation_.fetch_add(1);
  r.role = ReplicaRole::kFollower;
  r.epoch = r.state.leader_epoch;
  r.truncated = false;  // the fetcher first cuts where this log diverged from the leader's
  r.followers.clear();
  LogInfo(kComponent, Tp(r.topic, r.partition) + ": follower of " + r.state.leader +
                          " for epoch " + std::to_string(r.epoch));
}

void ReplicaManager::UpdateHighWatermark(Replica& r) {
  int64_t hw = r.log->durable_end_offset();
  for (const std::string& id : r.state.isr) {
    if (id == options_.broker_id) {
      continue;
    }
    auto it = r.followers.find(id);
    if (it == r.followers.end() || it->second.log_end < 0) {
      hw = std::min(hw, r.log->high_watermark());  // not heard from yet: no progress
    } else {
      hw = std::min(hw, it->second.log_end);
    }
  }
  Result<int64_t> set = r.log->SetHighWatermark(hw);
  if (!set.ok()) {
    LogError(kComponent, Tp(r.topic, r.partition) + ": " + set.status().ToString());
  }
}

ReplicaManager::Replica* ReplicaManager::Find(const std::string& topic, int32_t partition) {
  auto it = replicas_.find({topic, partition});
  return it == replicas_.end() ? nullptr : &it->second;
}

void ReplicaManager::OnRegistrationLost() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, r] : replicas_) {
      if (r.role == ReplicaRole::kLeader) {
        LogWarn(kComponent, Tp(r.topic, r.partition) +
                                ": stepping down (registration lost) from epoch " +
                                std::to_string(r.epoch));
        r.role = ReplicaRole::kNone;
        r.min_leader_epoch = r.epoch + 1;  // never lead an epoch it led before the loss again
        roles_generation_.fetch_add(1);
      }
    }
  }
  hw_cv_.notify_all();
}

Result<int32_t> ReplicaManager::CheckLeader(const std::string& topic, int32_t partition,
                                            bool acks_all) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica* r = Find(topic, partition);
  if (r != nullptr && r->role == ReplicaRole::kLeader && !r->ready) {
    return Status::FailedPrecondition("not_leader: broker " + options_.broker_id +
                                      " is becoming the leader of " + Tp(topic, partition) +
                                      " (epoch " + std::to_string(r->epoch) + "); retry");
  }
  if (r == nullptr || r->role != ReplicaRole::kLeader) {
    std::string leader = r == nullptr ? "" : r->state.leader;
    auto url = broker_urls_.find(leader);
    return Status::FailedPrecondition(
        "not_leader: broker " + options_.broker_id + " does not lead " + Tp(topic, partition) +
        (leader.empty() ? std::string("; no leader known")
                        : "; the leader is " + leader +
                              (url == broker_urls_.end() ? "" : " at " + url->second)));
  }
  if (acks_all && static_cast<int32_t>(r->state.isr.size()) < options_.min_insync_replicas) {
    return Status::Unavailable("not_enough_replicas: " + Tp(topic, partition) + " has " +
                               std::to_string(r->state.isr.size()) +
                               " in-sync replicas, min_insync_replicas is " +
                               std::to_string(options_.min_insync_replicas));
  }
  return r->epoch;
}

void ReplicaManager::OnLeaderAppend(const std::string& topic, int32_t partition) {
  std::function<void()> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Replica* r = Find(topic, partition);
    if (r != nullptr && r->role == ReplicaRole::kLeader) {
      UpdateHighWatermark(*r);
    }
    listener = data_listener_;
  }
  hw_cv_.notify_all();
  if (listener) {
    listener();
  }
}

Status ReplicaManager::AwaitReplicated(const std::string& topic, int32_t partition,
                                       int32_t epoch, int64_t end_offset, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    Replica* r = Find(topic, partition);
    if (r == nullptr || r->role != ReplicaRole::kLeader || r->epoch != epoch) {
      return Status::FailedPrecondition("not_leader: leadership of " + Tp(topic, partition) +
                                        " moved before the batch was replicated");
    }
    if (r->log->high_watermark() >= end_offset) {
      return Status::Ok();
    }
    if (static_cast<int32_t>(r->state.isr.size()) < options_.min_insync_replicas) {
      return Status::Unavailable("not_enough_replicas: " + Tp(topic, partition) +
                                 " fell to " + std::to_string(r->state.isr.size()) +
                                 " in-sync replicas after the append");
    }
    if (hw_cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      return Status::Unavailable("not_enough_replicas: " + Tp(topic, partition) +
                                 " not replicated to the in-sync set within " +
                                 std::to_string(timeout_ms) + " ms");
    }
  }
}

ReplicaRole ReplicaManager::role(const std::string& topic, int32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica* r = Find(topic, partition);
  return r == nullptr ? ReplicaRole::kNone : r->role;
}

std::string ReplicaManager::LeaderUrl(const std::string& topic, int32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica* r = Find(topic, partition);
  if (r == nullptr) {
    return "";
  }
  auto it = broker_urls_.find(r->state.leader);
  return it == broker_urls_.end() ? "" : it->second;
}

std::vector<std::string> ReplicaManager::isr(const std::string& topic, int32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica* r = Find(topic, partition);
  return r == nullptr ? std::vector<std::string>{} : r->state.isr;
}

ReplicaManager::RegionView ReplicaManager::View() {
  std::lock_guard<std::mutex> lock(mu_);
  return RegionView{broker_urls_, topics_, all_states_};
}

void ReplicaManager::SetDataListener(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  data_listener_ = std::move(fn);
}

}  // namespace sluice::broker
