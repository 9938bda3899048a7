// Which broker a `sluice` command talks to: `--broker URL`, or `--config FILE` (plus `--set`)
// whose `regions:` list (name/url/countries, the shape of config/gateway-de.yaml) is searched for
// `--region NAME`, or else for the region listing `--country CC`.
// Thread-safety: pure function.
#pragma once

#include <string>

#include "core/cli_args.h"
#include "core/status.h"

namespace sluice::cli {

struct BrokerTarget {
  std::string url;     // "http://127.0.0.1:9101", no trailing slash
  std::string region;  // from the config; "" with --broker
};

// kInvalidArgument (a usage error: exit 2) when neither or both ways are given, the config
// cannot be loaded, or no region matches.
Result<BrokerTarget> ResolveBroker(const CliArgs& args);

}  // namespace sluice::cli
