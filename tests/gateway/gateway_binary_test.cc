// The real sluice-gateway binary: config errors exit 2 naming file/key/reason; the shipped
// config runs (with overrides), accepts an event, and stops cleanly on SIGTERM.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "core/http.h"
#include "tests/common/test_env.h"

namespace sluice::testing {
namespace {

const char* kGoodConfig = R"(gateway:
  id: gw-t
  country: DE
  data_dir: DATA
mqtt:
  enabled: false
http:
  port: PORT
regions:
  - name: eu-central
    url: http://127.0.0.1:1
    countries: [DE, FR]
  - name: us-east
    url: http://127.0.0.1:1
    countries: [US]
)";

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  size_t pos = s.find(from);
  if (pos != std::string::npos) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

class GatewayBinaryTest : public ::testing::Test {
 protected:
  // Runs the gateway with `yaml` and extra args; returns its exit code and output.
  int RunWith(const std::string& yaml, const std::vector<std::string>& extra, std::string* out) {
    std::string path = dir_.Sub("gw-" + std::to_string(++n_) + ".yaml");
    EXPECT_TRUE(WriteFile(path, Replace(Replace(yaml, "DATA", dir_.Sub("data")), "PORT", "9")));
    std::vector<std::string> argv = {BinPath("sluice-gateway"), "--config", path};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string log = dir_.Sub("run-" + std::to_string(n_) + ".log");
    int code = RunCommand(argv, log, 20000);
    *out = ReadFileOrEmpty(log);
    last_path_ = path;
    return code;
  }

  TempDir dir_;
  int n_ = 0;
  std::string last_path_;
};

TEST_F(GatewayBinaryTest, UnknownKeyExits2NamingFileAndKey) {
  std::string out;
  std::string yaml = std::string(kGoodConfig) + "forward:\n  lingr: 5ms\n";
  EXPECT_EQ(RunWith(yaml, {}, &out), 2) << out;
  EXPECT_NE(out.find("sluice-gateway: "), std::string::npos) << out;
  EXPECT_NE(out.find(last_path_), std::string::npos) << out;
  EXPECT_NE(out.find("forward.lingr"), std::string::npos) << out;
}

TEST_F(GatewayBinaryTest, CountryInTwoRegionsExits2) {
  std::string out;
  std::string yaml = Replace(kGoodConfig, "countries: [US]", "countries: [US, FR]");
  EXPECT_EQ(RunWith(yaml, {}, &out), 2) << out;
  EXPECT_NE(out.find(last_path_), std::string::npos) << out;
  EXPECT_NE(out.find("regions.1.countries"), std::string::npos) << out;
  EXPECT_NE(out.find("FR"), std::string::npos) << out;
  EXPECT_NE(out.find("eu-central"), std::string::npos) << out;
}

TEST_F(GatewayBinaryTest, BadValuesExit2WithKeyAndReason) {
  std::string out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "buffer.sync=sometimes"}, &out), 2) << out;
  EXPECT_NE(out.find("buffer.sync"), std::string::npos) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "mqtt.qos=3"}, &out), 2) << out;
  EXPECT_NE(out.find("mqtt.qos"), std::string::npos) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "gateway.country=JP"}, &out), 2) << out;
  EXPECT_NE(out.find("gateway.country"), std::string::npos) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--bogus"}, &out), 2) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "forward.max_in_flight=0"}, &out), 2) << out;
  EXPECT_NE(out.find("forward.max_in_flight"), std::string::npos) << out;
  EXPECT_NE(out.find("1..16"), std::string::npos) << out;
  // Issue 13: where countries come from.
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "residency.country_source=gps"}, &out), 2) << out;
  EXPECT_NE(out.find("residency.country_source: must be event, site or registry"),
            std::string::npos)
      << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "residency.country_source=registry"}, &out), 2) << out;
  EXPECT_NE(out.find("needs residency.device_registry"), std::string::npos) << out;
  ASSERT_TRUE(WriteFile(dir_.Sub("devices.yaml"), "devices:\n  d1: Germany\n"));
  EXPECT_EQ(RunWith(kGoodConfig,
                    {"--set", "residency.country_source=registry", "--set",
                     "residency.device_registry=" + dir_.Sub("devices.yaml")},
                    &out),
            2)
      << out;
  EXPECT_NE(out.find(dir_.Sub("devices.yaml") + ":2: devices.d1: 'Germany' is not an ISO"),
            std::string::npos)
      << out;
}

