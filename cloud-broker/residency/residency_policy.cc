#include "cloud-broker/residency/residency_policy.h"

#include <string>

namespace sluice::broker {

ResidencyPolicy::ResidencyPolicy(RegionId region, const std::vector<CountryCode>& countries)
    : region_(std::move(region)), countries_(countries.begin(), countries.end()) {}

ResidencyPolicy::ResidencyPolicy(RegionId region, std::shared_ptr<const ResidencyPolicyFile> file)
    : region_(std::move(region)), file_(std::move(file)) {}

Status ResidencyPolicy::Check(const Record& record, size_t index) const {
  const std::string* country = record.FindHeader(kHeaderCountry);
  if (country != nullptr && Allows(CountryCode(*country))) {
    return Status::Ok();
  }
  std::string device = record.key.has_value() ? *record.key : "(none)";
  return Status::PermissionDenied("record " + std::to_string(index) + " (device " + device +
                                  ") has country " + (country ? *country : "(none)") +
                                  ", which region " + region_.value() + " may not store");
}

}  // namespace sluice::broker
