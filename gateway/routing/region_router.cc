#include "gateway/routing/region_router.h"

#include <set>

namespace sluice::gateway {

Result<RegionRouter> RegionRouter::Create(std::vector<RegionConfig> regions) {
  RegionRouter r;
  std::set<std::string> names;
  for (size_t i = 0; i < regions.size(); ++i) {
    if (!names.insert(regions[i].name.value()).second) {
      return Status::InvalidArgument("region " + regions[i].name.value() + " is listed twice");
    }
    for (const CountryCode& c : regions[i].countries) {
      auto [it, inserted] = r.by_country_.emplace(c.value(), i);
      if (!inserted && it->second != i) {
        return Status::InvalidArgument("country " + c.value() + " is listed in regions " +
                                       regions[it->second].name.value() + " and " +
                                       regions[i].name.value());
      }
    }
  }
  r.regions_ = std::move(regions);
  return r;
}

const RegionConfig* RegionRouter::Route(const CountryCode& country) const {
  auto it = by_country_.find(country.value());
  return it == by_country_.end() ? nullptr : &regions_[it->second];
}

}  // namespace sluice::gateway
