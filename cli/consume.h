// `sluice consume`: reads records from a broker and prints one record JSON object per line
// (docs/API.md record JSON), either from one partition (--partition) or as a member of a
// consumer group (--group). In a group it joins (POST /v1/groups/{g}/join), starts each assigned
// partition at the group's committed offset (or the --from choice when none), heartbeats every
// session_timeout/3, re-joins when told a rebalance is in progress, and commits the next offset
// of a partition only AFTER the records before it have been written and flushed to `out`: a
// consumer killed between printing and committing re-prints those records next time
// (at-least-once), and never skips one. It leaves the group when done.
// Stops after --max records, or when no record arrived for --idle-ms (0: as soon as a fetch
// comes back empty, i.e. caught up).
// Thread-safety: not thread-safe; call from main.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/cli_args.h"

namespace sluice::cli {

// The command's own flags (the broker-target flags are added by commands.cc).
std::vector<CliFlag> ConsumeFlags();
std::string ConsumeUsage();

int RunConsume(const CliArgs& args, std::ostream& out, std::ostream& err);

}  // namespace sluice::cli
