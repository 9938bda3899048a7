// Simulator: runs a fleet for the configured duration and writes the manifest.
//
// Threads: the caller's thread runs the scheduler (EventScheduler, waking once per tick and
// handing each tick's due events to the transports); one MQTT worker drives every site's
// MqttPublisher; `sim.http_workers` threads send HTTP requests (HttpSender). The transports'
// queues are bounded, so a slow gateway slows the scheduler instead of growing memory; the
// scheduler then catches up, so the event count never depends on speed.
// Thread-safety: RunSimulation is called once per process; `stop` may be set from a signal
// handler to end the schedule early (what was generated is still sent and recorded).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "firmware-sim/manifest.h"
#include "firmware-sim/sim_config.h"

namespace sluice::sim {

struct RunReport {
  Manifest manifest;
  int64_t elapsed_ms = 0;      // from the first scheduled event to the end of the drain
  uint64_t http_requests = 0;  // including retries
  uint64_t http_retries = 0;
};

// kUnavailable if a site's MQTT broker cannot be reached at start (nothing is sent then);
// kIOError if the manifest cannot be written (the report is lost with it). Otherwise the run
// happened, whatever the HTTP answers were.
Result<RunReport> RunSimulation(const SimConfig& config, Clock& clock,
                                const std::atomic<bool>* stop = nullptr);

// The short human summary printed at the end of a run.
std::string FormatSummary(const RunReport& report);

}  // namespace sluice::sim
