#include "cloud-broker/auth/acl.h"

namespace sluice::broker {
namespace {

struct OpName {
  const char* name;
  AclOp op;
};
constexpr OpName kOps[] = {{"produce", AclOp::kProduce},
                           {"fetch", AclOp::kFetch},
                           {"query", AclOp::kQuery},
                           {"group", AclOp::kGroup},
                           {"admin", AclOp::kAdmin},
                           {"replicate", AclOp::kReplicate}};

constexpr uint32_t kTopicOps = static_cast<uint32_t>(AclOp::kProduce) |
                               static_cast<uint32_t>(AclOp::kFetch) |
                               static_cast<uint32_t>(AclOp::kAdmin);

}  // namespace

const char* AclOpName(AclOp op) {
  for (const OpName& o : kOps) {
    if (o.op == op) {
      return o.name;
    }
  }
  return "?";
}

bool AclPatternMatches(const std::string& pattern, const std::string& name) {
  if (pattern == "*") {
    return true;
  }
  if (!pattern.empty() && pattern.back() == '*') {
    return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
  }
  return pattern == name;
}

AclSet AclSet::FromConfig(const Config& cfg, const std::string& key) {
  std::vector<AclRule> rules;
  std::vector<Config> items = cfg.GetList(key);
  for (size_t i = 0; i < items.size(); ++i) {
    const Config& c = items[i];
    AclRule r;
    r.principal = c.RequireString("principal");
    if (r.principal.empty()) {
      c.Fail("principal", "must not be empty (\"*\" means every authenticated principal)");
    }
    for (const std::string& name : c.GetStringList("operations", {})) {
      bool known = false;
      for (const OpName& o : kOps) {
        if (name == o.name) {
          r.ops |= static_cast<uint32_t>(o.op);
          known = true;
        }
      }
      if (!known) {
        c.Fail("operations", "unknown operation \"" + name +
                                 "\" (produce, fetch, query, group, admin, replicate)");
      }
    }
    if (r.ops == 0) {
      c.Fail("operations",
             "must list at least one of produce, fetch, query, group, admin, replicate");
    }
    r.topics = c.GetStringList("topics", {});
    r.groups = c.GetStringList("groups", {});
    if ((r.ops & kTopicOps) != 0 && r.topics.empty()) {
      c.Fail("topics", "produce, fetch and admin need the topics they apply to (\"*\" for all)");
    }
    if ((r.ops & static_cast<uint32_t>(AclOp::kGroup)) != 0 && r.groups.empty()) {
      c.Fail("groups", "group needs the consumer groups it applies to (\"*\" for all)");
    }
    rules.push_back(std::move(r));
  }
  return AclSet(std::move(rules));
}

bool AclSet::Allows(const std::string& principal, AclOp op, const std::string& resource) const {
  const uint32_t bit = static_cast<uint32_t>(op);
  for (const AclRule& r : rules_) {
    if ((r.ops & bit) == 0 || (r.principal != "*" && r.principal != principal)) {
      continue;
    }
    if (op == AclOp::kQuery || op == AclOp::kReplicate) {
      return true;  // not per topic or group
    }
    const std::vector<std::string>& patterns = op == AclOp::kGroup ? r.groups : r.topics;
    for (const std::string& p : patterns) {
      if (AclPatternMatches(p, resource)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace sluice::broker
