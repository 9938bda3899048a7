// `sluice query --all-regions`: the same query asked of every region of the residency policy,
// all regions at once, each answer printed labelled with its region (in the policy's order) and,
// last, the counts
// per country per region. Nothing is copied between regions: each region's records are read
// from its own brokers and only the answers meet, in this process.
// Output: table (each region's RenderQuery, then REGION/COUNTRY/RECORDS), json ({"regions":
// [{"region","answer"} | {"region","error"}]}), ndjson (each record with "region" added first).
// A region that cannot be asked is reported in place and makes the exit code 1; the others are
// still printed. Thread-safety: not thread-safe; call from main.
#pragma once

#include <ostream>
#include <string>

#include "core/cli_args.h"

namespace sluice::cli {

// `path`: the /v1/query (or /v1/query/aggregate) path with the filter; `sep` the next
// separator ('?' or '&'). `output`: table, json or ndjson. Returns the exit code.
int RunQueryAllRegions(const CliArgs& args, const std::string& path, const std::string& sep,
                       const std::string& output, bool aggregate, std::ostream& out,
                       std::ostream& err);

}  // namespace sluice::cli
