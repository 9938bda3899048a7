// At-least-once consumption with the real binaries: a real sluice-broker, records produced over
// HTTP, `sluice consume --group` stopped mid-way (SIGSTOP, then SIGKILL) so some printed records
// are not committed, the broker SIGKILLed and restarted on the same data dir (the committed
// offsets must survive), then a second `sluice consume --group`: every record is seen at least
// once, none is missing, and the second run starts exactly at the committed offsets.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <csignal>
#include <map>
#include <set>
#include <sstream>

#include "core/http.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::TempDir;

constexpr int kRecords = 3000;

class GroupProcessTest : public ::testing::Test {
 protected:
  void StartBroker() {
    broker_ = ChildProcess::Start(
        {BinPath("sluice-broker"), "--config",
         sluice::testing::SourcePath("config/broker-eu-central.yaml")},
        dir_.Sub("broker.log"),
        {{"SLUICE_DATA_DIR", dir_.Sub("data")}, {"SLUICE_BROKER_PORT", std::to_string(port_)}});
    ASSERT_NE(broker_, nullptr);
    ASSERT_TRUE(sluice::testing::WaitHttpOk(port_, "/healthz", 30000)) << broker_->ReadLog();
  }
  // kRecords records over 97 device keys (so over every partition), in batches of 500.
  void Produce() {
    HttpClient client(Url());
    for (int batch = 0; batch < kRecords / 500; ++batch) {
      std::vector<Record> records;
      for (int i = 0; i < 500; ++i) {
        const int n = batch * 500 + i;
        records.push_back(testing::MakeRecord("dev-" + std::to_string(n % 97), "DE",
                                              1700000000000 + n,
                                              "{\"n\":" + std::to_string(n) + "}"));
      }
      auto r = client.Send("POST", "/v1/topics/t/records", testing::EncodeRecords(records),
                           "application/vnd.kafka.record-batch.v2");
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 200) << r->body;
    }
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Committed offsets of group g on topic t, by partition.
  std::map<int, int64_t> Committed() {
    std::string body;
    EXPECT_EQ(sluice::testing::HttpGet(port_, "/v1/groups/g/offsets?topic=t", &body), 200);
    rapidjson::Document d;
    d.Parse(body.c_str());
    std::map<int, int64_t> out;
    if (d.HasParseError() || !d.HasMember("offsets")) return out;
    for (const auto& c : d["offsets"].GetArray()) {
      out[c["partition"].GetInt()] = c["offset"].GetInt64();
    }
    return out;
  }
  // (partition, offset) of every JSON line in `text`.
  static std::vector<std::pair<int, int64_t>> Lines(const std::string& text) {
    std::vector<std::pair<int, int64_t>> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      rapidjson::Document d;
      d.Parse(line.c_str());
      if (d.HasParseError() || !d.IsObject() || !d.HasMember("offset")) continue;  // torn line
      out.push_back({d["partition"].GetInt(), d["offset"].GetInt64()});
    }
    return out;
  }
  std::vector<std::string> ConsumeArgs() {
    return {BinPath("sluice"), "consume", "--broker", Url(), "--topic", "t", "--group", "g"};
  }

  TempDir dir_;
  int port_ = sluice::testing::FreePort();
  std::unique_ptr<ChildProcess> broker_;
};

