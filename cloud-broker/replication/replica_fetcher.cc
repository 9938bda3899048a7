#include "cloud-broker/replication/replica_fetcher.h"

#include <algorithm>

#include "cloud-broker/log/batch_frame.h"
#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "fetcher";

std::string Tp(const std::string& topic, int32_t p) { return topic + "-" + std::to_string(p); }

// Splits concatenated RecordBatch v2 bytes into whole batches by their framing (the log's own
// PeekBatchFrame). kCorruption if they do not add up.
Result<std::vector<std::string>> SplitBatches(const std::string& bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    BatchFrame frame;
    const std::string_view rest(bytes.data() + pos, bytes.size() - pos);
    if (!PeekBatchFrame(rest, &frame) || frame.total_size() > rest.size()) {
      return Status::Corruption("a batch at byte " + std::to_string(pos) +
                                " is cut short or not a RecordBatch v2");
    }
    out.emplace_back(rest.substr(0, frame.total_size()));
    pos += frame.total_size();
  }
  return out;
}

}  // namespace

ReplicaFetcher::ReplicaFetcher(ReplicaManager& manager, const ReplicaManagerOptions& options,
                               std::string leader_id, std::string leader_url)
    : manager_(manager),
      options_(options),
      leader_id_(std::move(leader_id)),
      leader_url_(std::move(leader_url)) {
  HttpClientOptions http = options_.peer_http;
  http.timeout_ms = std::max<int64_t>(http.timeout_ms, options_.fetch_wait_ms + 5000);
  client_ = std::make_unique<HttpClient>(leader_url_, http);
  thread_ = std::thread([this] {
    SetCurrentThreadName("fetch-" + leader_id_);
    Run();
    finished_ = true;
  });
}

ReplicaFetcher::~ReplicaFetcher() {
  RequestStop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void ReplicaFetcher::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

void ReplicaFetcher::Wait(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_; });
}

void ReplicaFetcher::Run() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) {
        return;
      }
    }
    const bool ok = Round();
    rounds_.fetch_add(1);
    if (!ok) {
      Wait(options_.fetch_backoff_ms);
    }
  }
}

Status ReplicaFetcher::Truncate(const FollowedPartition& p) {
  PartitionLog& log = *p.log;
  const int32_t own_epoch = log.latest_epoch();
  int64_t target = log.log_end_offset();
  if (own_epoch < 0) {
    // No epochs recorded (nothing appended under replication yet): nothing past the high
    // watermark can be trusted to match the leader's.
    target = std::min(target, log.high_watermark());
  } else {
    EpochEndRequest req{p.topic, p.partition, own_epoch, p.epoch};
    Result<HttpResponse> r = client_->Send("POST", "/v1/replication/epoch_end",
                                           EncodeEpochEndRequest(req), "application/json",
                                           options_.peer_headers);
    if (!r.ok()) {
      return r.status();
    }
    if (r->status != 200) {
      return Status::Unavailable("epoch_end answered " + std::to_string(r->status) + ": " +
                                 r->body.substr(0, 200));
    }
    Result<EpochEndResponse> e = DecodeEpochEndResponse(r->body);
    if (!e.ok()) {
      return e.status();
    }
    if (!e->error.empty()) {
      return Status::Unavailable("epoch_end: " + e->error);
    }
    if (e->leader_epoch < 0) {
      target = std::min(target, log.high_watermark());
    } else {
      target = std::min(target, e->end_offset);
      if (e->leader_epoch < own_epoch) {
        // The leader never had our latest epoch: cut at the end of the epoch both know.
        const EpochEndOffset own = log.EndOffsetForEpoch(e->leader_epoch);
        if (!own.undefined()) {
          target = std::min(target, own.end_offset);
        }
      }
    }
  }
  target = std::max(target, log.start_offset());
  if (target < log.log_end_offset()) {
    LogInfo(kComponent, Tp(p.topic, p.partition) + ": truncating from " +
                            std::to_string(log.log_end_offset()) + " to " +
                            std::to_string(target) + " (epoch " + std::to_string(p.epoch) +
                            " of leader " + leader_id_ + ")");
  }
  return log.TruncateTo(target);
}

