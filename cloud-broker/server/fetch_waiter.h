// FetchWaiter: long-poll for fetches (wait_ms). A fetch at the end of a partition is parked
// here instead of holding an HTTP pool thread; it completes when the partition's readable end
// passes its offset (PartitionLog's on_visible hook calls Notify) or when its deadline passes,
// whichever is first. One thread sleeps on a condition variable until the next deadline or a
// Notify, so a quiet partition costs nothing and a consumer never spins.
// Thread-safety: thread-safe. Completions run on the waiter's thread, outside its lock.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "cloud-broker/log/partition_log.h"

namespace sluice::broker {

class FetchWaiter {
 public:
  static constexpr size_t kMaxParked = 4096;
  FetchWaiter();
  ~FetchWaiter();  // Shutdown()
  // Completes every parked fetch, refuses new ones and joins the thread. Idempotent. Call it
  // before whatever the completions use goes away.
  void Shutdown();
  FetchWaiter(const FetchWaiter&) = delete;
  FetchWaiter& operator=(const FetchWaiter&) = delete;

  // Parks a fetch of `log` at `offset` until log->end_offset() > offset or `wait_ms` passed,
  // then calls `complete` once. False (and nothing parked) when kMaxParked are parked already.
  // *id (if non-null) names it for Cancel.
  bool Park(const PartitionLog* log, int64_t offset, int64_t wait_ms,
            std::function<void()> complete, uint64_t* id = nullptr);
  // The same for any condition (a follower's fetch over several partitions): `ready` runs on
  // the waiter's thread under its lock, so it must be cheap and must not call back into it.
  bool ParkUntil(std::function<bool()> ready, int64_t wait_ms, std::function<void()> complete,
                 uint64_t* id = nullptr);
  // Drops a parked fetch without completing it (its client went away), freeing its slot. No-op
  // when it already completed.
  void Cancel(uint64_t id);
  // Some partition has new readable records: re-check the parked fetches.
  void Notify();
  size_t parked() const;

 private:
  struct Waiter {
    uint64_t id;
    std::function<bool()> ready;
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> complete;
  };
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Waiter> waiters_;
  bool notified_ = false;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::broker
