// ReplicaManager, the leader's side of the peer protocol (Fetch, EpochEnd), in-sync set
// maintenance, and the fetcher bookkeeping.
#include <algorithm>

#include "cloud-broker/replication/replica_fetcher.h"
#include "cloud-broker/replication/replica_manager.h"
#include "core/logging.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "replica";

std::string Tp(const std::string& topic, int32_t p) { return topic + "-" + std::to_string(p); }

}  // namespace

ReplicaFetchResponse ReplicaManager::Fetch(const ReplicaFetchRequest& request, bool* has_data) {
  struct Read {
    size_t index;
    PartitionLog* log;
    int64_t from;
  };
  ReplicaFetchResponse out;
  std::vector<Read> reads;
  *has_data = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = NowMs();
    for (const ReplicaFetchPartition& fp : request.partitions) {
      ReplicaFetchPartitionResult pr;
      pr.topic = fp.topic;
      pr.partition = fp.partition;
      Replica* r = Find(fp.topic, fp.partition);
      if (r == nullptr || r->role != ReplicaRole::kLeader) {
        pr.error = "not_leader";
      } else if (fp.leader_epoch < r->epoch) {
        pr.error = "fenced_leader_epoch";
      } else if (fp.leader_epoch > r->epoch) {
        pr.error = "unknown_leader_epoch";
      } else if (!r->state.IsReplica(request.replica_id) ||
                 request.replica_id == options_.broker_id) {
        pr.error = "not_replica";
      } else if (auto reg = broker_incarnations_.find(request.replica_id);
                 reg != broker_incarnations_.end() && request.incarnation != reg->second) {
        // KIP-380: a process of another incarnation of this broker (a paused one resumed after
        // a restart, say) must not count as the follower's progress: its log is not the one
        // registered now.
        pr.error = "stale_broker_epoch";
      } else if (fp.fetch_offset > r->log->log_end_offset() ||
                 fp.fetch_offset < r->log->start_offset()) {
        pr.error = "offset_out_of_range";
      } else {
        Progress& p = r->followers[request.replica_id];
        const int64_t leader_end = r->log->log_end_offset();
        // Kafka's rule: caught up if it has what the leader had at its previous fetch (or now).
        if (fp.fetch_offset >= leader_end || fp.fetch_offset >= p.leader_end_at_last_fetch) {
          p.last_caught_up_ms = now;
        }
        p.log_end = fp.fetch_offset;
        p.last_fetch_ms = now;
        p.leader_end_at_last_fetch = leader_end;
        UpdateHighWatermark(*r);
        if (fp.fetch_offset < leader_end) {
          reads.push_back({out.partitions.size(), r->log, fp.fetch_offset});
        }
      }
      if (!pr.error.empty()) {
        *has_data = true;  // an error is an answer
      }
      out.partitions.push_back(std::move(pr));
    }
  }
  hw_cv_.notify_all();  // follower progress may have moved high watermarks
  int64_t budget = request.max_bytes;
  for (const Read& rd : reads) {
    ReplicaFetchPartitionResult& pr = out.partitions[rd.index];
    if (budget <= 0) {
      break;
    }
    Result<LogBatches> b = rd.log->ReadBatches(rd.from, static_cast<size_t>(budget));
    if (!b.ok()) {
      pr.error = b.status().code() == StatusCode::kInvalidArgument ? "offset_out_of_range"
                                                                   : "storage_error";
      LogWarn(kComponent, Tp(pr.topic, pr.partition) + ": fetch from " +
                              std::to_string(rd.from) + ": " + b.status().ToString());
      *has_data = true;
      continue;
    }
    for (std::string& batch : b->batches) {
      budget -= static_cast<int64_t>(batch.size());
      pr.records += batch;
    }
    *has_data = *has_data || !pr.records.empty();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (ReplicaFetchPartitionResult& pr : out.partitions) {
      Replica* r = Find(pr.topic, pr.partition);
      if (r != nullptr && pr.error.empty()) {
        pr.high_watermark = r->log->high_watermark();
        pr.log_end_offset = r->log->log_end_offset();
        pr.log_start_offset = r->log->start_offset();
      }
    }
  }
  return out;
}

