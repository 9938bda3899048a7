// Cluster: the whole Sluice deployment as real processes on 127.0.0.1, started from the shipped
// config files (config/*.yaml) with --set overrides for ports, data dirs and URLs: one Mosquitto,
// the eu-central and us-east brokers, and the DE and US gateways. Every process runs in its own
// process group and is killed by PID when the Cluster is destroyed.
// Thread-safety: not thread-safe; drive it from the test's main thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/common/test_env.h"

namespace sluice::testing {

// Countries each region may store, as in config/broker-*.yaml and config/gateway-*.yaml.
const std::vector<std::string>& EuCentralCountries();
const std::vector<std::string>& UsEastCountries();
// "eu-central", "us-east", or "" for a country no region owns.
std::string RegionOfCountry(const std::string& country);

class Cluster {
 public:
  // Starts every process and waits for each /healthz (and Mosquitto's port). On failure returns
  // nullptr and fills *error with the reason and the relevant log.
  static std::unique_ptr<Cluster> Start(const TempDir& dir, std::string* error);
  ~Cluster();

  int mqtt_port() const { return mosquitto_->port(); }
  std::string mqtt_uri() const { return mosquitto_->uri(); }
  int broker_port(const std::string& region) const;
  int gateway_de_port() const { return gw_de_port_; }
  int gateway_us_port() const { return gw_us_port_; }

  // Runs sluice-sim with config/sim.yaml pointed at this cluster, plus `extra_sets`
  // ("key=value" for --set). Returns its exit code (-1 on timeout); output in sim.log.
  int RunSim(const std::string& manifest_path, const std::vector<std::string>& extra_sets,
             int64_t timeout_ms);

  // Stops a broker ("eu-central" / "us-east") with SIGTERM; false if it did not exit.
  bool StopBroker(const std::string& region);
  // Starts a stopped broker again with the same port and data dir and waits for /healthz.
  bool RestartBroker(const std::string& region, std::string* error);

  // "" if every process still runs, else which ones died (with their log tails).
  std::string DeadProcesses();
  // The last lines of every log, for failure messages.
  std::string LogTails() const;

  // Sum of sluice_gateway_buffered_records over both gateways; -1 if unreadable or absent.
  double GatewayBufferedRecords();

  // Stops the gateways and brokers with SIGTERM; returns "" if each exited 0 within the
  // timeout, else a description of which did not.
  std::string StopGracefully();

 private:
  Cluster(const TempDir& dir) : dir_(dir) {}
  struct Proc {
    std::string name;
    std::vector<std::string> argv;
    std::unique_ptr<ChildProcess> proc;
  };
  Proc* Find(const std::string& name);
  bool StartProc(const std::string& name, const std::vector<std::string>& argv, std::string* err);

  const TempDir& dir_;
  std::unique_ptr<Mosquitto> mosquitto_;
  int eu_port_ = 0;
  int us_port_ = 0;
  int gw_de_port_ = 0;
  int gw_us_port_ = 0;
  std::vector<Proc> procs_;  // brokers first, then gateways; stopped in reverse
};

}  // namespace sluice::testing
