// Checks of what the brokers store against the simulator's manifest (firmware-sim/README.md):
// each acknowledged event stored exactly once, in the region that owns its device's country.
// The checks report through GoogleTest (ADD_FAILURE / EXPECT_*), showing the first few
// problems of each kind, and print a one-line summary.
// Thread-safety: not thread-safe; call from the test's main thread.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "tests/integration/cluster.h"

namespace sluice::testing {

struct ManifestDevice {
  std::string id;
  std::string site;
  std::string country;
  std::string transport;  // "mqtt" | "http"
  uint64_t sent = 0;
  std::set<uint64_t> acked;   // HTTP: answered 202
  std::set<uint64_t> failed;  // never acknowledged
  uint64_t delivered() const { return sent - failed.size(); }
};

struct ManifestTotals {
  uint64_t sent = 0, mqtt_sent = 0, http_acked = 0, http_failed = 0, mqtt_errors = 0;
};

// Parses the manifest written by sluice-sim; false (with *error) if it is missing or malformed.
bool LoadManifest(const std::string& path, std::vector<ManifestDevice>* devices,
                  ManifestTotals* totals, std::string* error);

// GET /v1/query?<params> on 127.0.0.1:<port>; false (with *error) unless 200 and a JSON answer
// holding "records".
bool QueryBroker(int port, const std::string& params, rapidjson::Document* doc,
                 std::string* error);
// The answer's "matched" (all matches, not only those returned), or -1.
int64_t Matched(int port, const std::string& params);

// Mosquitto's $SYS/broker/publish/messages/dropped, or -1 if it cannot be read.
int64_t MosquittoDropped(const TempDir& dir, int port);

// Records stored in both regions together, or -1 if a broker does not answer.
int64_t StoredInBrokers(Cluster& cluster);

// Queries both brokers per device and checks the manifest's events: HTTP-acknowledged events
// stored exactly once in the home region; MQTT events all found (up to `mosquitto_dropped`
// missing), none duplicated; nothing stored outside the home region; each region's
// counts_by_country names only its own countries; no DE in us-east, no US in eu-central.
void CheckFleetStored(Cluster& cluster, const std::vector<ManifestDevice>& devices,
                      const ManifestTotals& totals, int64_t mosquitto_dropped);

}  // namespace sluice::testing