ReplicaManager::Stats ReplicaManager::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  Stats st;
  for (auto& [key, r] : replicas_) {
    if (r.role == ReplicaRole::kFollower) {
      ++st.following;
    }
    if (r.role != ReplicaRole::kLeader || !r.ready) {
      continue;
    }
    ++st.leading;
    st.under_replicated += r.state.isr.size() < r.state.replicas.size() ? 1 : 0;
    st.under_min_isr +=
        static_cast<int32_t>(r.state.isr.size()) < options_.min_insync_replicas ? 1 : 0;
    const int64_t end = r.log->log_end_offset();
    for (const std::string& id : r.state.isr) {
      auto f = r.followers.find(id);
      if (f != r.followers.end() && f->second.log_end >= 0) {
        st.max_follower_lag = std::max(st.max_follower_lag, end - f->second.log_end);
      }
    }
  }
  return st;
}

bool ReplicaManager::HasDataFor(const ReplicaFetchRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const ReplicaFetchPartition& fp : request.partitions) {
    Replica* r = Find(fp.topic, fp.partition);
    if (r == nullptr || r->role != ReplicaRole::kLeader || fp.leader_epoch != r->epoch ||
        r->log->log_end_offset() > fp.fetch_offset) {
      return true;
    }
  }
  return false;
}

EpochEndResponse ReplicaManager::EpochEnd(const EpochEndRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  EpochEndResponse out;
  Replica* r = Find(request.topic, request.partition);
  if (r == nullptr || r->role != ReplicaRole::kLeader) {
    out.error = "not_leader";
  } else if (request.current_leader_epoch < r->epoch) {
    out.error = "fenced_leader_epoch";
  } else if (request.current_leader_epoch > r->epoch) {
    out.error = "unknown_leader_epoch";
  } else {
    const EpochEndOffset e = r->log->EndOffsetForEpoch(request.leader_epoch);
    out.leader_epoch = e.epoch;
    out.end_offset = e.end_offset;
  }
  return out;
}

void ReplicaManager::MaintainIsr() {
  struct Change {
    std::string topic;
    int32_t partition;
    int64_t mod_revision;
    PartitionState next;
  };
  std::vector<Change> changes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = NowMs();
    for (auto& [key, r] : replicas_) {
      if (r.role != ReplicaRole::kLeader) {
        continue;
      }
      const int64_t hw = r.log->high_watermark();
      std::vector<std::string> isr;
      for (const std::string& id : r.state.replicas) {  // replica order
        if (id == options_.broker_id) {
          isr.push_back(id);
          continue;
        }
        const Progress& p = r.followers[id];
        const bool lagging = now - p.last_caught_up_ms > options_.replica_lag_max_ms;
        // Back in only on the evidence of a fetch just now, from a broker registered now: a
        // dead follower's last progress must not undo the controller removing it (they would
        // take turns forever, and acks=all would wait on the dead one).
        const bool fetching = p.last_fetch_ms >= 0 &&
                              now - p.last_fetch_ms <= options_.fetch_wait_ms +
                                                           2 * options_.state_poll_ms;
        const bool rejoins = !lagging && fetching && p.log_end >= 0 && p.log_end >= hw &&
                             broker_urls_.count(id) > 0;
        if (r.state.InIsr(id) ? !lagging : rejoins) {
          isr.push_back(id);
        }
      }
      if (isr != r.state.isr) {
        PartitionState next = r.state;
        next.isr = isr;
        next.version += 1;
        changes.push_back({r.topic, r.partition, r.mod_revision, std::move(next)});
      }
    }
  }
  for (Change& c : changes) {
    const std::string key = PartitionKey(options_.region, c.topic, c.partition);
    Result<EtcdTxnResult> txn = etcd_.Txn({EtcdCompare::ModRevisionIs(key, c.mod_revision)},
                                          {EtcdOp::Put(key, PartitionStateJson(c.next))});
    std::lock_guard<std::mutex> lock(mu_);
    Replica* r = Find(c.topic, c.partition);
    if (r == nullptr) {
      continue;
    }
    if (!txn.ok()) {
      LogWarn(kComponent, Tp(c.topic, c.partition) + ": in-sync set change not written: " +
                              txn.status().ToString());
      continue;
    }
    if (!txn->succeeded) {
      // The state changed under this leader (a new controller decision, maybe a new leader):
      // step down now, so a deposed leader acknowledges nothing; the next read decides again.
      LogWarn(kComponent, Tp(c.topic, c.partition) + ": in-sync set swap refused; stepping "
                                                     "down from epoch " + std::to_string(r->epoch));
      r->role = ReplicaRole::kNone;
      roles_generation_.fetch_add(1);
      continue;
    }
    LogInfo(kComponent, Tp(c.topic, c.partition) + ": in-sync set " +
                            std::to_string(r->state.isr.size()) + " -> " +
                            std::to_string(c.next.isr.size()) + " replicas");
    const bool shrink = c.next.isr.size() < r->state.isr.size();
    (shrink ? isr_shrinks_ : isr_expands_).fetch_add(1);
    if (Counter* m = shrink ? isr_shrinks_metric_ : isr_expands_metric_) {
      m->Inc();
    }
    r->state = c.next;
    r->mod_revision = txn->revision;
    if (r->role == ReplicaRole::kLeader) {
      UpdateHighWatermark(*r);
    }
  }
  if (!changes.empty()) {
    hw_cv_.notify_all();
  }
}