// ingest.* (issue 10): a depth past what brokers render as JSON, a malformed window, and a
// batch size brokers would refuse for good stop the start with the key named.
TEST_F(GatewayBinaryTest, IngestLimitsOutOfRangeExit2) {
  std::string out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "ingest.max_json_depth=257"}, &out), 2) << out;
  EXPECT_NE(out.find("ingest.max_json_depth: must be 1..256"), std::string::npos) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "ingest.max_future=-5"}, &out), 2) << out;
  EXPECT_NE(out.find("ingest.max_future"), std::string::npos) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "forward.batch_max_records=100001"}, &out), 2) << out;
  EXPECT_NE(out.find("forward.batch_max_records: must be at most 100000"), std::string::npos)
      << out;
}

TEST_F(GatewayBinaryTest, WriteBufferBytesOutOfRangeExits2) {
  std::string out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "buffer.write_buffer_bytes=32KiB"}, &out), 2) << out;
  EXPECT_NE(out.find("buffer.write_buffer_bytes"), std::string::npos) << out;
  EXPECT_NE(out.find("64KiB..1GiB"), std::string::npos) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "buffer.write_buffer_bytes=2GiB"}, &out), 2) << out;
  EXPECT_NE(out.find("buffer.write_buffer_bytes"), std::string::npos) << out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "buffer.write_buffer_bytes=lots"}, &out), 2) << out;
  EXPECT_NE(out.find("buffer.write_buffer_bytes"), std::string::npos) << out;
}

TEST_F(GatewayBinaryTest, MinFreeBytesMustBeASizeExits2) {
  std::string out;
  EXPECT_EQ(RunWith(kGoodConfig, {"--set", "buffer.min_free_bytes=-1"}, &out), 2) << out;
  EXPECT_NE(out.find("buffer.min_free_bytes: expected a size"), std::string::npos) << out;
}

TEST_F(GatewayBinaryTest, HelpExits0) {
  std::string log = dir_.Sub("help.log");
  EXPECT_EQ(RunCommand({BinPath("sluice-gateway"), "--help"}, log, 10000), 0);
  const std::string out = ReadFileOrEmpty(log);
  EXPECT_NE(out.find("--config"), std::string::npos);
  EXPECT_EQ(out.rfind("usage: sluice-gateway --config", 0), 0u) << "was 'usage: usage:'\n" << out;
}

TEST_F(GatewayBinaryTest, ShippedConfigRunsAndStopsCleanly) {
  int port = FreePort();
  auto proc = ChildProcess::Start(
      {BinPath("sluice-gateway"), "--config", SourcePath("config/gateway-de.yaml"), "--set",
       "gateway.data_dir=" + dir_.Sub("de"), "--set", "http.port=" + std::to_string(port),
       "--set", "mqtt.enabled=false", "--set",
       "residency.policy_file=" + WritePolicyWithBrokers(dir_.Sub("residency.yaml"),
                                                         "http://127.0.0.1:1",
                                                         "http://127.0.0.1:1"),
       "--set",
       "forward.backoff_initial=1m", "--set", "forward.backoff_max=1m"},
      dir_.Sub("de.log"));
  ASSERT_NE(proc, nullptr);
  ASSERT_TRUE(WaitHttpOk(port, "/healthz", 15000)) << proc->ReadLog();
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  Result<HttpResponse> r =
      client.Send("POST", "/v1/events", "{\"device_id\":\"d1\",\"v\":1}", "application/json");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 202) << r->body;
  std::string metrics;
  ASSERT_EQ(HttpGet(port, "/metrics", &metrics), 200);
  bool found = false;
  EXPECT_EQ(MetricSum(metrics, "sluice_gateway_buffered_records", &found), 1.0) << metrics;
  EXPECT_TRUE(found);
  int status = proc->Stop(SIGTERM, 15000);
  ASSERT_TRUE(WIFEXITED(status)) << proc->ReadLog();
  EXPECT_EQ(WEXITSTATUS(status), 0) << proc->ReadLog();
}

}  // namespace
}  // namespace sluice::testing
