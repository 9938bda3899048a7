#include "firmware-sim/fleet.h"

#include <cmath>
#include <cstdio>
#include <random>

namespace sluice::sim {

const char* DeviceTransportName(DeviceTransport t) {
  return t == DeviceTransport::kMqtt ? "mqtt" : "http";
}

std::vector<Device> BuildFleet(const SimConfig& config) {
  std::vector<Device> fleet;
  fleet.reserve(static_cast<size_t>(config.devices));
  std::mt19937_64 rng(config.seed);
  const int64_t n_sites = static_cast<int64_t>(config.sites.size());
  const int64_t period_us = static_cast<int64_t>(std::llround(1e6 / config.rate_per_device));
  for (int64_t s = 0; s < n_sites; ++s) {
    const SiteConfig& site = config.sites[static_cast<size_t>(s)];
    int64_t count = config.devices / n_sites + (s < config.devices % n_sites ? 1 : 0);
    std::uniform_int_distribution<size_t> pick_country(0, site.countries.size() - 1);
    std::uniform_int_distribution<int64_t> pick_phase(0, std::max<int64_t>(0, period_us - 1));
    for (int64_t n = 1; n <= count; ++n) {
      Device d;
      d.index = static_cast<int>(fleet.size());
      d.site = static_cast<int>(s);
      d.number = static_cast<int>(n);
      char num[32];
      std::snprintf(num, sizeof(num), "%04lld", static_cast<long long>(n));
      d.id = site.name + "-dev-" + num;
      d.country = site.countries[pick_country(rng)];
      switch (site.transport) {
        case Transport::kMqtt:
          d.transport = DeviceTransport::kMqtt;
          break;
        case Transport::kHttp:
          d.transport = DeviceTransport::kHttp;
          break;
        case Transport::kMixed:
          d.transport = n % 2 == 0 ? DeviceTransport::kMqtt : DeviceTransport::kHttp;
          break;
      }
      d.http_single = d.transport == DeviceTransport::kHttp && n % 4 == 3;
      d.phase_us = pick_phase(rng);
      fleet.push_back(std::move(d));
    }
  }
  return fleet;
}

double SensorValue(uint64_t seed, int device_index, uint64_t seq) {
  // splitmix64 over (seed, device, seq): stateless, so any thread can compute it.
  uint64_t z = seed ^ (static_cast<uint64_t>(device_index) * 0x9E3779B97F4A7C15ULL) ^
               (seq * 0xBF58476D1CE4E5B9ULL);
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  double unit = static_cast<double>(z >> 11) / static_cast<double>(1ULL << 53);
  return -50.0 + 200.0 * unit;
}

std::string EventPayload(const Device& device, const Event& event, int64_t payload_bytes) {
  // Ids, sensors and countries are validated to hold no characters that need JSON escaping.
  char value[32];
  std::snprintf(value, sizeof(value), "%.3f", event.value);
  std::string out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(payload_bytes, 128)));
  out += "{\"device_id\":\"";
  out += device.id;
  out += "\",\"sensor\":\"";
  out += event.sensor;
  out += "\",\"country\":\"";
  out += device.country;
  out += "\",\"ts\":";
  out += std::to_string(event.ts_ms);
  out += ",\"seq\":";
  out += std::to_string(event.seq);
  out += ",\"value\":";
  out += value;
  out += ",\"pad\":\"";
  const size_t closing = 2;  // "}
  if (payload_bytes > 0 && out.size() + closing < static_cast<size_t>(payload_bytes)) {
    out.append(static_cast<size_t>(payload_bytes) - out.size() - closing, 'x');
  }
  out += "\"}";
  return out;
}

}  // namespace sluice::sim
