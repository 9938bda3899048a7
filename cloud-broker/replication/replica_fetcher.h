// ReplicaFetcher: one thread per leader broker this broker follows (Kafka's
// ReplicaFetcherThread). Each round it asks the manager which partitions it follows from that
// leader; a partition not yet truncated for its epoch first asks the leader for the end of its
// own latest epoch (OffsetForLeaderEpoch) and cuts the local log there (KIP-279: at the smaller
// of the leader's and its own end of that epoch; with no epochs at all, at its high watermark);
// then one fetch for all of them (long-poll wait_ms) appends the returned batches at the
// leader's offsets and raises the local high watermark to min(leader's, own log end).
// A refused append (a gap or an overlap: the leader's log changed under it) sends the partition
// back to truncation. Failures back off fetch_backoff_ms; role changes come from the manager.
// Thread-safety: owned by the ReplicaManager's state thread; the destructor stops and joins.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cloud-broker/replication/replica_manager.h"
#include "core/http.h"
#include "core/logging.h"

namespace sluice::broker {

class ReplicaFetcher {
 public:
  ReplicaFetcher(ReplicaManager& manager, const ReplicaManagerOptions& options,
                 std::string leader_id, std::string leader_url);
  ~ReplicaFetcher();  // RequestStop, then joins (at most one request timeout)

  // Tells the thread to stop after its current request, without waiting: a fetch in flight to a
  // leader that died or froze may take a whole request timeout, and the state thread must not
  // wait for it (a new leader could not start meanwhile).
  void RequestStop();
  bool finished() const { return finished_.load(); }  // the thread has returned

  const std::string& leader_url() const { return leader_url_; }
  // Rounds completed (tests).
  uint64_t rounds() const { return rounds_.load(); }

 private:
  void Run();
  // One round; false when it should back off.
  bool Round();
  Status Truncate(const FollowedPartition& p);
  void Wait(int64_t ms);

  ReplicaManager& manager_;
  const ReplicaManagerOptions& options_;
  const std::string leader_id_;
  const std::string leader_url_;
  std::unique_ptr<HttpClient> client_;
  RateLimitedLog warn_log_;  // a dead leader fails every fetch until the state moves on
  std::atomic<uint64_t> rounds_{0};
  std::atomic<bool> finished_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::broker
