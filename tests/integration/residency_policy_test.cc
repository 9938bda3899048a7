// One residency policy at every hop (issue 13): the shipped cluster (both brokers and both
// gateways load config/residency.yaml; the gateways' copy only has the test's broker URLs).
// A gateway sends each record to the most preferred region its country allows (CA is allowed in
// us-east and eu-central: it goes to us-east), refuses a country allowed nowhere with 422 naming
// the field and the country, and every process reports the policy's version. What landed is
// read back from each region; a broker refuses a forged batch for a country its region may
// not store (451), nothing of it stored.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/http.h"
#include "core/record_batch.h"
#include "core/residency_policy_file.h"
#include "tests/integration/cluster.h"

namespace sluice::testing {
namespace {

// The device ids of `region`'s records for `topic` events, through GET /v1/query.
std::vector<std::string> DevicesIn(Cluster& c, const std::string& region) {
  std::string body;
  EXPECT_EQ(HttpGet(c.broker_port(region), "/v1/query?limit=1000", &body), 200) << body;
  rapidjson::Document d;
  d.Parse(body.c_str());
  std::vector<std::string> out;
  if (d.HasParseError() || !d.HasMember("records")) return out;
  for (const auto& r : d["records"].GetArray()) {
    out.push_back(std::string(r["device_id"].GetString()) + "/" + r["country"].GetString());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ResidencyPolicyTest, GatewaysRouteByPreferenceAndRefuseCountriesAllowedNowhere) {
  TempDir dir;
  std::string error;
  auto cluster = Cluster::Start(dir, &error);
  ASSERT_NE(cluster, nullptr) << error;

  HttpClient gw("http://127.0.0.1:" + std::to_string(cluster->gateway_de_port()));
  const std::string events =
      R"([{"device_id":"de-1","country":"DE","v":1},{"device_id":"ca-1","country":"CA","v":2},)"
      R"({"device_id":"us-1","country":"US","v":3},{"device_id":"ch-1","country":"CH","v":4}])";
  auto accepted = gw.Send("POST", "/v1/events", events, "application/json");
  ASSERT_TRUE(accepted.ok()) << accepted.status().ToString();
  EXPECT_EQ(accepted->status, 202) << accepted->body;
  // Brazil is allowed in no region (default: deny): refused at the edge, nothing buffered.
  auto refused = gw.Send("POST", "/v1/events", R"({"device_id":"br-1","country":"BR","v":5})",
                         "application/json");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 422) << refused->body;
  EXPECT_NE(refused->body.find("\"field\":\"country\""), std::string::npos) << refused->body;
  EXPECT_NE(refused->body.find("BR"), std::string::npos) << refused->body;

  ASSERT_TRUE(WaitFor([&] { return cluster->GatewayBufferedRecords() == 0; }, 30000, 100))
      << cluster->LogTails();
  EXPECT_EQ(DevicesIn(*cluster, "eu-central"),
            (std::vector<std::string>{"ch-1/CH", "de-1/DE"}));
  EXPECT_EQ(DevicesIn(*cluster, "us-east"), (std::vector<std::string>{"ca-1/CA", "us-1/US"}));

  // Every process names the policy it enforces: the brokers the shipped file, the gateways
  // their copy (same regions and countries, the test's URLs).
  const std::string shipped =
      ResidencyPolicyFile::Load(SourcePath("config/residency.yaml")).value().version();
  for (const std::string region : {"eu-central", "us-east"}) {
    std::string body;
    ASSERT_EQ(HttpGet(cluster->broker_port(region), "/healthz", &body), 200);
    EXPECT_NE(body.find("\"residency_policy\":\"" + shipped + "\""), std::string::npos) << body;
  }
  for (const int port : {cluster->gateway_de_port(), cluster->gateway_us_port()}) {
    std::string body;
    ASSERT_EQ(HttpGet(port, "/healthz", &body), 200);
    EXPECT_NE(body.find("\"residency_policy\":\"sha256:"), std::string::npos) << body;
    ASSERT_EQ(HttpGet(port, "/metrics", &body), 200);
    EXPECT_NE(body.find("sluice_residency_policy_info{version=\"sha256:"), std::string::npos);
  }

  // A forged batch straight to eu-central for a country it may not store: 451, nothing stored.
  Record r;
  r.key = "forged-1";
  r.value = "{}";
  r.timestamp_ms = 1'700'000'000'000;
  r.headers = {{kHeaderCountry, "US"}};
  RecordBatch batch;
  batch.records = {r};
  HttpClient eu("http://127.0.0.1:" + std::to_string(cluster->broker_port("eu-central")));
  auto forged = eu.Send("POST", "/v1/topics/sensors/records", EncodeBatch(batch),
                        "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->status, 451) << forged->body;
  EXPECT_EQ(DevicesIn(*cluster, "eu-central"),
            (std::vector<std::string>{"ch-1/CH", "de-1/DE"}));
  EXPECT_EQ(cluster->DeadProcesses(), "");
}

}  // namespace
}  // namespace sluice::testing
