// libFuzzer target: the YAML configuration loader (core/config.h) and the broker's reading of it
// (every key, with its checks). A bad file must end in ConfigError, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cloud-broker/server/broker_options.h"
#include "core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    sluice::Config c = sluice::Config::Parse(text, "fuzz.yaml");
    (void)sluice::broker::LoadBrokerOptions(c);
  } catch (const sluice::ConfigError&) {
  }
  return 0;
}
