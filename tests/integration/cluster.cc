#include "tests/integration/cluster.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <sstream>

namespace sluice::testing {

namespace {

std::string Tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      return text;
    }
  }
  return pos < text.size() ? text.substr(pos + 1) : text;  // (an empty log: pos is 0)
}

}  // namespace

const std::vector<std::string>& EuCentralCountries() {
  static const std::vector<std::string> k = {"DE", "FR", "AT", "NL", "BE", "IT", "ES", "PL", "CH"};
  return k;
}

const std::vector<std::string>& UsEastCountries() {
  static const std::vector<std::string> k = {"US", "CA", "MX"};
  return k;
}

std::string RegionOfCountry(const std::string& country) {
  const auto& eu = EuCentralCountries();
  const auto& us = UsEastCountries();
  if (std::find(eu.begin(), eu.end(), country) != eu.end()) {
    return "eu-central";
  }
  if (std::find(us.begin(), us.end(), country) != us.end()) {
    return "us-east";
  }
  return "";
}

bool Cluster::StartProc(const std::string& name, const std::vector<std::string>& argv,
                        std::string* err) {
  auto p = ChildProcess::Start(argv, dir_.Sub(name + ".log"));
  if (p == nullptr) {
    *err = "cannot start " + name + " (" + argv[0] + ")";
    return false;
  }
  procs_.push_back(Proc{name, argv, std::move(p)});
  return true;
}

std::unique_ptr<Cluster> Cluster::Start(const TempDir& dir, std::string* error) {
  std::unique_ptr<Cluster> c(new Cluster(dir));
  c->mosquitto_ = Mosquitto::Start(dir);
  if (c->mosquitto_ == nullptr) {
    *error = "Mosquitto did not start:\n" + ReadFileOrEmpty(dir.Sub("mosquitto.log"));
    return nullptr;
  }
  c->eu_port_ = FreePort();
  c->us_port_ = FreePort();
  c->gw_de_port_ = FreePort();
  c->gw_us_port_ = FreePort();
  const std::string eu_url = "http://127.0.0.1:" + std::to_string(c->eu_port_);
  const std::string us_url = "http://127.0.0.1:" + std::to_string(c->us_port_);
  struct BrokerSpec {
    const char* name;
    const char* config;
    int port;
  };
  for (const BrokerSpec& b : {BrokerSpec{"broker-eu-central", "config/broker-eu-central.yaml",
                                         c->eu_port_},
                              BrokerSpec{"broker-us-east", "config/broker-us-east.yaml",
                                         c->us_port_}}) {
    if (!c->StartProc(b.name,
                      {BinPath("sluice-broker"), "--config", SourcePath(b.config), "--set",
                       "http.port=" + std::to_string(b.port), "--set",
                       "broker.data_dir=" + dir.Sub(std::string("data-") + b.name)},
                      error)) {
      return nullptr;
    }
  }
  for (const BrokerSpec& g :
       {BrokerSpec{"gateway-de", "config/gateway-de.yaml", c->gw_de_port_},
        BrokerSpec{"gateway-us", "config/gateway-us.yaml", c->gw_us_port_}}) {
    if (!c->StartProc(g.name,
                      {BinPath("sluice-gateway"), "--config", SourcePath(g.config), "--set",
                       "http.port=" + std::to_string(g.port), "--set",
                       "mqtt.uri=" + c->mosquitto_->uri(), "--set",
                       "gateway.data_dir=" + dir.Sub(std::string("data-") + g.name), "--set",
                       "residency.policy_file=" +
                           WritePolicyWithBrokers(dir.Sub(std::string(g.name) + "-residency.yaml"), eu_url,
                                                  us_url)},
                      error)) {
      return nullptr;
    }
  }
  const std::vector<std::pair<std::string, int>> health = {
      {"broker-eu-central", c->eu_port_},
      {"broker-us-east", c->us_port_},
      {"gateway-de", c->gw_de_port_},
      {"gateway-us", c->gw_us_port_}};
  for (const auto& [name, port] : health) {
    if (!WaitHttpOk(port, "/healthz", 30000)) {
      *error = name + " did not answer /healthz on port " + std::to_string(port) + "\n" +
               c->DeadProcesses() + c->LogTails();
      return nullptr;
    }
  }
  // /healthz answers before the gateways' MQTT subscriptions are in place, and Mosquitto
  // forwards nothing published before them: wait for both (client ids and filters as in
  // config/gateway-*.yaml).
  for (const auto& [client, filter] : std::vector<std::pair<std::string, std::string>>{
           {"gw-de-1", "site-de/sensors/+/+"}, {"gw-us-1", "site-us/sensors/+/+"}}) {
    if (!c->mosquitto_->WaitSubscribed(client, filter, 30000)) {
      *error = client + " did not subscribe to " + filter + "\n" + c->DeadProcesses() +
               c->LogTails();
      return nullptr;
    }
  }
  return c;
}

