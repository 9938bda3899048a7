// The sluice-sim binary: exit codes and messages (--help 0, bad config 2, MQTT down 1, a run 0
// with a summary and a manifest), with a fake HTTP gateway standing in for the real one.
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/http.h"
#include "tests/common/test_env.h"
#include "tests/firmware-sim/sim_test_util.h"

namespace sluice::sim {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::TempDir;

int RunSim(const TempDir& dir, const std::vector<std::string>& args, std::string* output,
           const std::map<std::string, std::string>& env = {}) {
  static int runs = 0;  // a fresh log per run: ChildProcess appends
  std::vector<std::string> argv = {BinPath("sluice-sim")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto proc = ChildProcess::Start(argv, dir.Sub("sim-" + std::to_string(++runs) + ".log"), env);
  EXPECT_NE(proc, nullptr);
  if (proc == nullptr) return -1;
  int rc = proc->WaitExit(60000);
  *output = proc->ReadLog();
  return rc;
}

TEST(SimBinaryTest, HelpExitsZero) {
  TempDir dir;
  std::string out;
  EXPECT_EQ(RunSim(dir, {"--help"}, &out), 0);
  EXPECT_NE(out.find("--config"), std::string::npos) << out;
  EXPECT_EQ(out.rfind("usage: sluice-sim", 0), 0u) << out;
  EXPECT_NE(out.find("--set"), std::string::npos) << out;
}

TEST(SimBinaryTest, ConfigErrorsExitTwoNamingTheKey) {
  TempDir dir;
  std::string out;
  const std::string config = sluice::testing::SourcePath("config/sim.yaml");
  EXPECT_EQ(RunSim(dir, {"--config", config, "--set", "sim.devcies=3"}, &out), 2);
  EXPECT_NE(out.find("sluice-sim: "), std::string::npos) << out;
  EXPECT_NE(out.find("devcies"), std::string::npos) << out;
  EXPECT_EQ(RunSim(dir, {"--config", config, "--set", "sites.0.transport=pigeon"}, &out), 2);
  EXPECT_NE(out.find("transport"), std::string::npos) << out;
  EXPECT_EQ(RunSim(dir, {"--bogus"}, &out), 2);
}

TEST(SimBinaryTest, MqttDownExitsOne) {
  TempDir dir;
  std::string out;
  const std::string uri = "tcp://127.0.0.1:" + std::to_string(sluice::testing::FreePort());
  EXPECT_EQ(RunSim(dir,
                   {"--config", sluice::testing::SourcePath("config/sim.yaml"), "--set",
                    "sites.0.mqtt_uri=" + uri, "--set", "sim.mqtt_connect_timeout=1s", "--set",
                    "sim.manifest=" + dir.Sub("m.json")},
                   &out),
            1);
  EXPECT_NE(out.find("sluice-sim: cannot connect to MQTT " + uri), std::string::npos) << out;
}

TEST(SimBinaryTest, RunsAgainstAFakeGatewayAndWritesTheManifest) {
  TempDir dir;
  HttpServerOptions opts;
  opts.port = sluice::testing::FreePort();
  auto server = HttpServer::Start(opts, [](HttpRequest&&, HttpResponder respond) {
    respond(HttpResponse::Json(202, "{\"accepted\":1}"));
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string url = "http://127.0.0.1:" + std::to_string((*server)->port());
  const std::string manifest = dir.Sub("manifest.json");
  std::string out;
  // --config honoured (shipped file, env expansion of the manifest path) and --set on top.
  int rc = RunSim(dir,
                  {"--config", sluice::testing::SourcePath("config/sim.yaml"), "--set",
                   "sim.devices=6", "--set", "sim.duration=500ms", "--set",
                   "sites.0.transport=http", "--set", "sites.1.transport=http", "--set",
                   "sites.0.http_url=" + url, "--set", "sites.1.http_url=" + url},
                  &out, {{"SLUICE_SIM_MANIFEST", manifest}});
  (*server)->Stop();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("http: 6 sent, 6 acked"), std::string::npos) << out;
  rapidjson::Document doc;
  doc.Parse(testing::ReadWholeFile(manifest).c_str());
  ASSERT_FALSE(doc.HasParseError()) << out;
  EXPECT_EQ(doc["seed"].GetUint64(), 42u);
  EXPECT_EQ(doc["devices"].Size(), 6u);
  EXPECT_EQ(doc["totals"]["http_acked"].GetUint64(), 6u) << "6 devices x 0.5 s x 2/s";
}

}  // namespace
}  // namespace sluice::sim
