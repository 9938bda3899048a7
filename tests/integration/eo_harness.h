// Helpers for the gateway's exactly-once tests (exactly_once_test.cc, gateway_crash_test.cc):
// start one real broker or gateway process from the shipped configs, post events, read back
// everything a broker stores, and check it is exactly once and in per-device order.
// Thread-safety: not thread-safe; call from the test's main thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/common/test_env.h"

namespace sluice::testing {

// sluice-broker from config/broker-<region>.yaml on `port`, data in `data_dir`; waits for
// /healthz. nullptr (and *error) on failure.
std::unique_ptr<ChildProcess> StartRegionBroker(const TempDir& dir, const std::string& region,
                                                int port, const std::string& data_dir,
                                                std::string* error);

struct GatewaySpec {
  int port = 0;
  std::string data_dir;
  std::string eu_url;
  std::string us_url;
  std::string mqtt_uri;  // "" disables MQTT
  std::vector<std::string> extra_sets;
};
// sluice-gateway from config/gateway-de.yaml with fast retries; waits for /healthz.
std::unique_ptr<ChildProcess> StartDeGateway(const TempDir& dir, const GatewaySpec& spec,
                                             const std::string& log_name, std::string* error);

// POST /v1/events with an NDJSON body; the HTTP status, or -1 on a transport error.
int PostEvents(int gateway_port, const std::string& ndjson, int64_t timeout_ms = 10000);
// One NDJSON line: {"device_id":..,"country":..,"seq":..}.
std::string EventLine(const std::string& device, const std::string& country, int64_t seq);

// The gateway's sluice_gateway_buffered_records{region="<region>"}, or -1.
double GatewayBuffered(int gateway_port, const std::string& region);

struct StoredRecord {
  int partition = 0;
  int64_t offset = 0;
  std::string device;
  int64_t gateway_seq = -1;
  int64_t payload_seq = -1;  // the "seq" field of the JSON payload, -1 if none
};
// Every record of topic "sensors" on the broker, partition by partition in offset order.
bool FetchAll(int broker_port, std::vector<StoredRecord>* out, std::string* error);

// Reports (ADD_FAILURE) any (device, payload seq) stored more than once and any device whose
// payload seqs do not increase in offset order within a partition. Returns the number of
// distinct (device, seq) pairs.
size_t CheckNoDuplicatesInOrder(const std::vector<StoredRecord>& records);

}  // namespace sluice::testing
