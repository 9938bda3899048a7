#include "cloud-broker/query/query_pool.h"

#include <system_error>

#include "core/thread_name.h"

namespace sluice::broker {

Result<std::unique_ptr<QueryPool>> QueryPool::Create(int threads, size_t max_waiting,
                                                     bool low_priority) {
  std::unique_ptr<QueryPool> pool(new QueryPool(max_waiting));
  for (int i = 0; i < threads; ++i) {
    try {
      pool->threads_.emplace_back([p = pool.get(), low_priority] {
        SetCurrentThreadName("query");
        if (low_priority) {
          LowerCurrentThreadPriority(10);
        }
        p->Loop();
      });
    } catch (const std::system_error& e) {
      pool->Stop();
      return Status::ResourceExhausted("cannot start query thread " + std::to_string(i + 1) +
                                       " of " + std::to_string(threads) + ": " + e.what());
    }
  }
  return pool;
}

QueryPool::~QueryPool() { Stop(); }

bool QueryPool::TrySubmit(Task task) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_ || threads_.empty() || queue_.size() >= max_waiting_ + (threads_.size() - running_)) {
    return false;  // every thread busy and max_waiting waiting
  }
  queue_.push_back(std::move(task));
  cv_.notify_one();
  return true;
}

void QueryPool::Stop() {
  std::deque<Task> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cancelled.swap(queue_);
  }
  cv_.notify_all();
  for (Task& t : cancelled) {
    t(true);
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
}

bool QueryPool::stopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

size_t QueryPool::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

size_t QueryPool::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void QueryPool::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      return;  // stopping
    }
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    lock.unlock();
    task(false);
    lock.lock();
    --running_;
  }
}

}  // namespace sluice::broker
