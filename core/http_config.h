// The HTTP server's client-facing limits as configuration keys, shared by the gateway and the
// broker so both read them alike: under `prefix` (e.g. "http"): max_header_bytes,
// max_header_fields, header_timeout, body_timeout, idle_timeout, max_connections (meanings and
// defaults: core/http.h HttpServerOptions). Thread-safety: pure function.
#pragma once

#include <string>

#include "core/config.h"
#include "core/http.h"

namespace sluice {

// Fills the limit fields of *out from `cfg`; throws ConfigError on a value out of range.
void LoadHttpLimits(const Config& cfg, const std::string& prefix, HttpServerOptions* out);

}  // namespace sluice
