// Residency when a country's preferred region is down (issue 13), with real brokers and
// gateways: CA is allowed in us-east then eu-central, US only in us-east. With us-east down,
// a gateway under `failover: hold` keeps every record buffered until us-east returns; one under
// `failover: next_allowed` delivers the CA records it never sent to eu-central after
// residency.failover_after, keeps the US ones (allowed nowhere else) and the batch it had sent
// for us-east. Nothing ever reaches a region its country does not allow, and every record is
// stored exactly once across the regions (read back from both brokers).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/http.h"
#include "tests/integration/residency_fleet.h"

namespace sluice::testing {
namespace {

std::string Events(const std::string& prefix, const std::string& country, int from, int n) {
  std::string body = "[";
  for (int i = from; i < from + n; ++i) {
    body += std::string(i > from ? "," : "") + "{\"device_id\":\"" + prefix + "-" +
            std::to_string(i) + "\",\"country\":\"" + country + "\",\"v\":" +
            std::to_string(i) + "}";
  }
  return body + "]";
}

void Post(int port, const std::string& body) {
  HttpClient gw("http://127.0.0.1:" + std::to_string(port));
  auto r = gw.Send("POST", "/v1/events", body, "application/json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->status, 202) << r->body;
}

std::vector<std::string> Expect(const std::string& prefix, const std::string& country, int from,
                                int n) {
  std::vector<std::string> out;
  for (int i = from; i < from + n; ++i) {
    out.push_back(prefix + "-" + std::to_string(i) + "/" + country);
  }
  return out;
}

std::vector<std::string> Only(const std::vector<std::string>& all, const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& d : all) {
    if (d.rfind(prefix, 0) == 0) out.push_back(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(ResidencyFailoverTest, HoldWaitsNextAllowedMovesOnAndNeitherReachesAForbiddenRegion) {
  TempDir dir;
  ResidencyFleet fleet(dir, {"eu-central", "us-east"});
  // The policy names failover once for the fleet; two copies differ only in that line.
  const std::string countries =
      "countries:\n  DE: [eu-central]\n  US: [us-east]\n  CA: [us-east, eu-central]\n"
      "default: deny\n";
  ASSERT_FALSE(fleet.WritePolicy(countries + "failover: next_allowed\n").empty());
  const std::string next_policy = fleet.policy_path();
  const std::string hold_policy = dir.Sub("residency-hold.yaml");
  {
    std::string text = ReadFileOrEmpty(next_policy);
    text.replace(text.find("next_allowed"), 12, "hold");
    ASSERT_TRUE(WriteFile(hold_policy, text));
  }
  std::string error;
  ASSERT_TRUE(fleet.StartBroker("eu-central", &error)) << error;
  // us-east is down from the start.
  const std::vector<std::string> fast = {"residency.failover_after=1s",
                                         "forward.backoff_max=300ms", "forward.linger=0ms"};
  std::vector<std::string> next_sets = fast;
  const int next = fleet.StartGateway("gw-next", next_sets, &error);
  ASSERT_NE(next, 0) << error;
  std::vector<std::string> hold_sets = fast;
  hold_sets.push_back("residency.policy_file=" + hold_policy);
  const int hold = fleet.StartGateway("gw-hold", hold_sets, &error);
  ASSERT_NE(hold, 0) << error;

  // One CA record each: the batch sent to us-east, which fails (the region goes down).
  Post(next, Events("next-ca", "CA", 0, 1));
  Post(hold, Events("hold-ca", "CA", 0, 1));
  for (const std::string id : {"gw-next", "gw-hold"}) {
    ASSERT_TRUE(WaitFor(
        [&] {
          const std::string failed =
              "sluice_gateway_forward_failures_total{reason=\"transport\",region=\"us-east\"}";
          return fleet.GatewayMetrics(id).find(failed) != std::string::npos;
        },
        20000, 50))
        << fleet.GatewayMetrics(id);
  }
  // Then what stays unsent: 20 CA, 10 US, and 5 DE for the region that is up.
  for (const auto& [port, p] : {std::pair<int, std::string>{next, "next"}, {hold, "hold"}}) {
    Post(port, Events(p + "-ca", "CA", 1, 20));
    Post(port, Events(p + "-us", "US", 0, 10));
    Post(port, Events(p + "-de", "DE", 0, 5));
  }

  // next_allowed: after failover_after the 20 unsent CA records reach eu-central.
  const int eu = fleet.broker_port("eu-central");
  ASSERT_TRUE(WaitFor(
      [&] { return Only(QueryDevices(eu), "next-ca").size() == 20; }, 30000, 100))
      << fleet.LogTails();
  EXPECT_EQ(Only(QueryDevices(eu), "next-ca"), Sorted(Expect("next-ca", "CA", 1, 20)));
  EXPECT_EQ(fleet.GatewayBuffered("gw-next", "us-east"), 11);  // 1 CA sent once + 10 US
  EXPECT_NE(fleet.GatewayMetrics("gw-next").find(
                "sluice_gateway_failover_moved_total{from=\"us-east\",to=\"eu-central\"} 20"),
            std::string::npos)
      << fleet.GatewayMetrics("gw-next");
  // hold: nothing of CA moved (checked well past failover_after).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(fleet.GatewayBuffered("gw-hold", "us-east"), 31);
  EXPECT_TRUE(Only(QueryDevices(eu), "hold-ca").empty());

  // us-east returns: both gateways drain.
  ASSERT_TRUE(fleet.StartBroker("us-east", &error)) << error;
  ASSERT_TRUE(WaitFor(
      [&] {
        return fleet.GatewayBuffered("gw-next") == 0 && fleet.GatewayBuffered("gw-hold") == 0;
      },
      60000, 100))
      << fleet.LogTails();
  const std::vector<std::string> in_eu = QueryDevices(eu);
  const std::vector<std::string> in_us = QueryDevices(fleet.broker_port("us-east"));
  // hold: everything of CA and US in us-east.
  std::vector<std::string> hold_us = Expect("hold-ca", "CA", 0, 21);
  for (const auto& d : Expect("hold-us", "US", 0, 10)) hold_us.push_back(d);
  EXPECT_EQ(Only(in_us, "hold-"), Sorted(hold_us));
  EXPECT_EQ(Only(in_eu, "hold-"), Sorted(Expect("hold-de", "DE", 0, 5)));
  // next_allowed: the CA record it had sent and the US records in us-east, the rest of CA in
  // eu-central: each exactly once.
  std::vector<std::string> next_us = Expect("next-ca", "CA", 0, 1);
  for (const auto& d : Expect("next-us", "US", 0, 10)) next_us.push_back(d);
  EXPECT_EQ(Only(in_us, "next-"), Sorted(next_us));
  std::vector<std::string> next_eu = Expect("next-ca", "CA", 1, 20);
  for (const auto& d : Expect("next-de", "DE", 0, 5)) next_eu.push_back(d);
  EXPECT_EQ(Only(in_eu, "next-"), Sorted(next_eu));
  // Never a forbidden region: no US record in eu-central, no DE record in us-east.
  for (const std::string& d : in_eu) EXPECT_EQ(d.find("/US"), std::string::npos) << d;
  for (const std::string& d : in_us) EXPECT_EQ(d.find("/DE"), std::string::npos) << d;
  EXPECT_EQ(fleet.DeadProcesses(), "");
}

}  // namespace
}  // namespace sluice::testing
