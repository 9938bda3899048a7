// Which broker a `sluice` command talks to: `--broker URL`, or `--config FILE` (plus `--set`)
// whose `regions:` list (name/url/countries, the shape of config/gateway-de.yaml) is searched for
// `--region NAME`, or else for the region listing `--country CC`. For https:// brokers,
// `--ca-file`, `--cert`, `--key` (or, with --config, its forward.tls.* keys: the gateway's own
// CA and certificate) verify the broker and identify this client (mutual TLS).
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <string>

#include <vector>

#include "core/cli_args.h"
#include "core/status.h"
#include "core/tls.h"

namespace sluice::cli {

struct BrokerTarget {
  std::string url;     // "http://127.0.0.1:9101", no trailing slash: the one to talk to
  std::string region;  // from the config; "" with --broker
  TlsClientOptions tls;
  // Every broker given (`--broker A,B,C`, or a region's `urls`): a replicated region, any of
  // which serves reads. `url` is the first of them that answered, or the first if none did.
  std::vector<std::string> urls;
};

// --broker, --region, --ca-file, --cert, --key: every command that talks to a broker takes them.
// Several brokers of a region (`--broker A,B,C` or a config region's `urls`): the first that
// answers is used (a replica that is down is skipped).
std::vector<CliFlag> BrokerTargetFlags();

// kInvalidArgument (a usage error: exit 2) when neither or both ways are given, the config
// cannot be loaded, or no region matches.
Result<BrokerTarget> ResolveBroker(const CliArgs& args);

// `--all-regions`: one target per region of the residency policy that --config names (the
// policy file itself, or a gateway config's residency.policy_file), in the policy's order, with
// the config's and the flags' TLS. kInvalidArgument with --broker or --region, without a
// policy, or for a region listing no brokers.
Result<std::vector<BrokerTarget>> ResolveAllRegions(const CliArgs& args);

// GETs `path` from the target: the body of a 200; else kUnavailable "cannot reach URL: why" or
// kFailedPrecondition "URL+path answered HTTP N: <body, truncated>".
Result<std::string> GetBody(const BrokerTarget& target, const std::string& path,
                            int64_t timeout_ms);

}  // namespace sluice::cli
