// Fleet: the simulated devices, derived deterministically from a SimConfig (same seed, same
// fleet), and the JSON payload each event carries.
//
// Devices are spread evenly over sites (the first `devices % sites` sites get one more); ids are
// "<site>-dev-0001", ... numbered within the site; each device's country is drawn with a
// std::mt19937_64 seeded by `sim.seed` from its site's list. With transport `mixed`,
// even-numbered devices use MQTT and odd-numbered ones HTTP. HTTP devices whose number is
// 3 mod 4 send one event per request; the others are batched with their site's tick (NDJSON).
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "firmware-sim/sim_config.h"

namespace sluice::sim {

enum class DeviceTransport { kMqtt, kHttp };

struct Device {
  int index = 0;       // position in the fleet vector
  int site = 0;        // index into SimConfig::sites
  int number = 0;      // 1-based within the site
  std::string id;      // "<site>-dev-0001"
  std::string country;
  DeviceTransport transport = DeviceTransport::kMqtt;
  bool http_single = false;  // HTTP only: one event per request instead of batched NDJSON
  int64_t phase_us = 0;      // first event's offset from the start, in [0, 1/rate)
};

const char* DeviceTransportName(DeviceTransport t);

std::vector<Device> BuildFleet(const SimConfig& config);

// One event as sent: the payload JSON of
// {"device_id","sensor","country","ts","seq","value","pad"} padded with `pad` so the whole object
// is about `payload_bytes` long (never shorter than the object without padding).
struct Event {
  int device = 0;  // Device::index
  uint64_t seq = 0;
  std::string sensor;
  int64_t ts_ms = 0;
  double value = 0;
};

std::string EventPayload(const Device& device, const Event& event, int64_t payload_bytes);

// The sensor value of (seed, device, seq): a deterministic pseudo-random float in [-50, 150).
double SensorValue(uint64_t seed, int device_index, uint64_t seq);

}  // namespace sluice::sim
