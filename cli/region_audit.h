// `sluice audit` for a region of several brokers: every broker keeps the audit log of the
// refusals IT answered (cloud-broker/residency/audit_log.h), so a replicated region's refusals
// are the union of its brokers' logs. Each broker is asked at once (the same filter and limit),
// the entries merged oldest first and printed as one answer; a broker that cannot be asked is
// named on stderr (its refusals are missing) and the exit code is 1. --json prints
// {"region","brokers":[{"url","answer"}|{"url","error"}]}. A cursor belongs to one broker's
// log: with several brokers --cursor is a usage error.
// Thread-safety: not thread-safe; call from main.
#pragma once

#include <ostream>
#include <string>

#include "cli/broker_target.h"

namespace sluice::cli {

// `path`: GET /v1/audit with the filter. Returns the exit code.
int RunRegionAudit(const BrokerTarget& target, const std::string& path, bool json,
                   std::ostream& out, std::ostream& err);

}  // namespace sluice::cli
