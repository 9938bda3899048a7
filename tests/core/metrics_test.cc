#include "core/metrics.h"

#include <gtest/gtest.h>

#include "core/backoff.h"
#include "core/cli_args.h"

namespace sluice {
namespace {

TEST(MetricsTest, RendersPrometheusText) {
  MetricsRegistry reg;
  reg.GetCounter("sluice_x_total", "Things.", {{"source", "mqtt"}}).Inc(3);
  reg.GetCounter("sluice_x_total", "Things.", {{"source", "http"}}).Inc();
  reg.GetGauge("sluice_g", "A gauge.").Set(-2);
  reg.AddGaugeFn("sluice_fn", "Computed.", {{"q", "a\"b"}}, [] { return 1.5; });
  const std::string text = reg.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE sluice_x_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_x_total{source=\"mqtt\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_x_total{source=\"http\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_g -2\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_fn{q=\"a\\\"b\"} 1.5\n"), std::string::npos);
}

TEST(MetricsTest, SameSeriesIsSameCounter) {
  MetricsRegistry reg;
  Counter& a = reg.GetCounter("c", "h", {{"k", "v"}});
  Counter& b = reg.GetCounter("c", "h", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
}

TEST(BackoffTest, GrowsWithJitterAndCaps) {
  Backoff b(100, 1000, 7);
  int64_t d1 = b.NextDelayMs();
  EXPECT_GE(d1, 50);
  EXPECT_LE(d1, 100);
  for (int i = 0; i < 10; ++i) b.NextDelayMs();
  int64_t d = b.NextDelayMs();
  EXPECT_GE(d, 500);
  EXPECT_LE(d, 1000);
  b.Reset();
  EXPECT_LE(b.NextDelayMs(), 100);
}

TEST(CliArgsTest, ParsesConfigSetAndFlags) {
  const char* argv[] = {"prog", "--config", "a.yaml", "--set", "x.y=1", "--set=z=2",
                        "--limit", "5", "--json", "pos"};
  std::string err;
  auto args = ParseCliArgs(10, const_cast<char**>(argv),
                           {{"limit", true, "max"}, {"json", false, "json out"}}, &err);
  ASSERT_TRUE(args) << err;
  EXPECT_EQ(args->config_path, "a.yaml");
  EXPECT_EQ(args->overrides, (std::vector<std::string>{"x.y=1", "z=2"}));
  EXPECT_EQ(args->Get("limit"), "5");
  EXPECT_TRUE(args->Has("json"));
  EXPECT_EQ(args->positional, std::vector<std::string>{"pos"});
}

TEST(CliArgsTest, RejectsUnknownFlagAndMissingValue) {
  std::string err;
  const char* a1[] = {"prog", "--bogus"};
  EXPECT_FALSE(ParseCliArgs(2, const_cast<char**>(a1), {}, &err));
  EXPECT_EQ(err, "unknown flag --bogus");
  const char* a2[] = {"prog", "--config"};
  EXPECT_FALSE(ParseCliArgs(2, const_cast<char**>(a2), {}, &err));
  const char* a3[] = {"prog", "--set", "novalue"};
  EXPECT_FALSE(ParseCliArgs(3, const_cast<char**>(a3), {}, &err));
}

}  // namespace
}  // namespace sluice
