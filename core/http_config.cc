#include "core/http_config.h"

namespace sluice {

void LoadHttpLimits(const Config& cfg, const std::string& prefix, HttpServerOptions* out) {
  const std::string p = prefix + ".";
  out->max_header_bytes = cfg.GetBytes(p + "max_header_bytes", out->max_header_bytes);
  if (out->max_header_bytes < 1024 || out->max_header_bytes > (1 << 20)) {
    cfg.Fail(p + "max_header_bytes", "must be 1KiB..1MiB");
  }
  out->max_header_fields =
      static_cast<int>(cfg.GetInt(p + "max_header_fields", out->max_header_fields));
  if (out->max_header_fields < 8 || out->max_header_fields > 10000) {
    cfg.Fail(p + "max_header_fields", "must be 8..10000");
  }
  auto duration = [&](const std::string& key, int64_t* v) {
    *v = cfg.GetDurationMs(p + key, *v);
    if (*v < 10 || *v > 3600 * 1000) {
      cfg.Fail(p + key, "must be 10ms..1h");
    }
  };
  duration("header_timeout", &out->header_timeout_ms);
  duration("body_timeout", &out->body_timeout_ms);
  duration("idle_timeout", &out->idle_timeout_ms);
  const int64_t conns = cfg.GetInt(p + "max_connections", out->max_connections);
  if (conns < 0 || conns > 1000000) {
    cfg.Fail(p + "max_connections", "must be 0 (half the open-file limit) or 1..1000000");
  }
  out->max_connections = static_cast<int>(conns);
}

}  // namespace sluice
