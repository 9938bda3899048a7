// Residency(region): a broker's residency for replication tests that need only its region (no
// countries): what CreateTopic places by.
#pragma once

#include <string>
#include <vector>

#include "cloud-broker/residency/residency_policy.h"

namespace sluice::broker {

inline ResidencyPolicy Residency(const std::string& region) {
  return ResidencyPolicy(RegionId(region), std::vector<CountryCode>{});
}

}  // namespace sluice::broker
