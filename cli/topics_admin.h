// `sluice topics create|list|describe`: topic administration against a broker's HTTP API
// (POST /v1/topics, GET /v1/topics, GET /v1/topics/{t}; docs/API.md). `sluice topics` without
// a subcommand lists, as before.
// Thread-safety: not thread-safe; call from main.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace sluice::cli {

// True if `args` ({"topics", "create", ...}) names a topics subcommand this file runs.
bool IsTopicsAdmin(const std::vector<std::string>& args);
// Runs it; exit codes as RunCli (0 ok, 1 broker error or 409/400 answer, 2 usage).
int RunTopicsAdmin(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace sluice::cli