bool ReplicaFetcher::Round() {
  std::vector<FollowedPartition> followed = manager_.FollowedFrom(leader_id_);
  if (followed.empty()) {
    Wait(options_.state_poll_ms);
    return true;
  }
  ReplicaFetchRequest req;
  req.replica_id = options_.broker_id;
  req.incarnation = manager_.incarnation();
  req.max_bytes = options_.fetch_max_bytes;
  req.wait_ms = options_.fetch_wait_ms;
  bool all_ok = true;
  for (const FollowedPartition& p : followed) {
    if (!p.truncated) {
      std::lock_guard<std::mutex> appending(*p.append_mu);
      if (!manager_.StillFollowing(p.topic, p.partition, p.epoch)) {
        continue;
      }
      Status st = Truncate(p);
      if (!st.ok()) {
        warn_log_.Log(LogLevel::kWarn, kComponent, "truncate",
                      Tp(p.topic, p.partition) + ": truncation against " + leader_id_ + ": " +
                          st.ToString());
        all_ok = false;
        continue;
      }
      manager_.MarkTruncated(p.topic, p.partition, p.epoch, true);
    }
    req.partitions.push_back({p.topic, p.partition, p.log->log_end_offset(), p.epoch});
  }
  if (req.partitions.empty()) {
    return false;
  }
  Result<HttpResponse> r = client_->Send("POST", "/v1/replication/fetch",
                                         EncodeFetchRequest(req), "application/json",
                                         options_.peer_headers);
  if (!r.ok() || r->status != 200) {
    warn_log_.Log(LogLevel::kWarn, kComponent, "fetch",
                  "fetch from " + leader_id_ + " at " + leader_url_ + ": " +
                      (r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 200)
                              : r.status().ToString()));
    return false;
  }
  Result<ReplicaFetchResponse> resp = DecodeFetchResponse(r->body);
  if (!resp.ok()) {
    LogWarn(kComponent, "fetch from " + leader_id_ + ": " + resp.status().ToString());
    return false;
  }
  bool progressed = false;
  for (const ReplicaFetchPartitionResult& pr : resp->partitions) {
    auto it = std::find_if(followed.begin(), followed.end(), [&](const FollowedPartition& f) {
      return f.topic == pr.topic && f.partition == pr.partition;
    });
    if (it == followed.end()) {
      continue;
    }
    if (!pr.error.empty()) {
      // not_leader / fenced_leader_epoch: the state thread will give the partition its new role.
      all_ok = false;
      continue;
    }
    Result<std::vector<std::string>> batches = SplitBatches(pr.records);
    if (!batches.ok()) {
      LogWarn(kComponent, Tp(pr.topic, pr.partition) + ": " + batches.status().ToString());
      all_ok = false;
      continue;
    }
    std::lock_guard<std::mutex> appending(*it->append_mu);
    if (!manager_.StillFollowing(pr.topic, pr.partition, it->epoch)) {
      continue;  // it leads now, or follows another epoch: these bytes are stale
    }
    for (std::string& b : *batches) {
      Result<int64_t> base = it->log->AppendAsFollower(std::move(b));
      if (!base.ok()) {
        LogWarn(kComponent, Tp(pr.topic, pr.partition) + ": " + base.status().ToString() +
                                "; truncating again");
        manager_.MarkTruncated(pr.topic, pr.partition, it->epoch, false);
        all_ok = false;
        break;
      }
      progressed = true;
    }
    const int64_t hw = std::min(pr.high_watermark, it->log->log_end_offset());
    if (hw > it->log->high_watermark()) {
      Result<int64_t> set = it->log->SetHighWatermark(hw);
      progressed = progressed || set.ok();
    }
  }
  if (progressed) {
    manager_.OnFollowerProgress();
  }
  return all_ok;
}

}  // namespace sluice::broker
