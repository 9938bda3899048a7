// The `sluice` command line: query, topics and fetch against a broker's HTTP API (docs/API.md).
// Output goes to `out`, diagnostics to `err`, both prefixed "sluice: ". Exit codes: 0 done,
// 1 the broker could not be reached or answered an error, 2 bad arguments or configuration.
// Thread-safety: not thread-safe; call from main.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// `args` is argv without the program name: {"query", "--broker", "http://...", ...}.
int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// The top-level help text.
std::string TopUsage();

// Prints a broker's answer: as it came (`json`, one trailing newline) or through `render`.
// kExitOk, or kExitFailed with "sluice: <why>" on `err` when the answer does not render.
int PrintAnswer(const std::string& body, bool json,
                Status (*render)(const std::string&, std::ostream&), std::ostream& out,
                std::ostream& err);

}  // namespace sluice::cli
