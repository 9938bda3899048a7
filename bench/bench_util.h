// Tiny timing helpers for the benchmarks: each figure is printed beside a baseline measured in
// the same run, so numbers from different machines stay comparable.
// Thread-safety: none needed; benchmarks are single-threaded drivers.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace sluice::bench {

// Runs `body` (which processes `units` units per call) repeatedly for at least `min_seconds`
// and returns units per second.
inline double Rate(const std::function<void()>& body, double units, double min_seconds = 1.0) {
  body();  // warm up
  int64_t iters = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    body();
    ++iters;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < min_seconds);
  return units * static_cast<double>(iters) / elapsed;
}

inline void Row(const std::string& what, double value, const std::string& unit,
                const std::string& baseline_name, double baseline) {
  std::printf("%-44s %12.1f %-10s | baseline %-28s %12.1f %-10s (%5.1f%%)\n", what.c_str(), value,
              unit.c_str(), baseline_name.c_str(), baseline, unit.c_str(),
              baseline > 0 ? 100.0 * value / baseline : 0.0);
}

}  // namespace sluice::bench
