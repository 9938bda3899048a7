// Manifest: the simulator's record of what it sent, written as JSON when a run ends. It is the
// contract the integration tests check the pipeline against; the schema is in README.md.
// Thread-safety: plain values and functions; build it once the run is over.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "firmware-sim/fleet.h"
#include "firmware-sim/ledger.h"
#include "firmware-sim/sim_config.h"

namespace sluice::sim {

struct ManifestTotals {
  uint64_t sent = 0;         // every event generated = mqtt_sent + mqtt_errors + http_sent
  uint64_t mqtt_sent = 0;    // MQTT publishes completed without error
  uint64_t http_sent = 0;    // events offered over HTTP = http_acked + http_failed
  uint64_t http_acked = 0;   // events in requests answered 202
  uint64_t http_failed = 0;  // events whose request failed for good (4xx, or retries exhausted)
  uint64_t mqtt_errors = 0;  // MQTT publishes that failed (never reached the broker's socket)
};

struct ManifestDevice {
  std::string device_id;
  std::string site;
  std::string country;
  std::string transport;  // "mqtt" | "http"
  std::string http_mode;  // HTTP only: "single" | "batch"
  uint64_t sent = 0;
  uint64_t first_seq = 0;  // 1, or 0 when the device sent nothing
  uint64_t last_seq = 0;   // == sent
  std::vector<SeqRange> acked_seqs;   // HTTP only
  std::vector<SeqRange> failed_seqs;  // both transports
};

struct Manifest {
  uint64_t seed = 0;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;
  ManifestTotals totals;
  std::vector<ManifestDevice> devices;
};

// Builds the manifest from the ledger. Events still pending count as failed.
Manifest BuildManifest(const SimConfig& config, const std::vector<Device>& fleet,
                       const Ledger& ledger, int64_t started_ms, int64_t finished_ms);

std::string ManifestToJson(const Manifest& manifest);

// Writes `<path>.tmp`, fsyncs it and renames it over `path`, so a reader never sees a partial
// manifest. Creates no directories. kIOError naming the path on failure.
Status WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace sluice::sim
