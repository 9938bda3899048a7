// RegionRouter: maps an event's country to its destination region: with the deployment's
// residency policy file (residency.policy_file, core/residency_policy_file.h), the most
// preferred region the policy allows for the country; without one, the region whose
// `countries:` list names it (the `regions:` config list; a country listed by two regions is a
// configuration error).
// Thread-safety: immutable after Create(); safe to share.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <memory>

#include "core/residency_policy_file.h"
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
  // kInvalidArgument naming the country and both regions on an overlap, or a duplicate name;
  // with `policy`, a region it names that `regions` lacks.
  static Result<RegionRouter> Create(std::vector<RegionConfig> regions,
                                     std::shared_ptr<const ResidencyPolicyFile> policy = nullptr);

  // The region for `country`, or nullptr when no region may store it.
  const RegionConfig* Route(const CountryCode& country) const;
  // Residency failover (the policy's `failover: next_allowed`): the most preferred region the
  // policy allows for `country` other than `down` for which `is_up` holds; nullopt when there
  // is none, without a policy, or under `failover: hold`.
  std::optional<RegionId> NextAllowed(const CountryCode& country, const RegionId& down,
                                      const std::function<bool(const RegionId&)>& is_up) const;
  bool fails_over() const {
    return policy_ != nullptr && policy_->failover() == ResidencyFailover::kNextAllowed;
  }
  const std::vector<RegionConfig>& regions() const { return regions_; }
  // The policy file's version ("sha256:..."), or "regions" when the config lists the regions.
  std::string policy_version() const {
    return policy_ != nullptr ? policy_->version() : std::string("regions");
  }

 private:
  std::vector<RegionConfig> regions_;
  std::map<std::string, size_t> by_country_;
  std::shared_ptr<const ResidencyPolicyFile> policy_;
  std::map<std::string, size_t> by_name_;
};

}  // namespace sluice::gateway
