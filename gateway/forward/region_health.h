// RegionHealth: which destination regions this gateway cannot reach now, as its forwarders see
// them (a region is "down" from its forwarder's first failed send - transport error or 5xx -
// until a send is acknowledged or its /healthz answers again). A region no forwarder has tried
// yet counts as up. Read by the residency failover (failover: next_allowed) to pick where a
// record of a country allowed in several regions may go instead.
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "core/strong_types.h"

namespace sluice::gateway {

class RegionHealth {
 public:
  // Keeps the first failure's time while the region stays down.
  void MarkDown(const RegionId& region, int64_t now_us);
  void MarkUp(const RegionId& region);
  // Monotonic microseconds since the region went down; -1 while it is up (or never tried).
  int64_t DownSinceUs(const RegionId& region) const;
  bool IsUp(const RegionId& region) const { return DownSinceUs(region) < 0; }
  // Changes at every up/down transition of any region (a failover scan restarts on it).
  uint64_t epoch() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> down_since_us_;
  uint64_t epoch_ = 0;
};

}  // namespace sluice::gateway
