// Fleet generation, the schedule, payloads, ranges and config validation.
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "firmware-sim/fleet.h"
#include "firmware-sim/ledger.h"
#include "firmware-sim/scheduler.h"
#include "tests/firmware-sim/sim_test_util.h"

namespace sluice::sim {
namespace {

using testing::ConfigFromYaml;

const char* kTwoSites = R"(
sim:
  seed: 7
  devices: 101
  duration: 2s
  rate_per_device: 2.5
  sensors: [temperature, humidity]
  payload_bytes: 200
sites:
  - name: de
    countries: [DE, FR, US]
    transport: mixed
    mqtt_uri: tcp://127.0.0.1:1
    mqtt_topic_prefix: site-de/sensors
    http_url: http://127.0.0.1:2
  - name: us
    countries: [US, CA]
    transport: http
    http_url: http://127.0.0.1:3/
)";

TEST(FleetTest, SameSeedSameFleet) {
  SimConfig c = ConfigFromYaml(kTwoSites);
  std::vector<Device> a = BuildFleet(c);
  std::vector<Device> b = BuildFleet(c);
  ASSERT_EQ(a.size(), 101u);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].country, b[i].country);
    EXPECT_EQ(a[i].transport, b[i].transport);
    EXPECT_EQ(a[i].phase_us, b[i].phase_us);
  }
  c.seed = 8;
  std::vector<Device> other = BuildFleet(c);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].country != other[i].country;
  EXPECT_GT(differ, 10) << "another seed should draw other countries";
}

TEST(FleetTest, SpreadEvenlyWithIdsCountriesAndTransports) {
  SimConfig c = ConfigFromYaml(kTwoSites);
  std::vector<Device> fleet = BuildFleet(c);
  std::map<std::string, int> per_site;
  std::map<std::string, std::set<std::string>> countries;
  std::set<std::string> ids;
  for (const Device& d : fleet) {
    const std::string site = c.sites[static_cast<size_t>(d.site)].name;
    ++per_site[site];
    countries[site].insert(d.country);
    ids.insert(d.id);
    char expect[64];
    std::snprintf(expect, sizeof(expect), "%s-dev-%04d", site.c_str(), d.number);
    EXPECT_EQ(d.id, expect);
    if (site == "de") {
      EXPECT_EQ(d.transport, d.number % 2 == 0 ? DeviceTransport::kMqtt : DeviceTransport::kHttp)
          << d.id;
    } else {
      EXPECT_EQ(d.transport, DeviceTransport::kHttp) << d.id;
    }
    EXPECT_EQ(d.http_single, d.transport == DeviceTransport::kHttp && d.number % 4 == 3);
    EXPECT_GE(d.phase_us, 0);
    EXPECT_LT(d.phase_us, 400000);  // period at 2.5 events/s
  }
  EXPECT_EQ(ids.size(), fleet.size());
  EXPECT_EQ(per_site["de"], 51);  // 101 over 2 sites: the first gets the extra one
  EXPECT_EQ(per_site["us"], 50);
  EXPECT_EQ(fleet.front().id, "de-dev-0001");
  EXPECT_EQ(fleet.back().id, "us-dev-0050");
  EXPECT_EQ(countries["de"], (std::set<std::string>{"DE", "FR", "US"}));
  EXPECT_EQ(countries["us"], (std::set<std::string>{"CA", "US"}));
  EXPECT_EQ(c.sites[1].http_url, "http://127.0.0.1:3") << "trailing slash trimmed";
}

