// Helpers shared by the simulator's tests: building a SimConfig from YAML text, reading a
// manifest back with RapidJSON, and expanding seq ranges.
// Thread-safety: not thread-safe; test main thread only.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <rapidjson/document.h>

#include "core/config.h"
#include "firmware-sim/sim_config.h"

namespace sluice::sim::testing {

inline SimConfig ConfigFromYaml(const std::string& yaml) {
  return LoadSimConfig(Config::Parse(yaml, "test.yaml"));
}

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Expands [[a,b],...] into the set of seqs; adds a failure if the shape is wrong.
inline std::set<uint64_t> ExpandRanges(const rapidjson::Value& ranges) {
  std::set<uint64_t> out;
  if (!ranges.IsArray()) return out;
  for (const auto& r : ranges.GetArray()) {
    if (!r.IsArray() || r.Size() != 2) continue;
    for (uint64_t s = r[0].GetUint64(); s <= r[1].GetUint64(); ++s) out.insert(s);
  }
  return out;
}

}  // namespace sluice::sim::testing
