// Clock: the time seam. Production code takes a Clock&; tests pass a ManualClock.
// Thread-safety: implementations are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, milliseconds since the Unix epoch (record timestamps).
  virtual int64_t NowMs() const = 0;
  // Monotonic time in microseconds (timeouts, linger, backoff).
  virtual int64_t MonotonicUs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  int64_t MonotonicUs() const override;
  static SystemClock& Instance();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 1'700'000'000'000) : now_us_(now_ms * 1000) {}
  int64_t NowMs() const override { return now_us_.load() / 1000; }
  int64_t MonotonicUs() const override { return now_us_.load(); }
  void AdvanceMs(int64_t ms) { now_us_ += ms * 1000; }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace sluice
