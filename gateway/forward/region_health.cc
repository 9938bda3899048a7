#include "gateway/forward/region_health.h"

namespace sluice::gateway {

void RegionHealth::MarkDown(const RegionId& region, int64_t now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  if (down_since_us_.emplace(region.value(), now_us).second) {
    ++epoch_;
  }
}

void RegionHealth::MarkUp(const RegionId& region) {
  std::lock_guard<std::mutex> lock(mu_);
  if (down_since_us_.erase(region.value()) > 0) {
    ++epoch_;
  }
}

int64_t RegionHealth::DownSinceUs(const RegionId& region) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = down_since_us_.find(region.value());
  return it == down_since_us_.end() ? -1 : it->second;
}

uint64_t RegionHealth::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

}  // namespace sluice::gateway
