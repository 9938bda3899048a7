// ResidencyPolicy: which countries' records this broker's region may store: those the
// deployment's residency policy file allows in this region (core/residency_policy_file.h), or,
// without one, the broker's own `region.countries`. Every record of a produce request is
// checked before anything of it is stored.
// Thread-safety: immutable after construction; safe to share across threads.
#pragma once

#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/record.h"
#include "core/residency_policy_file.h"
#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::broker {

class ResidencyPolicy {
 public:
  ResidencyPolicy(RegionId region, const std::vector<CountryCode>& countries);
  // From the policy file (which must name `region`: BrokerOptions checks it at start-up).
  ResidencyPolicy(RegionId region, std::shared_ptr<const ResidencyPolicyFile> file);

  const RegionId& region() const { return region_; }
  bool Allows(const CountryCode& country) const {
    return file_ != nullptr ? file_->Allows(country, region_) : countries_.count(country) > 0;
  }
  // The policy file's version ("sha256:..."), or "region.countries" without one.
  std::string version() const {
    return file_ != nullptr ? file_->version() : std::string("region.countries");
  }

  // Ok if the record's `country` header names a country of this region; otherwise
  // kPermissionDenied "record <i> (device <id>) has country <C>, which region <R> may not
  // store" (a missing country header is refused the same way, with country "(none)").
  Status Check(const Record& record, size_t index) const;

 private:
  RegionId region_;
  std::set<CountryCode> countries_;
  std::shared_ptr<const ResidencyPolicyFile> file_;
};

}  // namespace sluice::broker
