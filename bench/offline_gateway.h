// The gateway the ingest benches run in process: one region (eu-central, country DE) whose broker
// never answers and a 10-minute backoff, so nothing drains and every figure is ingest alone.
#pragma once

#include <string>

#include "gateway/app/gateway_config.h"

namespace sluice::bench {

inline gateway::GatewayConfig OfflineGatewayConfig(const std::string& data_dir) {
  gateway::GatewayConfig cfg;
  cfg.gateway_id = GatewayId("gw-bench");
  cfg.country = CountryCode("DE");
  cfg.data_dir = data_dir;
  cfg.forward_backoff_initial_ms = 600000;
  cfg.forward_backoff_max_ms = 600000;
  gateway::RegionConfig rc;
  rc.name = RegionId("eu-central");
  rc.url = "http://127.0.0.1:1";
  rc.countries = {CountryCode("DE")};
  cfg.regions = {rc};
  return cfg;
}

}  // namespace sluice::bench
