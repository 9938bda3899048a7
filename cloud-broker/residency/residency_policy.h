// ResidencyPolicy: which countries' records this broker's region may store. Every record of a
// produce request is checked before anything of it is stored.
// Thread-safety: immutable after construction; safe to share across threads.
#pragma once

#include <cstddef>
#include <set>
#include <vector>

#include "core/record.h"
#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::broker {

class ResidencyPolicy {
 public:
  ResidencyPolicy(RegionId region, const std::vector<CountryCode>& countries);

  const RegionId& region() const { return region_; }
  const std::set<CountryCode>& countries() const { return countries_; }
  bool Allows(const CountryCode& country) const { return countries_.count(country) > 0; }

  // Ok if the record's `country` header names a country of this region; otherwise
  // kPermissionDenied "record <i> (device <id>) has country <C>, which region <R> may not
  // store" (a missing country header is refused the same way, with country "(none)").
  Status Check(const Record& record, size_t index) const;

 private:
  RegionId region_;
  std::set<CountryCode> countries_;
};

}  // namespace sluice::broker
