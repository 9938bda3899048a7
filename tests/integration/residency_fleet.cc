#include "tests/integration/residency_fleet.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <sstream>

namespace sluice::testing {
namespace {

// Sum of the samples of `name` whose labels contain `label` ("k=\"v\"").
double LabelledSum(const std::string& text, const std::string& name, const std::string& label) {
  std::istringstream in(text);
  std::string line;
  double sum = 0;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) == 0 && line.find(label) != std::string::npos) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

}  // namespace

ResidencyFleet::ResidencyFleet(const TempDir& dir, std::vector<std::string> regions)
    : dir_(dir), regions_(std::move(regions)) {
  for (const std::string& r : regions_) {
    ports_[r] = FreePort();
  }
}

ResidencyFleet::~ResidencyFleet() {
  gateways_.clear();  // ChildProcess kills what still runs
  brokers_.clear();
}

std::string ResidencyFleet::broker_url(const std::string& region) const {
  return "http://127.0.0.1:" + std::to_string(ports_.at(region));
}

std::string ResidencyFleet::broker_data_dir(const std::string& region) const {
  return dir_.Sub("broker-" + region);
}

std::string ResidencyFleet::gateway_data_dir(const std::string& id) const {
  return dir_.Sub("gateway-" + id);
}

std::string ResidencyFleet::WritePolicy(const std::string& body) {
  std::string text = "regions:\n";
  for (const std::string& r : regions_) {
    text += "  - name: " + r + "\n    jurisdiction: test\n    brokers: [" + broker_url(r) +
            "]\n";
  }
  text += body;
  policy_path_ = dir_.Sub("residency.yaml");
  return WriteFile(policy_path_, text) ? policy_path_ : "";
}

bool ResidencyFleet::StartBroker(const std::string& region, std::string* error) {
  const int port = ports_.at(region);
  auto proc = ChildProcess::Start(
      {BinPath("sluice-broker"), "--config", SourcePath("config/broker-us-east.yaml"), "--set",
       "region.name=" + region, "--set", "broker.id=" + region + "-1", "--set",
       "http.port=" + std::to_string(port), "--set", "broker.data_dir=" + broker_data_dir(region),
       "--set", "residency.policy_file=" + policy_path_},
      dir_.Sub("broker-" + region + ".log"));
  if (proc == nullptr || !WaitHttpOk(port, "/healthz", 30000)) {
    *error = "broker " + region + " did not start:\n" +
             ReadFileOrEmpty(dir_.Sub("broker-" + region + ".log"));
    return false;
  }
  brokers_[region] = Proc{std::move(proc), port};
  return true;
}

bool ResidencyFleet::StopBroker(const std::string& region) {
  auto it = brokers_.find(region);
  if (it == brokers_.end()) {
    return false;
  }
  const int status = it->second.proc->Stop(15, 20000);
  brokers_.erase(it);
  return status == 0;
}

int ResidencyFleet::StartGateway(const std::string& id, const std::vector<std::string>& sets,
                                 std::string* error) {
  const int port = FreePort();
  std::vector<std::string> argv = {
      BinPath("sluice-gateway"), "--config", SourcePath("config/gateway-us.yaml"), "--set",
      "gateway.id=" + id, "--set", "http.port=" + std::to_string(port), "--set",
      "gateway.data_dir=" + gateway_data_dir(id), "--set", "mqtt.enabled=false", "--set",
      "mqtt.client_id=" + id, "--set", "residency.policy_file=" + policy_path_};
  for (const std::string& s : sets) {
    argv.push_back("--set");
    argv.push_back(s);
  }
  auto proc = ChildProcess::Start(argv, dir_.Sub("gateway-" + id + ".log"));
  if (proc == nullptr || !WaitHttpOk(port, "/healthz", 30000)) {
    *error = "gateway " + id + " did not start:\n" +
             ReadFileOrEmpty(dir_.Sub("gateway-" + id + ".log"));
    return 0;
  }
  gateways_[id] = Proc{std::move(proc), port};
  return port;
}

bool ResidencyFleet::StopGateway(const std::string& id) {
  auto it = gateways_.find(id);
  if (it == gateways_.end()) {
    return false;
  }
  const int status = it->second.proc->Stop(15, 20000);
  gateways_.erase(it);
  return status == 0;
}

std::string ResidencyFleet::GatewayMetrics(const std::string& id) {
  auto it = gateways_.find(id);
  std::string body;
  if (it == gateways_.end() || HttpGet(it->second.port, "/metrics", &body) != 200) {
    return "";
  }
  return body;
}

double ResidencyFleet::GatewayBuffered(const std::string& id, const std::string& region) {
  const std::string m = GatewayMetrics(id);
  if (m.empty()) {
    return -1;
  }
  if (region.empty()) {
    return MetricSum(m, "sluice_gateway_buffered_records");
  }
  return LabelledSum(m, "sluice_gateway_buffered_records", "region=\"" + region + "\"");
}

std::string ResidencyFleet::DeadProcesses() {
  std::string out;
  for (auto* group : {&brokers_, &gateways_}) {
    for (auto& [name, p] : *group) {
      if (!p.proc->Running()) {
        out += name + " died:\n" + p.proc->ReadLog() + "\n";
      }
    }
  }
  return out;
}

std::string ResidencyFleet::LogTails() const {
  std::string out;
  for (const auto* group : {&brokers_, &gateways_}) {
    for (const auto& [name, p] : *group) {
      const std::string log = p.proc->ReadLog();
      out += "--- " + name + "\n" + log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
    }
  }
  return out;
}

std::vector<std::string> QueryDevices(int broker_port, const std::string& topic) {
  std::string body;
  std::vector<std::string> out;
  if (HttpGet(broker_port, "/v1/query?topic=" + topic + "&limit=10000", &body) != 200) {
    ADD_FAILURE() << "query on port " << broker_port << ": " << body;
    return out;
  }
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.HasMember("records")) {
    ADD_FAILURE() << body.substr(0, 500);
    return out;
  }
  for (const auto& r : d["records"].GetArray()) {
    out.push_back(std::string(r["device_id"].GetString()) + "/" + r["country"].GetString());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace sluice::testing
