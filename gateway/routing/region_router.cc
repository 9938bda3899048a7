#include "gateway/routing/region_router.h"

namespace sluice::gateway {

Result<RegionRouter> RegionRouter::Create(std::vector<RegionConfig> regions,
                                          std::shared_ptr<const ResidencyPolicyFile> policy) {
  RegionRouter r;
  for (size_t i = 0; i < regions.size(); ++i) {
    if (!r.by_name_.emplace(regions[i].name.value(), i).second) {
      return Status::InvalidArgument("region " + regions[i].name.value() + " is listed twice");
    }
    if (policy != nullptr) {
      continue;  // the policy routes; a country may be allowed in several regions
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
  if (policy != nullptr) {
    for (const PolicyRegion& pr : policy->regions()) {
      if (r.by_name_.count(pr.name.value()) == 0) {
        return Status::InvalidArgument("region " + pr.name.value() + " of residency policy " +
                                       policy->origin() + " has no broker URLs here");
      }
    }
  }
  r.regions_ = std::move(regions);
  r.policy_ = std::move(policy);
  return r;
}

const RegionConfig* RegionRouter::Route(const CountryCode& country) const {
  if (policy_ != nullptr) {
    const std::vector<RegionId>& allowed = policy_->Allowed(country);
    if (allowed.empty()) {
      return nullptr;
    }
    auto it = by_name_.find(allowed.front().value());  // hold: the most preferred, always
    return it == by_name_.end() ? nullptr : &regions_[it->second];
  }
  auto it = by_country_.find(country.value());
  return it == by_country_.end() ? nullptr : &regions_[it->second];
}

std::optional<RegionId> RegionRouter::NextAllowed(
    const CountryCode& country, const RegionId& down,
    const std::function<bool(const RegionId&)>& is_up) const {
  if (!fails_over()) {
    return std::nullopt;
  }
  for (const RegionId& r : policy_->Allowed(country)) {
    if (r != down && by_name_.count(r.value()) > 0 && is_up(r)) {
      return r;
    }
  }
  return std::nullopt;
}

}  // namespace sluice::gateway
