#include "cloud-broker/server/fetch_waiter.h"

#include <algorithm>

namespace sluice::broker {

FetchWaiter::FetchWaiter() : thread_([this] { Loop(); }) {}

FetchWaiter::~FetchWaiter() { Shutdown(); }

void FetchWaiter::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool FetchWaiter::Park(const PartitionLog* log, int64_t offset, int64_t wait_ms,
                       std::function<void()> complete, uint64_t* id) {
  return ParkUntil([log, offset] { return log->end_offset() > offset; }, wait_ms,
                   std::move(complete), id);
}

bool FetchWaiter::ParkUntil(std::function<bool()> ready, int64_t wait_ms,
                            std::function<void()> complete, uint64_t* id) {
  {
    std::lock_guard lock(mu_);
    if (stop_ || waiters_.size() >= kMaxParked) {
      return false;
    }
    const uint64_t my_id = next_id_++;
    if (id != nullptr) {
      *id = my_id;
    }
    waiters_.push_back(Waiter{my_id, std::move(ready),
                              std::chrono::steady_clock::now() +
                                  std::chrono::milliseconds(wait_ms),
                              std::move(complete)});
    notified_ = true;  // re-check at once: an append may have landed before we parked
  }
  cv_.notify_all();
  return true;
}

void FetchWaiter::Cancel(uint64_t id) {
  std::function<void()> dropped;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->id == id) {
      dropped = std::move(it->complete);
      waiters_.erase(it);
      return;
    }
  }
}

void FetchWaiter::Notify() {
  {
    std::lock_guard lock(mu_);
    if (waiters_.empty()) {
      return;
    }
    notified_ = true;
  }
  cv_.notify_all();
}

size_t FetchWaiter::parked() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

void FetchWaiter::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    if (waiters_.empty()) {
      cv_.wait(lock, [this] { return stop_ || notified_; });
    } else {
      auto next = std::min_element(waiters_.begin(), waiters_.end(),
                                   [](const Waiter& a, const Waiter& b) {
                                     return a.deadline < b.deadline;
                                   })->deadline;
      cv_.wait_until(lock, next, [this] { return stop_ || notified_; });
    }
    notified_ = false;
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::function<void()>> ready;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (stop_ || now >= it->deadline || it->ready()) {
        ready.push_back(std::move(it->complete));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    const bool stopping = stop_;
    lock.unlock();
    for (auto& done : ready) {
      done();
    }
    lock.lock();
    if (stopping && waiters_.empty()) {
      return;
    }
  }
}

}  // namespace sluice::broker
