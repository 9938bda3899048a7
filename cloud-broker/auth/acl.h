// Access control lists: which authenticated principal may do what to which topic or group.
// Deny by default: a request is allowed only when some rule names its principal (or "*"), its
// operation, and a pattern matching its resource. Patterns: an exact name, "prefix*", or "*".
//
//   auth:
//     acls:
//       - principal: gw-de                 # client certificate CN, or an API key's principal
//         operations: [produce]
//         topics: [sensors]
//       - principal: dashboards
//         operations: [fetch, query, group]
//         topics: ["*"]
//         groups: ["dash-*"]
//
// Operations and their resource: produce, fetch (records, offsets, describe, list) and admin
// (create topics) name a topic; group names a consumer group; query reads the whole region and
// names none (grant it only to principals that may read every topic).
// Thread-safety: an AclSet is immutable once built.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace sluice::broker {

enum class AclOp : uint32_t {
  kProduce = 1u << 0,
  kFetch = 1u << 1,
  kQuery = 1u << 2,
  kGroup = 1u << 3,
  kAdmin = 1u << 4,
  kReplicate = 1u << 5,  // the region's brokers among themselves (Kafka's ClusterAction)
};

const char* AclOpName(AclOp op);

struct AclRule {
  std::string principal;  // exact, or "*" for every authenticated principal
  uint32_t ops = 0;       // AclOp bits
  std::vector<std::string> topics;
  std::vector<std::string> groups;
};

// True when `pattern` ("*", "prefix*", or exact) matches `name`.
bool AclPatternMatches(const std::string& pattern, const std::string& name);

class AclSet {
 public:
  AclSet() = default;
  explicit AclSet(std::vector<AclRule> rules) : rules_(std::move(rules)) {}

  // Reads the list at `key` (e.g. "auth.acls"); throws ConfigError "file: key.N.field: reason"
  // on an unknown operation, a missing principal, or a rule that grants nothing.
  static AclSet FromConfig(const Config& cfg, const std::string& key);

  // `resource`: a topic (produce, fetch, admin), a group (group), ignored for query.
  bool Allows(const std::string& principal, AclOp op, const std::string& resource) const;
  const std::vector<AclRule>& rules() const { return rules_; }

 private:
  std::vector<AclRule> rules_;
};

}  // namespace sluice::broker
