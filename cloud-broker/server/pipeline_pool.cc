#include "cloud-broker/server/pipeline_pool.h"

#include "core/thread_name.h"

namespace sluice::broker {

PipelinePool::PipelinePool(int threads) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      SetCurrentThreadName("produce-wait");
      Run();
    });
  }
}

PipelinePool::~PipelinePool() { Stop(); }

bool PipelinePool::TrySubmit(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_ || static_cast<int>(tasks_.size()) >= idle_) {
    return false;  // no idle thread for it: the caller runs it
  }
  tasks_.push_back(std::move(task));
  cv_.notify_one();
  return true;
}

void PipelinePool::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ++idle_;
    cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
    --idle_;
    if (tasks_.empty()) {
      return;  // stopping, nothing left
    }
    std::function<void()> task = std::move(tasks_.back());
    tasks_.pop_back();
    lock.unlock();
    task();
    lock.lock();
  }
}

void PipelinePool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) {
      t.join();
    }
  }
}

}  // namespace sluice::broker