TEST(SchedulerTest, FractionalRateDenseSeqsAndCounts) {
  SimConfig c = ConfigFromYaml(kTwoSites);
  std::vector<Device> fleet = BuildFleet(c);
  EventScheduler sched(c, fleet, 1'000'000);
  EXPECT_EQ(sched.period_us(), 400000);
  std::vector<Event> events;
  // Drive time forward in uneven steps past the end.
  for (int64_t t = 0; t <= 2'100'000; t += 33'333) sched.TakeDue(t, &events);
  EXPECT_TRUE(sched.Done());
  std::map<int, std::vector<uint64_t>> seqs;
  for (const Event& e : events) {
    seqs[e.device].push_back(e.seq);
    EXPECT_GE(e.ts_ms, 1'000'000);
    EXPECT_LT(e.ts_ms, 1'000'000 + 2000);
    EXPECT_EQ(e.sensor, c.sensors[(e.seq - 1) % 2]);
  }
  uint64_t total = 0;
  for (const Device& d : fleet) {
    const uint64_t n = EventScheduler::EventsFor(d, 400000, 2'000'000);
    EXPECT_EQ(n, 5u) << "2 s at 2.5/s with phase < period";
    ASSERT_EQ(seqs[d.index].size(), n) << d.id;
    for (uint64_t i = 0; i < n; ++i) EXPECT_EQ(seqs[d.index][i], i + 1);
    total += n;
  }
  EXPECT_EQ(events.size(), total);
}

TEST(SchedulerTest, CancelStopsTheSchedule) {
  SimConfig c = ConfigFromYaml(kTwoSites);
  std::vector<Device> fleet = BuildFleet(c);
  EventScheduler sched(c, fleet, 0);
  std::vector<Event> events;
  sched.TakeDue(500'000, &events);
  EXPECT_FALSE(sched.Done());
  sched.Cancel();
  EXPECT_TRUE(sched.Done());
  size_t before = events.size();
  sched.TakeDue(10'000'000, &events);
  EXPECT_EQ(events.size(), before);
}

TEST(PayloadTest, JsonWithAllFieldsAndPaddedToSize) {
  SimConfig c = ConfigFromYaml(kTwoSites);
  std::vector<Device> fleet = BuildFleet(c);
  Event e{3, 17, "humidity", 1'700'000'000'123, SensorValue(7, 3, 17)};
  std::string p = EventPayload(fleet[3], e, 200);
  EXPECT_EQ(p.size(), 200u);
  rapidjson::Document doc;
  doc.Parse(p.c_str());
  ASSERT_FALSE(doc.HasParseError()) << p;
  EXPECT_EQ(std::string(doc["device_id"].GetString()), fleet[3].id);
  EXPECT_EQ(std::string(doc["sensor"].GetString()), "humidity");
  EXPECT_EQ(std::string(doc["country"].GetString()), fleet[3].country);
  EXPECT_EQ(doc["ts"].GetInt64(), 1'700'000'000'123);
  EXPECT_EQ(doc["seq"].GetUint64(), 17u);
  EXPECT_TRUE(doc["value"].IsNumber());
  EXPECT_TRUE(doc["pad"].IsString());
  // Too small a size: no padding, still valid JSON.
  std::string small = EventPayload(fleet[3], e, 10);
  doc.Parse(small.c_str());
  EXPECT_FALSE(doc.HasParseError());
  EXPECT_EQ(SensorValue(7, 3, 17), SensorValue(7, 3, 17));
  EXPECT_NE(SensorValue(7, 3, 17), SensorValue(7, 3, 18));
}

TEST(LedgerTest, RangesAndOutcomes) {
  EXPECT_EQ(ToRanges({1, 2, 3, 5, 7, 8}),
            (std::vector<SeqRange>{{1, 3}, {5, 5}, {7, 8}}));
  EXPECT_TRUE(ToRanges({}).empty());
  Ledger ledger(2);
  for (uint64_t s = 1; s <= 6; ++s) ledger.RecordSent(1, s);
  ledger.Resolve(1, 1, Outcome::kDelivered);
  ledger.Resolve(1, 2, Outcome::kDelivered);
  ledger.Resolve(1, 4, Outcome::kFailed);
  ledger.Resolve(1, 5, Outcome::kDelivered);
  DeviceOutcome o = ledger.Snapshot(1);
  EXPECT_EQ(o.sent, 6u);
  EXPECT_EQ(o.delivered_seqs, (std::vector<SeqRange>{{1, 2}, {5, 5}}));
  EXPECT_EQ(o.failed_seqs, (std::vector<SeqRange>{{4, 4}}));
  EXPECT_EQ(ledger.Snapshot(0).sent, 0u);
}

TEST(SimConfigTest, ShippedConfigLoads) {
  SimConfig c = LoadSimConfig(Config::Load(
      std::string(std::getenv("SLUICE_SOURCE_DIR") ? std::getenv("SLUICE_SOURCE_DIR") : ".") +
      "/config/sim.yaml"));
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.devices, 300);
  EXPECT_EQ(c.duration_ms, 5000);
  EXPECT_DOUBLE_EQ(c.rate_per_device, 2.0);
  EXPECT_EQ(c.sensors.size(), 3u);
  EXPECT_EQ(c.payload_bytes, 120);
  ASSERT_EQ(c.sites.size(), 2u);
  EXPECT_EQ(c.sites[0].name, "de");
  EXPECT_EQ(c.sites[0].transport, Transport::kMixed);
  EXPECT_EQ(c.sites[1].mqtt_topic_prefix, "site-us/sensors");
}

TEST(SimConfigTest, RejectsBadValuesAndUnknownKeys) {
  const std::string site =
      "sites:\n  - name: a\n    countries: [DE]\n    transport: http\n    http_url: http://x\n";
  EXPECT_NO_THROW(ConfigFromYaml("sim: {devices: 1}\n" + site));
  EXPECT_THROW(ConfigFromYaml("sim: {devices: 1, typo: 3}\n" + site), ConfigError);
  EXPECT_THROW(ConfigFromYaml("sim: {devices: 0}\n" + site), ConfigError);
  EXPECT_THROW(ConfigFromYaml("sim: {rate_per_device: 0}\n" + site), ConfigError);
  EXPECT_THROW(ConfigFromYaml("sim: {sensors: [a/b]}\n" + site), ConfigError);
  EXPECT_THROW(ConfigFromYaml("sim: {devices: 1}\n"), ConfigError) << "no sites";
  EXPECT_THROW(ConfigFromYaml("sites:\n  - name: a\n    countries: [Germany]\n"
                              "    transport: http\n    http_url: http://x\n"),
               ConfigError);
  EXPECT_THROW(ConfigFromYaml("sites:\n  - name: a\n    countries: [DE]\n    transport: carrier\n"),
               ConfigError);
  EXPECT_THROW(ConfigFromYaml("sites:\n  - name: a\n    countries: [DE]\n    transport: mqtt\n"),
               ConfigError)
      << "mqtt without mqtt_uri";
  try {
    ConfigFromYaml("sim: {devices: 1, typo: 3}\n" + site);
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("typo"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sluice::sim
