// Events for buffer tests: device "dev-<id>" and a JSON payload padded to about `pad` bytes, so
// a test can tell every record apart by its device id.
#pragma once

#include <string>
#include <vector>

#include "gateway/buffer/event_buffer.h"

namespace sluice::gateway {

inline std::vector<PendingEvent> SampleEvents(const RegionId& region, int n, int64_t first_id,
                                              size_t pad = 120) {
  std::vector<PendingEvent> v;
  v.reserve(static_cast<size_t>(n));
  for (int64_t i = first_id; i < first_id + n; ++i) {
    SensorEvent e;
    e.device_id = DeviceId("dev-" + std::to_string(i));
    e.sensor = "temp";
    e.country = CountryCode("DE");
    e.ts_ms = 1'700'000'000'000 + i;
    e.ingest_ms = e.ts_ms;
    e.gateway_id = GatewayId("gw-1");
    e.source = "http";
    e.payload = "{\"id\":" + std::to_string(i) + ",\"pad\":\"" + std::string(pad, 'p') + "\"}";
    v.push_back(PendingEvent{region, std::move(e)});
  }
  return v;
}

}  // namespace sluice::gateway
