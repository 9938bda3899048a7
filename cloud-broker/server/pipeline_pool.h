// PipelinePool: threads of their own for produce requests that may wait for the batch they follow
// (`Sluice-After-Seq`, cloud-broker/producers/producer_table.h "Pipelining"). Such a request can
// wait up to the arrival grace for its predecessor; on the HTTP server's few threads (4) that
// wait used to block the very request it waited for, so the broker capped waiters at
// http.threads - 1 and refused the rest with 409: a gateway with 8 batches in flight, or several
// gateways draining at once, then spent its time re-sending. Handed to this pool, a waiting
// request holds one of `threads` cheap, mostly idle threads instead.
// TrySubmit never queues: it starts the task on an idle thread or returns false (the caller then
// runs it inline, as before). Stop() lets running tasks finish, then joins.
// Thread-safety: thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::broker {

class PipelinePool {
 public:
  explicit PipelinePool(int threads);
  ~PipelinePool();
  PipelinePool(const PipelinePool&) = delete;
  PipelinePool& operator=(const PipelinePool&) = delete;

  bool TrySubmit(std::function<void()> task);
  void Stop();
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> tasks_;  // at most idle_ long
  int idle_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::broker