Cluster::~Cluster() {
  // Reverse order: gateways before brokers. ChildProcess's destructor SIGKILLs the group.
  while (!procs_.empty()) {
    procs_.pop_back();
  }
}

int Cluster::broker_port(const std::string& region) const {
  return region == "eu-central" ? eu_port_ : us_port_;
}

int Cluster::RunSim(const std::string& manifest_path, const std::vector<std::string>& extra_sets,
                    int64_t timeout_ms) {
  const std::string de = "http://127.0.0.1:" + std::to_string(gw_de_port_);
  const std::string us = "http://127.0.0.1:" + std::to_string(gw_us_port_);
  std::vector<std::string> argv = {BinPath("sluice-sim"),
                                   "--config",
                                   SourcePath("config/sim.yaml"),
                                   "--set",
                                   "sim.manifest=" + manifest_path,
                                   "--set",
                                   "sites.0.mqtt_uri=" + mosquitto_->uri(),
                                   "--set",
                                   "sites.1.mqtt_uri=" + mosquitto_->uri(),
                                   "--set",
                                   "sites.0.http_url=" + de,
                                   "--set",
                                   "sites.1.http_url=" + us};
  for (const std::string& s : extra_sets) {
    argv.push_back("--set");
    argv.push_back(s);
  }
  return RunCommand(argv, dir_.Sub("sim.log"), timeout_ms);
}

Cluster::Proc* Cluster::Find(const std::string& name) {
  for (Proc& p : procs_) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

bool Cluster::StopBroker(const std::string& region) {
  Proc* p = Find("broker-" + region);
  return p != nullptr && p->proc->Stop(SIGTERM, 15000) != -1;
}

bool Cluster::RestartBroker(const std::string& region, std::string* error) {
  Proc* p = Find("broker-" + region);
  if (p == nullptr || p->proc->Running()) {
    *error = "broker-" + region + " is unknown or still running";
    return false;
  }
  auto proc = ChildProcess::Start(p->argv, dir_.Sub(p->name + ".log"));
  if (proc == nullptr) {
    *error = "cannot restart " + p->name;
    return false;
  }
  p->proc = std::move(proc);
  if (!WaitHttpOk(broker_port(region), "/healthz", 30000)) {
    *error = p->name + " did not answer /healthz after a restart\n" + DeadProcesses() +
             LogTails();
    return false;
  }
  return true;
}

std::string Cluster::DeadProcesses() {
  std::ostringstream out;
  if (mosquitto_ != nullptr && !mosquitto_->process()->Running()) {
    out << "mosquitto exited\n";
  }
  for (Proc& p : procs_) {
    if (!p.proc->Running()) {
      out << p.name << " exited (code " << p.proc->WaitExit(0) << "):\n"
          << Tail(p.proc->ReadLog(), 30) << "\n";
    }
  }
  return out.str();
}

std::string Cluster::LogTails() const {
  std::ostringstream out;
  for (const char* name : {"mosquitto", "broker-eu-central", "broker-us-east", "gateway-de",
                           "gateway-us", "sim"}) {
    out << "----- " << dir_.Sub(std::string(name) + ".log") << " (tail)\n"
        << Tail(ReadFileOrEmpty(dir_.Sub(std::string(name) + ".log")), 15) << "\n";
  }
  return out.str();
}

double Cluster::GatewayBufferedRecords() {
  double total = 0;
  for (int port : {gw_de_port_, gw_us_port_}) {
    std::string body;
    if (HttpGet(port, "/metrics", &body, 5000) != 200) {
      return -1;
    }
    bool found = false;
    total += MetricSum(body, "sluice_gateway_buffered_records", &found);
    if (!found) {
      return -1;
    }
  }
  return total;
}

std::string Cluster::StopGracefully() {
  std::ostringstream out;
  for (auto it = procs_.rbegin(); it != procs_.rend(); ++it) {
    int status = it->proc->Stop(SIGTERM, 15000);
    if (status == -1) {
      out << it->name << " did not exit within 15 s of SIGTERM\n";
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      out << it->name << " exited with status " << status << ":\n"
          << Tail(it->proc->ReadLog(), 15) << "\n";
    }
  }
  return out.str();
}

}  // namespace sluice::testing
