// The real sluice-broker binary: configuration errors exit 2 naming file, key and reason; a good
// configuration serves and exits 0 on SIGTERM.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>
#include <fstream>

#include "core/http.h"
#include "core/residency_policy_file.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::TempDir;

std::string GoodYaml(const std::string& data_dir, int port) {
  return "broker:\n  id: b1\n  data_dir: " + data_dir +
         "\nregion:\n  name: eu-central\n  countries: [DE, FR]\nhttp:\n  host: 127.0.0.1\n"
         "  port: " + std::to_string(port) +
         "\n  max_body_bytes: 1MiB\n  threads: 2\ntopics:\n  auto_create: true\n"
         "  default_partitions: 2\nlog:\n  segment_bytes: 1MiB\n  flush: always\n"
         "query:\n  default_limit: 10\n  max_limit: 100\nlog_level: info\n";
}

struct BrokerRun {
  int code;
  std::string output;
};

BrokerRun RunBroker(const TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {BinPath("sluice-broker")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto proc = ChildProcess::Start(argv, dir.Sub("broker.log"));
  EXPECT_NE(proc, nullptr);
  if (proc == nullptr) {
    return {-1, ""};
  }
  int code = proc->WaitExit(20000);
  return {code, proc->ReadLog()};
}

std::string WriteConfig(const TempDir& dir, const std::string& text) {
  std::string path = dir.Sub("broker.yaml");
  std::ofstream(path) << text;
  return path;
}

TEST(BrokerProcessTest, UnknownKeyExits2NamingFileAndKey) {
  TempDir dir;
  std::string path = WriteConfig(dir, GoodYaml(dir.Sub("data"), 1) + "topics_typo: 3\n");
  BrokerRun r = RunBroker(dir, {"--config", path});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("sluice-broker: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("topics_typo"), std::string::npos) << r.output;
}

TEST(BrokerProcessTest, BadCountryCodeExits2NamingFileKeyAndReason) {
  TempDir dir;
  std::string yaml = GoodYaml(dir.Sub("data"), 1);
  yaml.replace(yaml.find("[DE, FR]"), 8, "[DE, Germany]");
  std::string path = WriteConfig(dir, yaml);
  BrokerRun r = RunBroker(dir, {"--config", path});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("region.countries"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"Germany\" is not an ISO 3166-1 alpha-2 code"), std::string::npos)
      << r.output;
}

TEST(BrokerProcessTest, HelpExits0WithOneUsageLine) {
  TempDir dir;
  BrokerRun r = RunBroker(dir, {"--help"});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("usage: sluice-broker --config"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("usage: usage:"), std::string::npos) << r.output;
}

// The storage keys (log.*) are validated at start-up like every other key.
TEST(BrokerProcessTest, BadLogKeysExit2NamingKeyAndReason) {
  TempDir dir;
  std::string path = WriteConfig(dir, GoodYaml(dir.Sub("data"), 1));
  BrokerRun r = RunBroker(dir, {"--config", path, "--set", "log.flush=sometimes"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("log.flush"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"always\", \"interval\" or \"never\""), std::string::npos)
      << r.output;
  r = RunBroker(dir, {"--config", path, "--set", "log.retention_check_interval=1ms"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("log.retention_check_interval"), std::string::npos) << r.output;
  r = RunBroker(dir, {"--config", path, "--set", "log.max_open_files=2"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("log.max_open_files"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("4..1000000"), std::string::npos) << r.output;
}

// A bad value given with --set is reported against "--set".
TEST(BrokerProcessTest, BadPartitionCountFromSetExits2) {
  TempDir dir;
  std::string path = WriteConfig(dir, GoodYaml(dir.Sub("data"), 1));
  BrokerRun r = RunBroker(dir, {"--config", path, "--set", "topics.default_partitions=5000"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("topics.default_partitions"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1..1024"), std::string::npos) << r.output;
}

TEST(BrokerProcessTest, BadProduceMaxFutureExits2) {
  TempDir dir;
  std::string path = WriteConfig(dir, GoodYaml(dir.Sub("data"), 1));
  BrokerRun r = RunBroker(dir, {"--config", path, "--set", "produce.max_future=tomorrow"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("produce.max_future"), std::string::npos) << r.output;
}

TEST(BrokerProcessTest, MissingConfigFileExits2NamingIt) {
  TempDir dir;
  std::string path = dir.Sub("does-not-exist.yaml");
  BrokerRun r = RunBroker(dir, {"--config", path});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
}

TEST(BrokerProcessTest, ShippedConfigServesAndStopsCleanlyOnSigterm) {
  TempDir dir;
  int port = sluice::testing::FreePort();
  auto proc = ChildProcess::Start(
      {BinPath("sluice-broker"), "--config",
       sluice::testing::SourcePath("config/broker-eu-central.yaml"), "--set",
       "http.port=" + std::to_string(port), "--set", "broker.data_dir=" + dir.Sub("data")},
      dir.Sub("broker.log"));
  ASSERT_NE(proc, nullptr);
  ASSERT_TRUE(sluice::testing::WaitHttpOk(port, "/healthz", 20000)) << proc->ReadLog();
  EXPECT_NE(proc->ReadLog().find("listening on http://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << proc->ReadLog();
  int status = proc->Stop(SIGTERM, 20000);
  ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << proc->ReadLog();
  EXPECT_EQ(WEXITSTATUS(status), 0) << proc->ReadLog();
}

// Issue 13: one residency policy file decides what the region stores (its own listed
// countries, a country's second preference too, nothing else: unlisted and made-up countries
// are refused), and its version is in /healthz and /metrics.
constexpr const char* kPolicy = R"(regions:
  - name: eu-central
  - name: us-east
countries:
  DE: [eu-central]
  CA: [us-east, eu-central]
  US: [us-east]
default: deny
)";

std::string PolicyYaml(const std::string& data_dir, int port) {
  std::string yaml = GoodYaml(data_dir, port);
  yaml.replace(yaml.find("  countries: [DE, FR]\n"), 22, "");
  return yaml + "residency:\n  policy_file: residency.yaml\n";
}

TEST(BrokerProcessTest, TheResidencyPolicyFileDecidesWhatTheRegionStores) {
  TempDir dir;
  ASSERT_TRUE(sluice::testing::WriteFile(dir.Sub("residency.yaml"), kPolicy));
  const int port = sluice::testing::FreePort();
  auto proc = ChildProcess::Start(
      {BinPath("sluice-broker"), "--config", WriteConfig(dir, PolicyYaml(dir.Sub("data"), port))},
      dir.Sub("broker.log"));
  ASSERT_NE(proc, nullptr);
  ASSERT_TRUE(sluice::testing::WaitHttpOk(port, "/healthz", 20000)) << proc->ReadLog();
  const std::string version = ResidencyPolicyFile::Parse(kPolicy, "p").value().version();
  std::string body;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/healthz", &body), 200);
  EXPECT_NE(body.find("\"residency_policy\":\"" + version + "\""), std::string::npos) << body;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/metrics", &body), 200);
  EXPECT_NE(body.find("sluice_residency_policy_info{region=\"eu-central\",version=\"" + version +
                      "\"} 1"),
            std::string::npos)
      << body;
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  for (const auto& [country, want] : std::vector<std::pair<std::string, int>>{
           {"DE", 200}, {"CA", 200}, {"US", 451}, {"FR", 451}, {"BR", 451}, {"XX", 451}}) {
    auto r = client.Send(
        "POST", "/v1/topics/t/records",
        testing::EncodeRecords({testing::MakeRecord("dev-" + country, country, 1000, "{}")}),
        "application/vnd.kafka.record-batch.v2");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, want) << country << ": " << r->body;
  }
}

TEST(BrokerProcessTest, ABrokerRefusesToStartOnAPolicyThatIsInvalidOrLacksItsRegion) {
  TempDir dir;
  std::string policy = kPolicy;
  policy.replace(policy.find("  - name: eu-central\n"), 21, "");  // its region is gone
  policy.replace(policy.find("  DE: [eu-central]\n"), 19, "");
  policy.replace(policy.find(", eu-central]"), 13, "]");
  ASSERT_TRUE(sluice::testing::WriteFile(dir.Sub("residency.yaml"), policy));
  const std::string path = WriteConfig(dir, PolicyYaml(dir.Sub("data"), 1));
  BrokerRun r = RunBroker(dir, {"--config", path});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find(path + ":5: region.name: region eu-central is not in the residency "
                                 "policy " + dir.Sub("residency.yaml") + " (its regions: us-east)"),
            std::string::npos)
      << r.output;

  std::string bad = kPolicy;
  bad.replace(bad.find("  US: [us-east]\n"), 16, "  US: [us-east]\n  ZZ: [eu-central]\n");
  ASSERT_TRUE(sluice::testing::WriteFile(dir.Sub("residency.yaml"), bad));
  r = RunBroker(dir, {"--config", path});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("residency.policy_file: " + dir.Sub("residency.yaml") +
                          ":8: countries.ZZ: 'ZZ' is not an ISO 3166-1 alpha-2 country code"),
            std::string::npos)
      << r.output;

  // Both the policy and the old list: one policy, not two lists.
  ASSERT_TRUE(sluice::testing::WriteFile(dir.Sub("residency.yaml"), kPolicy));
  r = RunBroker(dir, {"--config", WriteConfig(dir, GoodYaml(dir.Sub("data"), 1) +
                                                       "residency:\n  policy_file: "
                                                       "residency.yaml\n")});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("region.countries: remove it"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sluice::broker
