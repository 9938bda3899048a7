// A fleet of seven countries over three regions (issue 13), real brokers and gateways on one
// residency policy: DE and FR may live in eu-central, US in us-east, CA in us-east or
// eu-central, SG and JP in ap-southeast; BR in no region. One gateway takes each event's
// country; a second pins its devices to FR through a device registry. What each region stores
// is read from its broker's data directory by an independent reader of Kafka's on-disk format
// (tests/common/kafka_log_reader.h, its own parser and CRC-32C, no Sluice decoder) and checked
// against the policy as this test states it: every record in an allowed region, with exactly one
// country, each sent event exactly once across the regions, nothing of BR and nothing of a
// refused claim anywhere. `sluice query --all-regions` reports the same counts per region.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "core/http.h"
#include "tests/common/kafka_log_reader.h"
#include "tests/integration/residency_fleet.h"

namespace sluice::testing {
namespace {

// The policy as this test states it (the file below says the same in YAML).
const std::map<std::string, std::set<std::string>>& AllowedRegions() {
  static const std::map<std::string, std::set<std::string>> m = {
      {"DE", {"eu-central"}}, {"FR", {"eu-central"}},   {"US", {"us-east"}},
      {"CA", {"us-east", "eu-central"}}, {"SG", {"ap-southeast"}}, {"JP", {"ap-southeast"}}};
  return m;
}

constexpr int kDevicesPerCountry = 12;
constexpr int kEventsPerDevice = 5;

struct Sent {
  std::map<std::string, std::string> country_of;  // "device#n" -> country, accepted events
};

int Post(int port, const std::string& body, std::string* answer = nullptr) {
  HttpClient gw("http://127.0.0.1:" + std::to_string(port));
  auto r = gw.Send("POST", "/v1/events", body, "application/json");
  if (!r.ok()) return -1;
  if (answer != nullptr) *answer = r->body;
  return r->status;
}

std::string Event(const std::string& device, int n, const std::string& country) {
  std::string e = "{\"device_id\":\"" + device + "\",\"sensor\":\"temp\",\"n\":" +
                  std::to_string(n);
  if (!country.empty()) e += ",\"country\":\"" + country + "\"";
  return e + "}";
}

TEST(ResidencyFleetTest, EveryRecordLandsOnlyWhereItsCountryIsAllowedReadFromDisk) {
  TempDir dir;
  ResidencyFleet fleet(dir, {"eu-central", "us-east", "ap-southeast"});
  ASSERT_FALSE(fleet.WritePolicy("countries:\n"
                                 "  DE: [eu-central]\n  FR: [eu-central]\n  US: [us-east]\n"
                                 "  CA: [us-east, eu-central]\n"
                                 "  SG: [ap-southeast]\n  JP: [ap-southeast]\n"
                                 "default: deny\nfailover: hold\n")
                   .empty());
  std::string error;
  for (const std::string region : {"eu-central", "us-east", "ap-southeast"}) {
    ASSERT_TRUE(fleet.StartBroker(region, &error)) << error;
  }
  const int by_event = fleet.StartGateway("gw-event", {}, &error);
  ASSERT_NE(by_event, 0) << error;
  ASSERT_TRUE(WriteFile(dir.Sub("devices.yaml"),
                        "devices:\n  roamer-7: FR\nprefixes:\n  fr-: FR\n"));
  const int pinned = fleet.StartGateway(
      "gw-fr",
      {"gateway.country=FR", "residency.country_source=registry",
       "residency.device_registry=" + dir.Sub("devices.yaml")},
      &error);
  ASSERT_NE(pinned, 0) << error;

  Sent sent;
  // Interleaved batches of every country through the first gateway.
  for (int n = 0; n < kEventsPerDevice; ++n) {
    std::string body = "[";
    for (const auto& [country, regions] : AllowedRegions()) {
      if (country == "FR") continue;  // FR devices are behind the pinned gateway
      for (int d = 0; d < kDevicesPerCountry; ++d) {
        const std::string device = "ev-" + country + "-" + std::to_string(d);
        body += std::string(body.size() > 1 ? "," : "") + Event(device, n, country);
        sent.country_of[device + "#" + std::to_string(n)] = country;
      }
    }
    ASSERT_EQ(Post(by_event, body + "]"), 202);
  }
  // BR is allowed nowhere: refused at the edge, nothing stored.
  std::string answer;
  EXPECT_EQ(Post(by_event, "[" + Event("ev-BR-0", 0, "BR") + "]", &answer), 422) << answer;
  // The pinned gateway: FR devices by prefix and by id, with or without a claim.
  for (int n = 0; n < kEventsPerDevice; ++n) {
    std::string body = "[";
    for (int d = 0; d < kDevicesPerCountry; ++d) {
      const std::string device = d == 0 ? "roamer-7" : "fr-" + std::to_string(d);
      body += std::string(body.size() > 1 ? "," : "") + Event(device, n, d % 2 ? "FR" : "");
      sent.country_of[device + "#" + std::to_string(n)] = "FR";
    }
    ASSERT_EQ(Post(pinned, body + "]"), 202);
  }
  // A pinned device claiming another country, and an unregistered one: refused, not stored.
  EXPECT_EQ(Post(pinned, "[" + Event("fr-1", 99, "DE") + "]", &answer), 422) << answer;
  EXPECT_NE(answer.find("country_contradiction"), std::string::npos) << answer;
  EXPECT_EQ(Post(pinned, "[" + Event("us-9", 99, "US") + "]", &answer), 422) << answer;
  EXPECT_NE(answer.find("device_unregistered"), std::string::npos) << answer;

  ASSERT_TRUE(WaitFor(
      [&] { return fleet.GatewayBuffered("gw-event") == 0 && fleet.GatewayBuffered("gw-fr") == 0; },
      60000, 100))
      << fleet.LogTails();

  // The operator's view, before the brokers stop: every region asked, nothing copied.
  std::string cli_out;
  const int rc = RunCommand({BinPath("sluice"), "query", "--config", fleet.policy_path(),
                             "--all-regions", "--limit", "1"},
                            dir.Sub("cli.log"), 60000);
  cli_out = ReadFileOrEmpty(dir.Sub("cli.log"));
  EXPECT_EQ(rc, 0) << cli_out;

  for (const std::string region : {"eu-central", "us-east", "ap-southeast"}) {
    ASSERT_TRUE(fleet.StopBroker(region)) << region;
  }
  EXPECT_TRUE(fleet.StopGateway("gw-event"));
  EXPECT_TRUE(fleet.StopGateway("gw-fr"));

  // The independent reader: what is on each region's disk.
  std::map<std::string, std::string> stored_in;           // "device#n" -> region
  std::map<std::pair<std::string, std::string>, int> per_region_country;
  for (const std::string region : {"eu-central", "us-east", "ap-southeast"}) {
    Result<DiskLogScan> scan = ReadBrokerLogs(fleet.broker_data_dir(region), "sensors");
    ASSERT_TRUE(scan.ok()) << region << ": " << scan.status().ToString();
    EXPECT_EQ(scan->torn_tails, 0) << region;
    for (const DiskRecord& r : scan->records) {
      int countries = 0;
      const std::string country = r.Header("country", &countries);
      ASSERT_EQ(countries, 1) << region << " offset " << r.offset;
      auto allowed = AllowedRegions().find(country);
      ASSERT_NE(allowed, AllowedRegions().end())
          << region << " stores a record of " << country << " (allowed nowhere)";
      EXPECT_EQ(allowed->second.count(region), 1u)
          << region << " stores a record of " << country << ", allowed only elsewhere";
      // The payload's "n" and the key (device id) name the event.
      const size_t at = r.value.find("\"n\":");
      ASSERT_NE(at, std::string::npos) << r.value;
      const std::string id = r.key + "#" + std::to_string(std::stoi(r.value.substr(at + 4)));
      EXPECT_TRUE(stored_in.emplace(id, region).second)
          << id << " stored twice (" << stored_in[id] << " and " << region << ")";
      EXPECT_EQ(sent.country_of.count(id), 1u) << id << " was never accepted";
      per_region_country[{region, country}] += 1;
    }
  }
  EXPECT_EQ(stored_in.size(), sent.country_of.size());  // each accepted event, exactly once
  for (const auto& [id, country] : sent.country_of) {
    EXPECT_EQ(stored_in.count(id), 1u) << id << " (" << country << ") is in no region";
  }
  // Seven countries, three regions: CA went to its preferred us-east (nothing was down).
  const int per_country = kDevicesPerCountry * kEventsPerDevice;
  EXPECT_EQ((per_region_country[{"eu-central", "DE"}]), per_country);
  EXPECT_EQ((per_region_country[{"eu-central", "FR"}]), per_country);
  EXPECT_EQ((per_region_country[{"us-east", "US"}]), per_country);
  EXPECT_EQ((per_region_country[{"us-east", "CA"}]), per_country);
  EXPECT_EQ((per_region_country[{"ap-southeast", "SG"}]), per_country);
  EXPECT_EQ((per_region_country[{"ap-southeast", "JP"}]), per_country);
  EXPECT_EQ(per_region_country.size(), 6u);
  // The CLI's per-region counts are the disk's.
  for (const auto& [rc_key, n] : per_region_country) {
    EXPECT_NE(cli_out.find("=== region " + rc_key.first + " ==="), std::string::npos) << cli_out;
    const size_t at = cli_out.find("=== counts per country per region");
    ASSERT_NE(at, std::string::npos) << cli_out;
    bool found = false;
    std::istringstream lines(cli_out.substr(at));
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string region, country, count;
      words >> region >> country >> count;
      found = found || (region == rc_key.first && country == rc_key.second &&
                        count == std::to_string(n));
    }
    EXPECT_TRUE(found) << rc_key.first << " " << rc_key.second << " " << n << "\n" << cli_out;
  }
}

}  // namespace
}  // namespace sluice::testing
