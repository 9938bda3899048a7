// Parsing of an HTTP request target ("/v1/topics/a%20b/records?offset=3&wait_ms=0") into a
// percent-decoded path and query parameters. Thread-safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice {

// Decodes %XX escapes; InvalidArgument on a truncated or non-hex escape. '+' stays '+'.
Result<std::string> PercentDecode(std::string_view s);

// Splits an origin-form target at '?', decodes the path and each `name=value` pair (a pair
// without '=' has an empty value; a repeated name keeps its last value). InvalidArgument when the
// target does not start with '/' or holds a bad escape; *path and *query are then unspecified.
Status ParseRequestTarget(std::string_view target, std::string* path,
                          std::map<std::string, std::string>* query);

}  // namespace sluice
