// RegionRouter: maps an event's country to the destination region whose `countries:` list names
// it (the `regions:` config list). A country listed by two regions is a configuration error.
// Thread-safety: immutable after Create(); safe to share.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::gateway {

struct RegionConfig {
  RegionId name;
  std::string url;  // "http://host:port" of the region's broker (the first of `urls`)
  std::vector<CountryCode> countries;
  // A replicated region: several of its brokers. The gateway learns each partition's leader
  // from any of them (GET /v1/metadata) and sends each partition's records to its leader.
  // Empty: one broker at `url`.
  std::vector<std::string> urls;
};

class RegionRouter {
 public:
  RegionRouter() = default;
  // kInvalidArgument naming the country and both regions on an overlap, or a duplicate name.
  static Result<RegionRouter> Create(std::vector<RegionConfig> regions);

  // The region for `country`, or nullptr when no region lists it.
  const RegionConfig* Route(const CountryCode& country) const;
  const std::vector<RegionConfig>& regions() const { return regions_; }

 private:
  std::vector<RegionConfig> regions_;
  std::map<std::string, size_t> by_country_;
};

}  // namespace sluice::gateway
