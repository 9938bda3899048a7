// AppendPool: a fixed set of threads that append one produce request's partitions in parallel,
// so that their fsyncs (log.flush: always) overlap (docs/BENCHMARKS.md, "Drain").
//
// RunAll(n, task) runs task(0..n-1) and returns when all have run. The calling thread takes part:
// it and up to n-1 pool threads claim indexes from one counter, so a request always makes
// progress on its own thread even when every pool thread is busy with other requests (no task
// waits for a pool thread that may never come, and nothing can deadlock). No thread is created
// after Create(): the old per-request std::thread could fail under a thread limit, and a failed
// std::thread constructor with joinable siblings aborted the broker (std::terminate).
// Pending helper entries are bounded (kMaxQueuedPerThread per thread); past that the caller
// runs the remaining tasks itself.
// threads == 0: RunAll runs every task on the calling thread, one after another.
// Thread-safety: RunAll is thread-safe; Stop()/the destructor must not race RunAll.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"

namespace sluice::broker {

class AppendPool {
 public:
  static constexpr size_t kMaxQueuedPerThread = 64;

  // Starts `threads` threads named "append". kResourceExhausted if the system refuses one (the
  // ones started are stopped again): a start-up error, never a produce-time abort.
  static Result<std::unique_ptr<AppendPool>> Create(int threads);
  ~AppendPool();  // Stop()
  AppendPool(const AppendPool&) = delete;
  AppendPool& operator=(const AppendPool&) = delete;

  // Runs task(i) for every i in [0, n) and returns once all have returned. task must not
  // throw; it may run on any pool thread or on the caller.
  void RunAll(size_t n, const std::function<void(size_t)>& task);

  // Joins the threads; RunAll afterwards runs everything on the caller. Idempotent.
  void Stop();
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  struct Batch;
  AppendPool() = default;
  void Loop();
  static void Work(Batch& b);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> queue_;  // one entry per helper asked for
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::broker