std::vector<FollowedPartition> ReplicaManager::FollowedFrom(const std::string& leader_id) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<FollowedPartition> out;
  for (auto& [key, r] : replicas_) {
    if (r.role == ReplicaRole::kFollower && r.state.leader == leader_id) {
      out.push_back({r.topic, r.partition, r.epoch, r.truncated, r.log, r.append_mu});
    }
  }
  return out;
}

void ReplicaManager::MarkTruncated(const std::string& topic, int32_t partition, int32_t epoch,
                                   bool truncated) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica* r = Find(topic, partition);
  if (r != nullptr && r->role == ReplicaRole::kFollower && r->epoch == epoch) {
    r->truncated = truncated;
  }
}

bool ReplicaManager::StillFollowing(const std::string& topic, int32_t partition, int32_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  Replica* r = Find(topic, partition);
  return r != nullptr && r->role == ReplicaRole::kFollower && r->epoch == epoch;
}

void ReplicaManager::OnFollowerProgress() {
  std::function<void()> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    listener = data_listener_;
  }
  hw_cv_.notify_all();
  if (listener) {
    listener();
  }
}

void ReplicaManager::ReconcileFetchers() {
  std::map<std::string, std::string> wanted;  // leader id -> url
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, r] : replicas_) {
      if (r.role == ReplicaRole::kFollower) {
        auto url = broker_urls_.find(r.state.leader);
        if (url != broker_urls_.end()) {
          wanted[r.state.leader] = url->second;
        }
      }
    }
  }
  std::vector<std::unique_ptr<ReplicaFetcher>> finished;
  {
    std::lock_guard<std::mutex> lock(fetchers_mu_);
    for (auto it = fetchers_.begin(); it != fetchers_.end();) {
      auto w = wanted.find(it->first);
      if (w == wanted.end() || w->second != it->second->leader_url()) {
        it->second->RequestStop();  // never wait here for a request to a dead leader
        retiring_.push_back(std::move(it->second));
        it = fetchers_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [id, url] : wanted) {
      if (fetchers_.count(id) == 0) {
        fetchers_[id] = std::make_unique<ReplicaFetcher>(*this, options_, id, url);
      }
    }
    for (auto it = retiring_.begin(); it != retiring_.end();) {
      if ((*it)->finished()) {
        finished.push_back(std::move(*it));
        it = retiring_.erase(it);
      } else {
        ++it;
      }
    }
  }
  finished.clear();  // joins threads that have returned already, no lock held
}

}  // namespace sluice::broker
