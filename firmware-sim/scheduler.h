// EventScheduler: the one global schedule of the fleet's events (no thread per device). Device d
// emits its k-th event (seq k, from 1, dense) at phase_d + (k-1) * period, period = 1 / rate,
// for every such time before the duration ends. The caller advances time; the schedule hands
// out what is due, so the number of events for a seed and config does not depend on how fast
// the transports keep up (a late scheduler catches up rather than skipping events).
// Thread-safety: not thread-safe; driven by the simulator's scheduler thread.
#pragma once

#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

#include "firmware-sim/fleet.h"
#include "firmware-sim/sim_config.h"

namespace sluice::sim {

class EventScheduler {
 public:
  // `start_ms` is the wall-clock time of elapsed 0, used for the events' `ts`.
  EventScheduler(const SimConfig& config, const std::vector<Device>& fleet, int64_t start_ms);

  // Appends every event due at or before `elapsed_us` (in due order) to *out.
  void TakeDue(int64_t elapsed_us, std::vector<Event>* out);
  // Stops the schedule early (e.g. on SIGINT): nothing more becomes due.
  void Cancel();
  bool Done() const { return heap_.empty(); }
  // Elapsed time of the next due event (or -1 when done).
  int64_t NextDueUs() const { return heap_.empty() ? -1 : heap_.top().first; }
  int64_t period_us() const { return period_us_; }

  // Number of events device `d` sends over the whole run.
  static uint64_t EventsFor(const Device& d, int64_t period_us, int64_t duration_us);
  static int64_t PeriodUs(double rate_per_device);

 private:
  using Slot = std::pair<int64_t, int>;  // (due elapsed us, device index)
  const SimConfig& config_;
  const std::vector<Device>& fleet_;
  int64_t start_ms_;
  int64_t period_us_;
  int64_t duration_us_;
  std::vector<uint64_t> next_seq_;
  std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> heap_;
};

}  // namespace sluice::sim
