#include "cloud-broker/produce/append_pool.h"

#include <algorithm>
#include <atomic>
#include <system_error>

#include "core/thread_name.h"

namespace sluice::broker {

// One RunAll call. Shared with the queue entries, which may be taken by a pool thread after the
// call returned: such a late helper finds no index left and never touches `task`.
struct AppendPool::Batch {
  size_t n = 0;
  const std::function<void(size_t)>* task = nullptr;
  std::atomic<size_t> next{0};  // next index to claim
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;  // guarded by mu
};

Result<std::unique_ptr<AppendPool>> AppendPool::Create(int threads) {
  std::unique_ptr<AppendPool> pool(new AppendPool());
  for (int i = 0; i < threads; ++i) {
    try {
      pool->threads_.emplace_back([p = pool.get()] {
        SetCurrentThreadName("append");
        p->Loop();
      });
    } catch (const std::system_error& e) {
      pool->Stop();
      return Status::ResourceExhausted("cannot start append thread " + std::to_string(i + 1) +
                                       " of " + std::to_string(threads) + ": " + e.what());
    }
  }
  return pool;
}

AppendPool::~AppendPool() { Stop(); }

void AppendPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
}

void AppendPool::Work(Batch& b) {
  while (true) {
    const size_t i = b.next.fetch_add(1);
    if (i >= b.n) {
      return;
    }
    (*b.task)(i);
    std::lock_guard<std::mutex> lock(b.mu);
    if (++b.done == b.n) {
      b.cv.notify_all();
    }
  }
}

void AppendPool::RunAll(size_t n, const std::function<void(size_t)>& task) {
  if (n == 0) {
    return;
  }
  auto batch = std::make_shared<Batch>();
  batch->n = n;
  batch->task = &task;
  if (n > 1) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stop_) {
      const size_t cap = kMaxQueuedPerThread * threads_.size();
      const size_t helpers = std::min({n - 1, threads_.size(), cap - std::min(cap, queue_.size())});
      for (size_t h = 0; h < helpers; ++h) {
        queue_.push_back(batch);
      }
      if (helpers > 0) {
        cv_.notify_all();
      }
    }
  }
  Work(*batch);  // the caller claims indexes too
  std::unique_lock<std::mutex> lock(batch->mu);
  batch->cv.wait(lock, [&] { return batch->done == batch->n; });
}

void AppendPool::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      return;  // stopping; RunAll callers never wait for a helper, so nothing is stranded
    }
    std::shared_ptr<Batch> b = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Work(*b);
    lock.lock();
  }
}

}  // namespace sluice::broker
