#include "core/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "tests/common/test_env.h"

namespace sluice {
namespace {

TEST(ConfigTest, TypedGettersReadValues) {
  Config c = Config::Parse(
      "http:\n  port: 9101\n  max_body: 16MiB\n  linger: 20ms\n  on: true\nname: x\n"
      "list: [a, b]\nratio: 0.5\n",
      "t.yaml");
  EXPECT_EQ(c.GetInt("http.port", 0), 9101);
  EXPECT_EQ(c.GetBytes("http.max_body", 0), 16 * 1024 * 1024);
  EXPECT_EQ(c.GetDurationMs("http.linger", 0), 20);
  EXPECT_TRUE(c.GetBool("http.on", false));
  EXPECT_EQ(c.GetString("name", ""), "x");
  EXPECT_EQ(c.GetStringList("list", {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_DOUBLE_EQ(c.GetDouble("ratio", 0), 0.5);
  EXPECT_EQ(c.GetInt("absent", 7), 7);
  EXPECT_EQ(c.Sub("http").GetInt("port", 0), 9101);
}

TEST(ConfigTest, DurationOrOff) {
  Config c = Config::Parse("a: -1\nb: 24h\nc: -5\n", "t.yaml");
  EXPECT_EQ(c.GetDurationMsOrOff("a", 7), -1);
  EXPECT_EQ(c.GetDurationMsOrOff("b", 7), 24 * 3600 * 1000);
  EXPECT_EQ(c.GetDurationMsOrOff("absent", 7), 7);
  EXPECT_THROW(c.GetDurationMsOrOff("c", 7), ConfigError);
}

TEST(ConfigTest, WrongTypeNamesFileLineKeyAndReason) {
  Config c = Config::Parse("http:\n  port: abc\n", "gw.yaml");
  try {
    c.GetInt("http.port", 0);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "gw.yaml:2: http.port: expected an integer, got 'abc'");
  }
}

TEST(ConfigTest, MissingRequiredKey) {
  Config c = Config::Parse("a: 1\n", "f.yaml");
  EXPECT_THROW(c.RequireString("region.name"), ConfigError);
}

TEST(ConfigTest, UnknownKeyIsRejected) {
  Config c = Config::Parse("http:\n  port: 1\n  prot: 2\n", "f.yaml");
  c.GetInt("http.port", 0);
  try {
    c.RejectUnknownKeys();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("f.yaml:3: http.prot: unknown key"), std::string::npos)
        << e.what();
  }
}

TEST(ConfigTest, ListOfMapsAndUnknownKeyInside) {
  Config c = Config::Parse("regions:\n  - name: eu\n    url: u1\n  - name: us\n    urk: u2\n", "f");
  auto regions = c.GetList("regions");
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].GetString("name", ""), "eu");
  EXPECT_EQ(regions[1].GetString("url", "none"), "none");
  regions[0].GetString("url", "");
  regions[1].GetString("name", "");
  try {
    c.RejectUnknownKeys();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("regions.1.urk"), std::string::npos) << e.what();
  }
}

TEST(ConfigTest, EnvironmentExpansion) {
  setenv("SLUICE_TEST_PORT", "1234", 1);
  unsetenv("SLUICE_TEST_UNSET");
  Config c = Config::Parse(
      "port: ${SLUICE_TEST_PORT}\ndir: ${SLUICE_TEST_UNSET:-/tmp/x}\n# ${NOT_EXPANDED}\n", "f");
  EXPECT_EQ(c.GetInt("port", 0), 1234);
  EXPECT_EQ(c.GetString("dir", ""), "/tmp/x");
  EXPECT_THROW(Config::Parse("a: ${SLUICE_TEST_UNSET}\n", "f"), ConfigError);
}

TEST(ConfigTest, OverridesReplaceAddAndIndex) {
  Config c = Config::Parse("http:\n  port: 1\nregions:\n  - name: eu\n    url: a\n", "f",
                           {"http.port=9", "new.key=v", "regions.0.url=http://x:1",
                            "topics=[a/#, b/#]"});
  EXPECT_EQ(c.GetInt("http.port", 0), 9);
  EXPECT_EQ(c.GetString("new.key", ""), "v");
  EXPECT_EQ(c.GetList("regions")[0].GetString("url", ""), "http://x:1");
  EXPECT_EQ(c.GetStringList("topics", {}), (std::vector<std::string>{"a/#", "b/#"}));
}

TEST(ConfigTest, OverrideErrorNamesTheOverride) {
  Config c = Config::Parse("http:\n  port: 1\n", "f", {"http.port=x"});
  try {
    c.GetInt("http.port", 0);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "--set http.port: expected an integer, got 'x'");
  }
}

// Found by tests/fuzz/config_fuzz: a map used as a key ("? ...") made RejectUnknownKeys throw
// YAML::TypedBadConversion, which no caller catches (the broker died with std::terminate instead
// of exit 2 naming the file).
TEST(ConfigTest, NonScalarKeyIsAConfigErrorNotACrash) {
  for (const std::string text :
       {std::string("a: 1\n? {x: 1}\n: 2\n"), std::string("region:\n  ? [1, 2]\n  : b\n"),
        testing::ReadFileOrEmpty(testing::SourcePath("tests/core/testdata/config_fuzz_complex_key.yaml"))}) {
    try {
      Config c = Config::Parse(text, "k.yaml");
      (void)c.GetInt("a", 0);
      c.RejectUnknownKeys();
      FAIL() << "accepted: " << text.substr(0, 60);
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("k.yaml"), std::string::npos) << e.what();
    }
  }
  std::string deep = "a: ";
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  EXPECT_THROW(Config::Parse(deep, "d.yaml"), ConfigError);
}

TEST(ConfigTest, InvalidYamlAndMissingFile) {
  EXPECT_THROW(Config::Parse("a: [1, 2\n", "f"), ConfigError);
  EXPECT_THROW(Config::Load("/nonexistent/sluice.yaml"), ConfigError);
}

TEST(ConfigTest, LoadsShippedConfigsWithoutEnvironment) {
  for (const char* f : {"config/broker-eu-central.yaml", "config/broker-us-east.yaml",
                        "config/gateway-de.yaml", "config/gateway-us.yaml", "config/sim.yaml"}) {
    EXPECT_NO_THROW(Config::Load(testing::SourcePath(f))) << f;
  }
}

TEST(ConfigTest, DurationAndByteParsing) {
  int64_t v;
  EXPECT_TRUE(ParseDurationMs("1500", &v));
  EXPECT_EQ(v, 1500);
  EXPECT_TRUE(ParseDurationMs("2m", &v));
  EXPECT_EQ(v, 120000);
  EXPECT_FALSE(ParseDurationMs("5 parsecs", &v));
  EXPECT_TRUE(ParseBytes("1GiB", &v));
  EXPECT_EQ(v, 1LL << 30);
  EXPECT_FALSE(ParseBytes("12XB", &v));
}

}  // namespace
}  // namespace sluice
