// Exponential backoff with full jitter ("decorrelated" variants overshoot; full jitter spreads
// retries of many gateways evenly). Thread-safety: not thread-safe; one per retry loop.
#pragma once

#include <cstdint>
#include <random>

namespace sluice {

class Backoff {
 public:
  Backoff(int64_t initial_ms, int64_t max_ms, uint64_t seed = std::random_device{}());
  // Delay before the next attempt: uniform in [cap/2, cap], cap = min(max, initial * 2^failures).
  int64_t NextDelayMs();
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace sluice
