// ResidencyFleet: brokers of several regions and gateways as real processes on 127.0.0.1, all
// loading ONE residency policy written by the test (regions, their broker URLs, countries,
// failover), for the residency tests (issue 13). Brokers start from config/broker-us-east.yaml
// and gateways from config/gateway-us.yaml with --set overrides (region, ports, data dirs,
// policy file); MQTT is off unless a gateway is given a Mosquitto URI. Every process runs in
// its own process group and is killed by PID when the fleet is destroyed.
// Thread-safety: not thread-safe; drive it from the test's main thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/common/test_env.h"

namespace sluice::testing {

class ResidencyFleet {
 public:
  // `regions`: region names; ports are chosen now, so the policy can name the brokers.
  ResidencyFleet(const TempDir& dir, std::vector<std::string> regions);
  ~ResidencyFleet();

  int broker_port(const std::string& region) const { return ports_.at(region); }
  std::string broker_url(const std::string& region) const;
  std::string broker_data_dir(const std::string& region) const;
  // Writes the policy: `body` is the file without its `regions:` section, which is generated
  // (name, a jurisdiction, this fleet's broker URL). Returns its path.
  std::string WritePolicy(const std::string& body);
  const std::string& policy_path() const { return policy_path_; }

  // Starts (or restarts, same port and data dir) a region's broker and waits for /healthz.
  bool StartBroker(const std::string& region, std::string* error);
  // SIGTERM; true if it exited 0.
  bool StopBroker(const std::string& region);

  // Starts a gateway named `id` on a free port with extra "--set" values ("key=value");
  // returns its HTTP port, or 0 (and *error) if it did not answer /healthz.
  int StartGateway(const std::string& id, const std::vector<std::string>& sets,
                   std::string* error);
  bool StopGateway(const std::string& id);
  std::string gateway_data_dir(const std::string& id) const;
  // sluice_gateway_buffered_records summed over regions (-1 if unreadable); one region if given.
  double GatewayBuffered(const std::string& id, const std::string& region = "");
  // The whole /metrics text of a gateway ("" if unreadable).
  std::string GatewayMetrics(const std::string& id);

  // Names of processes that died, with their log tails ("" if all run).
  std::string DeadProcesses();
  std::string LogTails() const;

 private:
  struct Proc {
    std::unique_ptr<ChildProcess> proc;
    int port = 0;
  };
  const TempDir& dir_;
  std::vector<std::string> regions_;
  std::map<std::string, int> ports_;
  std::map<std::string, Proc> brokers_;
  std::map<std::string, Proc> gateways_;
  std::string policy_path_;
};

// The records one region's broker stores for `topic`, through GET /v1/query (up to 10,000),
// as "device_id/country" sorted.
std::vector<std::string> QueryDevices(int broker_port, const std::string& topic = "sensors");

}  // namespace sluice::testing
