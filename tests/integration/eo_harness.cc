#include "tests/integration/eo_harness.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <map>
#include <set>

#include "core/http.h"

namespace sluice::testing {

std::unique_ptr<ChildProcess> StartRegionBroker(const TempDir& dir, const std::string& region,
                                                int port, const std::string& data_dir,
                                                std::string* error) {
  auto p = ChildProcess::Start(
      {BinPath("sluice-broker"), "--config", SourcePath("config/broker-" + region + ".yaml"),
       "--set", "http.port=" + std::to_string(port), "--set", "broker.data_dir=" + data_dir},
      dir.Sub("broker-" + region + "-" + std::to_string(port) + ".log"));
  if (p == nullptr || !WaitHttpOk(port, "/healthz", 30000)) {
    *error = "broker " + region + " did not start: " + (p ? p->ReadLog() : "");
    return nullptr;
  }
  return p;
}

std::unique_ptr<ChildProcess> StartDeGateway(const TempDir& dir, const GatewaySpec& spec,
                                             const std::string& log_name, std::string* error) {
  std::vector<std::string> argv = {
      BinPath("sluice-gateway"), "--config", SourcePath("config/gateway-de.yaml"),
      "--set", "http.port=" + std::to_string(spec.port),
      "--set", "gateway.data_dir=" + spec.data_dir,
      "--set", "residency.policy_file=" +
                   WritePolicyWithBrokers(spec.data_dir + "-residency.yaml", spec.eu_url,
                                          spec.us_url),
      "--set", "forward.backoff_initial=10ms",
      "--set", "forward.backoff_max=200ms",
      "--set", "forward.request_timeout=3s"};
  if (spec.mqtt_uri.empty()) {
    argv.insert(argv.end(), {"--set", "mqtt.enabled=false"});
  } else {
    argv.insert(argv.end(), {"--set", "mqtt.uri=" + spec.mqtt_uri});
  }
  for (const std::string& s : spec.extra_sets) {
    argv.insert(argv.end(), {"--set", s});
  }
  auto p = ChildProcess::Start(argv, dir.Sub(log_name));
  if (p == nullptr || !WaitHttpOk(spec.port, "/healthz", 30000)) {
    *error = "gateway did not start: " + (p ? p->ReadLog() : "");
    return nullptr;
  }
  return p;
}

int PostEvents(int gateway_port, const std::string& ndjson, int64_t timeout_ms) {
  HttpClient client("http://127.0.0.1:" + std::to_string(gateway_port),
                    HttpClientOptions{timeout_ms});
  Result<HttpResponse> r = client.Send("POST", "/v1/events", ndjson, "application/x-ndjson");
  return r.ok() ? r->status : -1;
}

std::string EventLine(const std::string& device, const std::string& country, int64_t seq) {
  return "{\"device_id\":\"" + device + "\",\"country\":\"" + country + "\",\"sensor\":\"t\"," +
         "\"seq\":" + std::to_string(seq) + "}\n";
}

double GatewayBuffered(int gateway_port, const std::string& region) {
  std::string body;
  if (HttpGet(gateway_port, "/metrics", &body, 5000) != 200) {
    return -1;
  }
  const std::string key = "sluice_gateway_buffered_records{region=\"" + region + "\"} ";
  size_t at = body.find(key);
  return at == std::string::npos ? -1 : std::stod(body.substr(at + key.size()));
}

bool FetchAll(int broker_port, std::vector<StoredRecord>* out, std::string* error) {
  out->clear();
  for (int p = 0;; ++p) {
    int64_t offset = 0;
    while (true) {
      std::string body;
      int st = HttpGet(broker_port,
                       "/v1/topics/sensors/partitions/" + std::to_string(p) +
                           "/records?offset=" + std::to_string(offset) + "&max_records=5000" +
                           "&max_bytes=8388608",
                       &body, 30000);
      if (st == 404) {
        return true;  // past the last partition (or no topic yet)
      }
      if (st != 200) {
        *error = "fetch partition " + std::to_string(p) + " answered " + std::to_string(st) +
                 ": " + body.substr(0, 200);
        return false;
      }
      rapidjson::Document d;
      d.Parse(body.c_str());
      if (d.HasParseError() || !d.HasMember("records")) {
        *error = "fetch: bad JSON";
        return false;
      }
      for (const auto& r : d["records"].GetArray()) {
        StoredRecord s;
        s.partition = p;
        s.offset = r["offset"].GetInt64();
        s.device = r["device_id"].GetString();
        s.gateway_seq = r["gateway_seq"].IsInt64() ? r["gateway_seq"].GetInt64()
                                                   : std::stoll(r["gateway_seq"].GetString());
        if (r["payload"].IsObject() && r["payload"].HasMember("seq") &&
            r["payload"]["seq"].IsInt64()) {
          s.payload_seq = r["payload"]["seq"].GetInt64();
        }
        out->push_back(std::move(s));
      }
      int64_t next = d["next_offset"].GetInt64();
      if (next >= d["end_offset"].GetInt64() || next == offset) {
        break;
      }
      offset = next;
    }
  }
}

size_t CheckNoDuplicatesInOrder(const std::vector<StoredRecord>& records) {
  std::set<std::pair<std::string, int64_t>> seen;
  std::map<std::pair<std::string, int>, int64_t> last;  // (device, partition) -> seq
  int dups = 0, disorder = 0;
  for (const StoredRecord& r : records) {
    if (!seen.insert({r.device, r.payload_seq}).second && ++dups <= 5) {
      ADD_FAILURE() << "duplicate at the broker: " << r.device << " seq " << r.payload_seq
                    << " (partition " << r.partition << " offset " << r.offset << ")";
    }
    auto key = std::make_pair(r.device, r.partition);
    auto it = last.find(key);
    if (it != last.end() && r.payload_seq <= it->second && ++disorder <= 5) {
      ADD_FAILURE() << "out of order: " << r.device << " seq " << r.payload_seq << " after "
                    << it->second << " (partition " << r.partition << " offset " << r.offset
                    << ")";
    }
    last[key] = r.payload_seq;
  }
  EXPECT_EQ(dups, 0);
  EXPECT_EQ(disorder, 0);
  return seen.size();
}

}  // namespace sluice::testing
