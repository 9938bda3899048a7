// libFuzzer target: the gateway's JSON / JSON array / NDJSON event parser
// (gateway/ingest/event_parser.h), which reads every POST /v1/events body. The first byte picks
// the content type; the parser must answer events or a precise error, never crash or hang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/ingest/event_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  static const char* kTypes[] = {"application/json", "application/x-ndjson", ""};
  const std::string_view type = kTypes[data[0] % 3];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  sluice::gateway::ParseDefaults d;
  d.country = sluice::CountryCode("DE");
  d.now_ms = 1714564800000;
  d.max_events = 10000;
  sluice::gateway::ParseOutcome out = sluice::gateway::ParseEvents(body, type, d);
  if (out.ok()) {
    for (const auto& e : out.events) {
      if (e.device_id.value().empty() || e.payload.size() > body.size()) {
        std::abort();
      }
    }
  } else if (out.error->reason.empty()) {
    std::abort();  // every refusal says why
  }
  return 0;
}
