// ResidencyPolicyFile (issue 13): the shipped config/residency.yaml loads; preferences, default
// and failover are read as written; every kind of mistake is refused with "<file>:<line>: <key>:
// <reason>"; the version is a hash of the bytes (any edit changes it, the same bytes give the
// same version).
#include "core/residency_policy_file.h"

#include <gtest/gtest.h>

#include "core/config.h"
#include "tests/common/test_env.h"

namespace sluice {
namespace {

constexpr const char* kPolicy = R"(regions:
  - name: eu-central
    jurisdiction: EU
    brokers: [http://127.0.0.1:9101]
  - name: eu-west
    brokers: [https://eu-west-1.example:9101, https://eu-west-2.example:9101]
  - name: us-east
    brokers: [http://127.0.0.1:9102]
countries:
  DE: [eu-central]
  CH: [eu-central, eu-west]
  US: [us-east]
default: [eu-west]
failover: next_allowed
)";

TEST(ResidencyPolicyFileTest, ReadsRegionsPreferencesDefaultAndFailover) {
  auto p = ResidencyPolicyFile::Parse(kPolicy, "policy.yaml");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->regions().size(), 3u);
  EXPECT_EQ(p->regions()[0].jurisdiction, "EU");
  EXPECT_EQ(p->FindRegion(RegionId("eu-west"))->brokers.size(), 2u);
  EXPECT_EQ(p->FindRegion(RegionId("mars")), nullptr);
  EXPECT_EQ(p->Allowed(CountryCode("CH")),
            (std::vector<RegionId>{RegionId("eu-central"), RegionId("eu-west")}));
  EXPECT_TRUE(p->Allows(CountryCode("DE"), RegionId("eu-central")));
  EXPECT_FALSE(p->Allows(CountryCode("DE"), RegionId("us-east")));
  // Unlisted real countries take default:, made-up codes go nowhere.
  EXPECT_EQ(p->Allowed(CountryCode("BR")), std::vector<RegionId>{RegionId("eu-west")});
  EXPECT_TRUE(p->Allowed(CountryCode("XX")).empty());
  EXPECT_TRUE(p->Allowed(CountryCode("de")).empty());
  EXPECT_TRUE(p->DefaultAllows(RegionId("eu-west")));
  EXPECT_FALSE(p->DefaultAllows(RegionId("eu-central")));
  EXPECT_EQ(p->ListedCountriesOf(RegionId("eu-central")),
            (std::vector<CountryCode>{CountryCode("CH"), CountryCode("DE")}));
  EXPECT_EQ(p->failover(), ResidencyFailover::kNextAllowed);
  EXPECT_EQ(p->version().rfind("sha256:", 0), 0u);
  EXPECT_EQ(p->version().size(), 7u + 16u);

  auto same = ResidencyPolicyFile::Parse(kPolicy, "elsewhere.yaml");
  auto edited = ResidencyPolicyFile::Parse(std::string(kPolicy) + "# a comment\n", "policy.yaml");
  ASSERT_TRUE(same.ok() && edited.ok());
  EXPECT_EQ(same->version(), p->version());
  EXPECT_NE(edited->version(), p->version());
}

TEST(ResidencyPolicyFileTest, DefaultsToDenyAndHold) {
  auto p = ResidencyPolicyFile::Parse("regions: [{name: r}]\ncountries: {DE: [r]}\n", "p");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE(p->Allowed(CountryCode("FR")).empty());
  EXPECT_EQ(p->failover(), ResidencyFailover::kHold);
}

TEST(ResidencyPolicyFileTest, MistakesNameTheFileLineKeyAndReason) {
  struct Case {
    std::string yaml;
    std::string want;  // a substring of the error
  };
  const std::string regions = "regions:\n  - name: eu\n  - name: us\n";
  const std::vector<Case> cases = {
      {regions + "countries:\n  DE: [eu, mars]\n",
       "p.yaml:5: countries.DE: unknown region mars"},
      {regions + "countries:\n  XX: [eu]\n",
       "p.yaml:5: countries.XX: 'XX' is not an ISO 3166-1 alpha-2 country code"},
      {regions + "countries:\n  de: [eu]\n", "'de' is not an ISO 3166-1 alpha-2"},
      {regions + "countries:\n  DE: []\n", "p.yaml:5: countries.DE: country DE has no region"},
      {regions + "countries:\n  DE: [eu, eu]\n", "countries.DE: region eu is listed twice"},
      {"regions:\n  - name: eu\n  - name: eu\n", "p.yaml:3: regions.1.name: region eu is listed twice"},
      {regions + "default: [mars]\n", "p.yaml:4: default: unknown region mars"},
      {regions + "failover: sometimes\n", "p.yaml:4: failover: must be hold or next_allowed"},
      {regions + "countries: {DE: [eu]}\ncolour: blue\n", "colour"},
      {"countries: {DE: [eu]}\n", "regions: at least one region"},
      {"regions:\n  - name: Eu Central\n", "regions.0.name: 'Eu Central' is not a region name"},
      {"regions:\n  - name: eu\n    brokers: [ftp://x]\n", "regions.0.brokers: 'ftp://x'"},
      {"regions: [\n", "p.yaml:"},
  };
  for (const Case& c : cases) {
    auto p = ResidencyPolicyFile::Parse(c.yaml, "p.yaml");
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.want), std::string::npos)
        << "want '" << c.want << "' in: " << p.status().message();
  }
  auto missing = ResidencyPolicyFile::Load("/nonexistent/residency.yaml");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(ResidencyPolicyFileTest, TheShippedPolicyLoadsAndARelativePathIsTheConfigFilesDirectory) {
  auto shipped = ResidencyPolicyFile::Load(testing::SourcePath("config/residency.yaml"));
  ASSERT_TRUE(shipped.ok()) << shipped.status().ToString();
  EXPECT_NE(shipped->FindRegion(RegionId("eu-central")), nullptr);
  EXPECT_EQ(shipped->Allowed(CountryCode("CA")).size(), 2u) << "one country in two regions";
  EXPECT_TRUE(shipped->Allowed(CountryCode("BR")).empty()) << "unlisted: denied";

  testing::TempDir dir;
  ASSERT_TRUE(testing::WriteFile(dir.Sub("residency.yaml"), kPolicy));
  ASSERT_TRUE(
      testing::WriteFile(dir.Sub("broker.yaml"), "residency:\n  policy_file: residency.yaml\n"));
  const Config c = Config::Load(dir.Sub("broker.yaml"));
  auto loaded = LoadResidencyPolicy(c, "residency.policy_file");
  ASSERT_NE(loaded, nullptr);
  EXPECT_EQ(loaded->regions().size(), 3u);
  EXPECT_EQ(LoadResidencyPolicy(Config::Parse("", "<defaults>"), "residency.policy_file"),
            nullptr);
  ASSERT_TRUE(testing::WriteFile(dir.Sub("bad.yaml"), "regions: []\n"));
  try {
    LoadResidencyPolicy(Config::Parse("residency: {policy_file: " + dir.Sub("bad.yaml") + "}\n",
                                      "gw.yaml"),
                        "residency.policy_file");
    ADD_FAILURE() << "an invalid policy was loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("gw.yaml:1: residency.policy_file: " + dir.Sub("bad.yaml") +
                                         ":1: regions: at least one region"),
              std::string::npos)
        << e.what();
  }
}

TEST(ResidencyPolicyFileTest, KnowsEveryOfficialCountryCodeAndNoOther) {
  int n = 0;
  for (char a = 'A'; a <= 'Z'; ++a) {
    for (char b = 'A'; b <= 'Z'; ++b) {
      n += IsIsoCountryCode(std::string{a, b});
    }
  }
  EXPECT_EQ(n, 249);
  EXPECT_TRUE(IsIsoCountryCode("DE"));
  EXPECT_FALSE(IsIsoCountryCode("EU"));
  EXPECT_FALSE(IsIsoCountryCode("XK"));
  EXPECT_FALSE(IsIsoCountryCode("D"));
}

}  // namespace
}  // namespace sluice
