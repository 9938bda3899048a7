// QueryPool: the threads that run GET /v1/query, so a query never runs on (and never starves) the
// HTTP threads that produce and /healthz need. A query is a linear scan of every partition
// (query.h); 16 concurrent ones on a 2 M-record region used to hold every HTTP thread for
// seconds. Here `threads` queries run at once (query.threads), at most `max_waiting` more wait in
// FIFO order (query.max_waiting), and TrySubmit refuses the rest at once (the caller answers 503
// with Retry-After). Each query also has a time budget (query.timeout, checked inside the scan).
// Stop(): tasks still waiting run with cancelled=true (they answer at once), running ones finish;
// then the threads are joined. No thread is created after Create().
// Thread-safety: thread-safe.
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

class QueryPool {
 public:
  // cancelled: the pool is stopping and the query was never started; answer without scanning.
  using Task = std::function<void(bool cancelled)>;

  // low_priority: the threads run at nice 10 (query.priority: low), so queries take the CPU
  // that produce, fetch and /healthz leave over. kResourceExhausted if the system refuses a
  // thread (a start-up error).
  static Result<std::unique_ptr<QueryPool>> Create(int threads, size_t max_waiting,
                                                   bool low_priority = false);
  ~QueryPool();  // Stop()
  QueryPool(const QueryPool&) = delete;
  QueryPool& operator=(const QueryPool&) = delete;

  // Queues `task` for the next free thread; false (task dropped, not run) when max_waiting tasks
  // wait already, or after Stop().
  bool TrySubmit(Task task);
  void Stop();  // idempotent

  bool stopped() const;
  size_t running() const;
  size_t waiting() const;

 private:
  QueryPool(size_t max_waiting) : max_waiting_(max_waiting) {}
  void Loop();

  const size_t max_waiting_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  size_t running_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::broker