TEST_F(GroupProcessTest, AtLeastOnceAcrossConsumerKillAndBrokerRestart) {
  StartBroker();
  ASSERT_NO_FATAL_FAILURE(Produce());

  // First consumer: small fetches so it is stopped part-way; long idle so it would not exit.
  std::vector<std::string> args = ConsumeArgs();
  args.insert(args.end(), {"--batch", "5", "--idle-ms", "60000"});
  auto consumer = ChildProcess::Start(args, dir_.Sub("consume1.out"));
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(sluice::testing::WaitFor(
      [&] {
        return Lines(sluice::testing::ReadFileOrEmpty(dir_.Sub("consume1.out"))).size() >= 300;
      },
      30000));
  ::kill(consumer->pid(), SIGSTOP);  // frozen: it sends nothing more
  consumer->Stop(SIGKILL);
  // A commit the consumer sent just before it froze may still be in the broker's hands: read the
  // committed offsets once they have stopped changing (three equal reads in a row).
  std::map<int, int64_t> committed = Committed();
  int stable_reads = 0;
  ASSERT_TRUE(sluice::testing::WaitFor(
      [&] {
        std::map<int, int64_t> now = Committed();
        stable_reads = now == committed ? stable_reads + 1 : 0;
        committed = now;
        return stable_reads >= 3;
      },
      10000, 100));
  const auto first = Lines(sluice::testing::ReadFileOrEmpty(dir_.Sub("consume1.out")));
  int64_t committed_total = 0;
  for (const auto& [p, o] : committed) committed_total += o;
  ASSERT_GT(committed_total, 0);
  ASSERT_LT(committed_total, kRecords) << "the consumer finished before it could be stopped";
  // Commit-after-print: every committed offset was printed before it was committed.
  std::set<std::pair<int, int64_t>> seen(first.begin(), first.end());
  for (const auto& [p, next] : committed) {
    for (int64_t o = 0; o < next; ++o) {
      ASSERT_TRUE(seen.count({p, o})) << "committed but never printed: " << p << "@" << o;
    }
  }

  // Broker crash and restart: the committed offsets survive.
  broker_->Stop(SIGKILL);
  StartBroker();
  EXPECT_EQ(Committed(), committed);

  // Second consumer runs until caught up.
  ASSERT_EQ(sluice::testing::RunCommand(ConsumeArgs(), dir_.Sub("consume2.out"), 60000), 0)
      << sluice::testing::ReadFileOrEmpty(dir_.Sub("consume2.out"));
  const auto second = Lines(sluice::testing::ReadFileOrEmpty(dir_.Sub("consume2.out")));
  // It started exactly at the committed offsets: nothing before them, everything after.
  EXPECT_EQ(static_cast<int64_t>(second.size()), kRecords - committed_total);
  for (const auto& [p, o] : second) {
    auto it = committed.find(p);
    EXPECT_GE(o, it == committed.end() ? 0 : it->second) << p;
  }
  seen.insert(second.begin(), second.end());
  // Every produced record (offsets 0..end of each partition) was printed at least once.
  std::string topics;
  ASSERT_EQ(sluice::testing::HttpGet(port_, "/v1/topics", &topics), 200);
  rapidjson::Document d;
  d.Parse(topics.c_str());
  int64_t total = 0;
  for (const auto& t : d["topics"].GetArray()) {
    for (const auto& part : t["partitions"].GetArray()) {
      const int p = part["partition"].GetInt();
      for (int64_t o = 0; o < part["end_offset"].GetInt64(); ++o) {
        ASSERT_TRUE(seen.count({p, o})) << "missing record " << p << "@" << o;
        ++total;
      }
    }
  }
  EXPECT_EQ(total, kRecords);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRecords));
  int64_t after = 0;
  for (const auto& [p, o] : Committed()) after += o;
  EXPECT_EQ(after, kRecords);  // the second run committed everything it printed
}

