// ResidencyPolicyFile: the one residency policy of a Sluice deployment (issue 13), loaded by
// every gateway and broker from the same YAML file (config/residency.yaml):
//
//   regions:                        # where data may be stored
//     - name: eu-central
//       jurisdiction: EU
//       brokers: [https://eu-central-1.example:9101, ...]
//   countries:                      # per ISO 3166-1 alpha-2 country, the regions allowed to
//     DE: [eu-central]              # store its records, most preferred first
//     CH: [eu-central, eu-west]
//   default: deny                   # unlisted countries: deny, or a list of regions
//   failover: hold                  # preferred region down: hold (wait) or next_allowed
//
// Validated at load; every error is "<file>:<line>: <key>: <reason>" (an unknown region, a code
// that is not an ISO 3166-1 alpha-2 country, a country with no region, a region listed twice,
// an unknown key). Its version is a content hash of the file ("sha256:" + 16 hex digits), so a
// fleet running mixed policies shows it in /healthz and /metrics.
// Thread-safety: immutable after Load/Parse; safe to share.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/strong_types.h"

namespace sluice {

struct PolicyRegion {
  RegionId name;
  std::string jurisdiction;
  std::vector<std::string> brokers;  // base URLs of the region's brokers (may be empty)
};

enum class ResidencyFailover {
  kHold,         // keep a country's records buffered until its preferred region is back
  kNextAllowed,  // send them to the next allowed region that is reachable
};

class ResidencyPolicyFile {
 public:
  // kInvalidArgument with "<path>:<line>: <key>: <reason>" on any error; kNotFound if the file
  // cannot be read.
  static Result<ResidencyPolicyFile> Load(const std::string& path);
  // The same from text; `origin` names it in errors (and the version hashes `text`).
  static Result<ResidencyPolicyFile> Parse(const std::string& text, const std::string& origin);

  const std::vector<PolicyRegion>& regions() const { return regions_; }
  // nullptr if the policy has no such region.
  const PolicyRegion* FindRegion(const RegionId& name) const;
  // The regions allowed to store `country`'s records, most preferred first: its own list, else
  // `default:` for an ISO 3166-1 country; empty: stored nowhere (denied).
  const std::vector<RegionId>& Allowed(const CountryCode& country) const;
  bool Allows(const CountryCode& country, const RegionId& region) const;
  // The countries listed explicitly whose allowed regions include `region`.
  std::vector<CountryCode> ListedCountriesOf(const RegionId& region) const;
  // Whether unlisted countries may be stored in `region` (`default:` lists it).
  bool DefaultAllows(const RegionId& region) const;
  ResidencyFailover failover() const { return failover_; }
  // "sha256:" + the first 16 hex digits of the SHA-256 of the file's bytes.
  const std::string& version() const { return version_; }
  const std::string& origin() const { return origin_; }

 private:
  std::vector<PolicyRegion> regions_;
  std::map<std::string, std::vector<RegionId>> countries_;
  std::vector<RegionId> default_;  // empty: deny
  ResidencyFailover failover_ = ResidencyFailover::kHold;
  std::string version_;
  std::string origin_;
};

// The policy file named at `key` of a config (e.g. "residency.policy_file"), loaded; nullptr
// when the key is absent. A relative path is taken from the directory of the config file that
// names it (from the working directory for a --set override). Throws ConfigError (start-up
// only) with the policy's own "<file>:<line>: <key>: <reason>" when it is invalid.
class Config;
std::shared_ptr<const ResidencyPolicyFile> LoadResidencyPolicy(const Config& config,
                                                               const std::string& key);

// True if `code` is an officially assigned ISO 3166-1 alpha-2 code (249 countries and
// territories, as of 2024), e.g. "DE"; false for user-assigned or reserved ones ("XK", "EU").
bool IsIsoCountryCode(const std::string& code);

}  // namespace sluice
