// `sluice topics create|describe|list` (the real CLI binary) against an in-process broker.
#include <gtest/gtest.h>

#include "cloud-broker/server/broker.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ReadFileOrEmpty;
using sluice::testing::RunCommand;
using sluice::testing::TempDir;

class TopicsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.data_dir = dir_.Sub("data");
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE")};
    o.http_port = sluice::testing::FreePort();
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    url_ = "http://127.0.0.1:" + std::to_string(broker_->port());
  }
  // Runs `sluice args...`; returns the exit code, output in *out.
  int Sluice(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), BinPath("sluice"));
    const std::string log = dir_.Sub("cli-" + std::to_string(runs_++) + ".out");
    int rc = RunCommand(args, log, 20000);
    *out = ReadFileOrEmpty(log);
    return rc;
  }

  TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::string url_;
  int runs_ = 0;
};

TEST_F(TopicsCliTest, CreatesDescribesAndLists) {
  std::string out;
  ASSERT_EQ(Sluice({"topics", "create", "--broker", url_, "--topic", "audit", "--partitions", "3",
                    "--retention-bytes", "1000000", "--flush", "interval", "--flush-ms", "100"},
                   &out),
            0)
      << out;
  EXPECT_NE(out.find("created topic audit"), std::string::npos) << out;
  const Topic* t = broker_->store().Find(TopicName("audit"));
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->partition_count(), 3);
  EXPECT_EQ(t->partition(0)->options().flush, FlushPolicy::kInterval);
  EXPECT_EQ(t->partition(0)->options().retention_bytes, 1000000);

  EXPECT_EQ(Sluice({"topics", "create", "--broker", url_, "--topic", "audit"}, &out), 1);
  EXPECT_NE(out.find("409"), std::string::npos) << out;
  EXPECT_EQ(Sluice({"topics", "create", "--broker", url_, "--topic", "x", "--flush", "maybe"},
                   &out),
            1);
  EXPECT_NE(out.find("\"field\":\"flush\""), std::string::npos) << out;
  EXPECT_EQ(Sluice({"topics", "create", "--broker", url_}, &out), 2) << out;

  ASSERT_EQ(Sluice({"topics", "describe", "--broker", url_, "--topic", "audit"}, &out), 0) << out;
  EXPECT_NE(out.find("flush=interval"), std::string::npos) << out;
  EXPECT_NE(out.find("SEGMENTS"), std::string::npos) << out;
  EXPECT_EQ(Sluice({"topics", "describe", "--broker", url_, "--topic", "nope"}, &out), 1);
  ASSERT_EQ(Sluice({"topics", "list", "--broker", url_}, &out), 0) << out;
  EXPECT_NE(out.find("audit"), std::string::npos) << out;
}

}  // namespace
}  // namespace sluice::broker