// A rebalance under a running `sluice consume --group`: another member joins (the consumer's
// next commit is refused, it re-joins and keeps half the partitions), then leaves (it gets all
// back). The batch printed before the refused commit is printed again (a duplicate, by design),
// and no record is skipped.
TEST_F(GroupProcessTest, RebalanceUnderRealConsumerDuplicatesButNeverSkips) {
  StartBroker();
  ASSERT_NO_FATAL_FAILURE(Produce());
  // A long session timeout: the commit, not a heartbeat, is what notices the rebalance.
  std::vector<std::string> args = ConsumeArgs();
  args.insert(args.end(), {"--batch", "4", "--idle-ms", "1500", "--session-timeout-ms", "60000"});
  auto consumer = ChildProcess::Start(args, dir_.Sub("consume.out"));
  ASSERT_NE(consumer, nullptr);
  auto out = [&] { return sluice::testing::ReadFileOrEmpty(dir_.Sub("consume.out")); };
  ASSERT_TRUE(sluice::testing::WaitFor([&] { return Lines(out()).size() >= 100; }, 30000));
  HttpClient client(Url());
  auto join = client.Send("POST", "/v1/groups/g/join",
                          R"({"member_id":"intruder","topics":["t"],"session_timeout_ms":60000})");
  ASSERT_TRUE(join.ok());
  ASSERT_EQ(join->status, 200) << join->body;
  // The consumer re-joins at the new generation with its half ("intruder" sorts first: 0,1).
  ASSERT_TRUE(sluice::testing::WaitFor(
      [&] { return out().find("generation 2, partitions [2,3]") != std::string::npos; }, 30000))
      << out();
  EXPECT_NE(out().find("commit refused (illegal_generation)"), std::string::npos);
  auto leave = client.Send("POST", "/v1/groups/g/leave", R"({"member_id":"intruder"})");
  ASSERT_TRUE(leave.ok());
  ASSERT_EQ(leave->status, 200);
  ASSERT_EQ(consumer->WaitExit(60000), 0) << out();
  EXPECT_NE(out().find("partitions [0,1,2,3]"), std::string::npos);  // all back after the leave
  const auto lines = Lines(out());
  std::set<std::pair<int, int64_t>> seen(lines.begin(), lines.end());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRecords));  // none missing (offsets are dense)
  EXPECT_GT(lines.size(), seen.size());                   // the uncommitted batch was printed again
  int64_t committed = 0;
  for (const auto& [p, o] : Committed()) committed += o;
  EXPECT_EQ(committed, kRecords);
}

// Partition mode with the real broker: offsets, --max, --from end, usage errors.
TEST_F(GroupProcessTest, PartitionModeReadsFromOffset) {
  StartBroker();
  HttpClient client(Url());
  std::vector<Record> records;
  for (int i = 0; i < 20; ++i) {
    records.push_back(testing::MakeRecord("dev-1", "DE", 1700000000000 + i, "{}"));
  }
  auto r = client.Send("POST", "/v1/topics/t/records", testing::EncodeRecords(records),
                       "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200);
  rapidjson::Document pd;
  pd.Parse(r->body.c_str());
  const int p = pd["partitions"][0]["partition"].GetInt();  // one key: one partition
  std::vector<std::string> args = {BinPath("sluice"), "consume", "--broker",    Url(),
                                   "--topic",         "t",       "--partition", std::to_string(p),
                                   "--from-offset",   "5",       "--max",       "7"};
  ASSERT_EQ(sluice::testing::RunCommand(args, dir_.Sub("p.out"), 30000), 0);
  auto lines = Lines(sluice::testing::ReadFileOrEmpty(dir_.Sub("p.out")));
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines.front(), std::make_pair(p, int64_t{5}));
  EXPECT_EQ(lines.back(), std::make_pair(p, int64_t{11}));
  // By time (GET .../offset?timestamp=T): record i has ts 1700000000000 + i.
  for (const std::string& t :
       {std::string("1700000000010"), std::string("2023-11-14T22:13:20.010Z")}) {
    args = {BinPath("sluice"), "consume",         "--broker",    Url(), "--topic", "t",
            "--partition",     std::to_string(p), "--from-time", t};
    ASSERT_EQ(sluice::testing::RunCommand(args, dir_.Sub("t-" + t.substr(0, 4) + ".out"), 30000),
              0);
    lines = Lines(sluice::testing::ReadFileOrEmpty(dir_.Sub("t-" + t.substr(0, 4) + ".out")));
    ASSERT_EQ(lines.size(), 10u) << t;
    EXPECT_EQ(lines.front(), std::make_pair(p, int64_t{10})) << t;
  }
  args = {BinPath("sluice"), "consume",         "--broker", Url(), "--topic", "t",
          "--partition",     std::to_string(p), "--from",   "end"};
  ASSERT_EQ(sluice::testing::RunCommand(args, dir_.Sub("e.out"), 30000), 0);
  EXPECT_TRUE(Lines(sluice::testing::ReadFileOrEmpty(dir_.Sub("e.out"))).empty());
}

}  // namespace
}  // namespace sluice::broker
