#include "firmware-sim/scheduler.h"

#include <algorithm>
#include <cmath>

namespace sluice::sim {

int64_t EventScheduler::PeriodUs(double rate_per_device) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::llround(1e6 / rate_per_device)));
}

uint64_t EventScheduler::EventsFor(const Device& d, int64_t period_us, int64_t duration_us) {
  if (d.phase_us >= duration_us) return 0;
  return static_cast<uint64_t>((duration_us - d.phase_us - 1) / period_us) + 1;
}

EventScheduler::EventScheduler(const SimConfig& config, const std::vector<Device>& fleet,
                               int64_t start_ms)
    : config_(config),
      fleet_(fleet),
      start_ms_(start_ms),
      period_us_(PeriodUs(config.rate_per_device)),
      duration_us_(config.duration_ms * 1000),
      next_seq_(fleet.size(), 1) {
  for (const Device& d : fleet_) {
    if (d.phase_us < duration_us_) heap_.push({d.phase_us, d.index});
  }
}

void EventScheduler::TakeDue(int64_t elapsed_us, std::vector<Event>* out) {
  const auto& sensors = config_.sensors;
  while (!heap_.empty() && heap_.top().first <= elapsed_us) {
    auto [due_us, dev] = heap_.top();
    heap_.pop();
    uint64_t seq = next_seq_[static_cast<size_t>(dev)]++;
    Event e;
    e.device = dev;
    e.seq = seq;
    e.sensor = sensors[static_cast<size_t>((seq - 1) % sensors.size())];
    e.ts_ms = start_ms_ + due_us / 1000;
    e.value = SensorValue(config_.seed, dev, seq);
    out->push_back(std::move(e));
    int64_t next = due_us + period_us_;
    if (next < duration_us_) heap_.push({next, dev});
  }
}

void EventScheduler::Cancel() {
  while (!heap_.empty()) heap_.pop();
}

}  // namespace sluice::sim
