// CountrySource (issue 13): where a gateway takes an event's country from. event: the event's
// own, else the site's; site: always the site's, a different claim refused; registry: the
// device's pinned country (exact id, else the longest matching prefix), a contradicting claim
// or an unknown device refused, both countries named; the registry file is re-read when it
// changes, and a broken new version keeps the old one.
#include "gateway/routing/country_source.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

std::optional<CountryCode> C(const char* c) { return CountryCode(c); }

TEST(CountrySourceTest, EventAndSite) {
  ManualClock clock;
  auto event = CountrySource::Create(CountrySourceKind::kEvent, CountryCode("DE"), "", clock);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ((*event)->Decide(DeviceId("d"), C("US")).country, CountryCode("US"));
  EXPECT_EQ((*event)->Decide(DeviceId("d"), std::nullopt).country, CountryCode("DE"));

  auto site = CountrySource::Create(CountrySourceKind::kSite, CountryCode("DE"), "", clock);
  ASSERT_TRUE(site.ok());
  EXPECT_EQ((*site)->Decide(DeviceId("d"), std::nullopt).country, CountryCode("DE"));
  EXPECT_TRUE((*site)->Decide(DeviceId("d"), C("DE")).error.empty());
  const CountryDecision refused = (*site)->Decide(DeviceId("d7"), C("US"));
  EXPECT_EQ(refused.error, "country_contradiction");
  EXPECT_EQ(refused.field, "country");
  EXPECT_NE(refused.reason.find("claims country US"), std::string::npos) << refused.reason;
  EXPECT_NE(refused.reason.find("DE"), std::string::npos) << refused.reason;
}

TEST(CountrySourceTest, RegistryPinsDevicesAndIsReloadedWhenItChanges) {
  sluice::testing::TempDir dir;
  const std::string path = dir.Sub("devices.yaml");
  ASSERT_TRUE(sluice::testing::WriteFile(
      path, "devices:\n  boiler-7: FR\nprefixes:\n  de-: DE\n  de-fr-: FR\n  us-: US\n"));
  ManualClock clock;
  auto reg = CountrySource::Create(CountrySourceKind::kRegistry, CountryCode("DE"), path, clock);
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  CountrySource& s = **reg;
  EXPECT_EQ(s.Decide(DeviceId("boiler-7"), std::nullopt).country, CountryCode("FR"));
  EXPECT_EQ(s.Decide(DeviceId("de-42"), std::nullopt).country, CountryCode("DE"));
  EXPECT_EQ(s.Decide(DeviceId("de-fr-42"), std::nullopt).country, CountryCode("FR"))
      << "the longest prefix wins";
  EXPECT_TRUE(s.Decide(DeviceId("us-1"), C("US")).error.empty());
  const CountryDecision forged = s.Decide(DeviceId("de-42"), C("US"));
  EXPECT_EQ(forged.error, "country_contradiction");
  EXPECT_NE(forged.reason.find("claims country US"), std::string::npos) << forged.reason;
  EXPECT_NE(forged.reason.find("pins it to DE"), std::string::npos) << forged.reason;
  const CountryDecision unknown = s.Decide(DeviceId("mx-1"), C("MX"));
  EXPECT_EQ(unknown.error, "device_unregistered");
  EXPECT_EQ(unknown.field, "device_id");

  // Changed on disk: seen once the recheck interval passed (mtime may need a tick).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(sluice::testing::WriteFile(path, "prefixes:\n  mx-: MX\n  de-: AT\n"));
  EXPECT_EQ(s.Decide(DeviceId("de-42"), std::nullopt).country, CountryCode("DE")) << "not yet";
  clock.AdvanceMs(1500);
  EXPECT_EQ(s.Decide(DeviceId("mx-1"), std::nullopt).country, CountryCode("MX"));
  EXPECT_EQ(s.Decide(DeviceId("de-42"), std::nullopt).country, CountryCode("AT"));
  // A broken version is not taken: the last good one stays.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(sluice::testing::WriteFile(path, "prefixes:\n  mx-: Mexico\n"));
  clock.AdvanceMs(1500);
  EXPECT_EQ(s.Decide(DeviceId("mx-1"), std::nullopt).country, CountryCode("MX"));
}

TEST(CountrySourceTest, AnInvalidRegistryIsAStartUpError) {
  sluice::testing::TempDir dir;
  ManualClock clock;
  EXPECT_FALSE(CountrySource::Create(CountrySourceKind::kRegistry, CountryCode("DE"),
                                     dir.Sub("missing.yaml"), clock)
                   .ok());
  auto bad = ParseDeviceRegistry("devices:\n  a: DE\n  b: ZZ\n", "r.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("r.yaml:3: devices.b: 'ZZ' is not an ISO 3166-1"),
            std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(ParseDeviceRegistry("colour: blue\n", "r.yaml").ok());
}

}  // namespace
}  // namespace sluice::gateway
