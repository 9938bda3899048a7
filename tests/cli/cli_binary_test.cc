// The `sluice` binary against a fake broker (a core HttpServer returning canned API answers):
// query/topics/fetch output, --config/--region resolution, exit codes and messages.
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/http.h"
#include "tests/common/fake_http_server.h"
#include "tests/common/test_env.h"

namespace sluice::cli {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::TempDir;

const char* kQueryAnswer = R"({"region":"eu-central","matched":3,"truncated":false,
 "counts_by_country":{"DE":2,"FR":1},
 "records":[{"topic":"sensors","partition":1,"offset":10,"device_id":"de-dev-0001",
   "sensor":"temperature","country":"DE","ts":1700000000000,"ingest_ts":1700000000001,
   "gateway_id":"gw-de-1","gateway_seq":5,"source":"mqtt","payload":{"value":1.5}}]})";

class FakeBroker {
 public:
  FakeBroker() : server_([this](const HttpRequest& req) { return Handle(req); }) {}
  std::string url() const { return server_.url(); }
  std::vector<HttpRequest> Requests() { return server_.Requests(); }

 private:
  HttpResponse Handle(const HttpRequest& req) {
    if (req.path == "/v1/query") {
      if (req.Query("device_id") == "boom") {
        return HttpResponse::Error(400, "invalid_argument", "bad device", "device_id");
      }
      return HttpResponse::Json(200, kQueryAnswer);
    }
    if (req.path == "/v1/topics") {
      return HttpResponse::Json(200, R"({"region":"eu-central","topics":[{"name":"sensors",
          "partitions":[{"partition":0,"start_offset":0,"end_offset":42,"size_bytes":999}]}]})");
    }
    if (req.path == "/v1/topics/sensors/partitions/2/records") {
      // 5 records at offsets 0..4, served two per page at most.
      const int64_t offset = std::stoll(req.Query("offset", "0"));
      const int64_t max = std::min<int64_t>(2, std::stoll(req.Query("max_records", "500")));
      std::string recs;
      int64_t o = offset;
      for (; o < 5 && o < offset + max; ++o) {
        recs += std::string(recs.empty() ? "" : ",") + "{\"offset\":" + std::to_string(o) + "}";
      }
      return HttpResponse::Json(200, "{\"records\":[" + recs + "],\"next_offset\":" +
                                         std::to_string(o) + ",\"end_offset\":5}");
    }
    return HttpResponse::Error(404, "not_found", "no route " + req.path);
  }

  sluice::testing::FakeHttpServer server_;  // last: stopped before Handle's state goes
};

int RunSluice(const TempDir& dir, const std::vector<std::string>& args, std::string* output) {
  static int runs = 0;  // a fresh log per run: ChildProcess appends
  std::vector<std::string> argv = {BinPath("sluice")};
  argv.insert(argv.end(), args.begin(), args.end());
  auto proc = ChildProcess::Start(argv, dir.Sub("sluice-" + std::to_string(++runs) + ".log"));
  EXPECT_NE(proc, nullptr);
  if (proc == nullptr) return -1;
  const int rc = proc->WaitExit(30000);
  *output = proc->ReadLog();
  return rc;
}

TEST(CliBinaryTest, QueryPrintsCountsAndSendsFilters) {
  TempDir dir;
  FakeBroker broker;
  std::string out;
  ASSERT_EQ(RunSluice(dir,
                      {"query", "--broker", broker.url() + "/", "--country", "de", "--device",
                       "de-dev-0001", "--from", "2023-11-14T00:00:00Z", "--to", "1700000009999",
                       "--limit", "10"},
                      &out),
            0)
      << out;
  EXPECT_NE(out.find("region:  eu-central"), std::string::npos) << out;
  EXPECT_NE(out.find("matched: 3 record(s) (showing 1)"), std::string::npos) << out;
  EXPECT_NE(out.find("DE             2"), std::string::npos) << out;
  EXPECT_NE(out.find("FR             1"), std::string::npos) << out;
  EXPECT_NE(out.find("de-dev-0001"), std::string::npos) << out;
  EXPECT_NE(out.find("2023-11-14T22:13:20.000Z"), std::string::npos) << out;
  EXPECT_NE(out.find("sensors/1/10"), std::string::npos) << out;
  auto reqs = broker.Requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].Query("country"), "DE");
  EXPECT_EQ(reqs[0].Query("device_id"), "de-dev-0001");
  EXPECT_EQ(reqs[0].Query("from"), "2023-11-14T00:00:00Z");
  EXPECT_EQ(reqs[0].Query("to"), "1700000009999");
  EXPECT_EQ(reqs[0].Query("limit"), "10");
}

TEST(CliBinaryTest, QueryJsonPrintsTheRawAnswer) {
  TempDir dir;
  FakeBroker broker;
  std::string out;
  ASSERT_EQ(RunSluice(dir, {"query", "--broker", broker.url(), "--json"}, &out), 0) << out;
  EXPECT_NE(out.find("\"counts_by_country\":{\"DE\":2,\"FR\":1}"), std::string::npos) << out;
}

TEST(CliBinaryTest, QueryViaConfigRegion) {
  TempDir dir;
  FakeBroker broker;
  const std::string config = dir.Sub("cli.yaml");
  std::ofstream(config) << "regions:\n  - name: eu-central\n    url: " << broker.url()
                        << "\n    countries: [DE, FR]\n  - name: us-east\n"
                        << "    url: http://127.0.0.1:1\n    countries: [US]\n";
  std::string out;
  ASSERT_EQ(RunSluice(dir, {"query", "--config", config, "--region", "eu-central"}, &out), 0)
      << out;
  EXPECT_NE(out.find("matched: 3"), std::string::npos) << out;
  // The region listing the country is picked when no --region is given.
  ASSERT_EQ(RunSluice(dir, {"query", "--config", config, "--country", "FR"}, &out), 0) << out;
  // --set overrides the config: point us-east at the fake broker.
  ASSERT_EQ(RunSluice(dir,
                      {"query", "--config", config, "--set", "regions.1.url=" + broker.url(),
                       "--region", "us-east"},
                      &out),
            0)
      << out;
  EXPECT_EQ(broker.Requests().size(), 3u);
  EXPECT_EQ(RunSluice(dir, {"query", "--config", config, "--region", "mars"}, &out), 2);
  EXPECT_NE(out.find("no region named 'mars'"), std::string::npos) << out;
  // The shipped gateway config works as it is: its residency policy names the brokers.
  const std::string policy = sluice::testing::WritePolicyWithBrokers(
      dir.Sub("residency.yaml"), broker.url(), "http://127.0.0.1:1");
  ASSERT_FALSE(policy.empty());
  EXPECT_EQ(RunSluice(dir,
                      {"query", "--config", sluice::testing::SourcePath("config/gateway-de.yaml"),
                       "--set", "residency.policy_file=" + policy, "--region", "eu-central"},
                      &out),
            0)
      << out;
  // So does the policy file itself; --country picks the country's most preferred region.
  ASSERT_EQ(RunSluice(dir, {"query", "--config", policy, "--country", "DE"}, &out), 0) << out;
  EXPECT_EQ(RunSluice(dir, {"query", "--config", policy, "--country", "CA"}, &out), 1)
      << "CA prefers us-east (nothing listens there): " << out;
  EXPECT_EQ(RunSluice(dir, {"query", "--config", policy, "--country", "BR"}, &out), 2) << out;
  EXPECT_NE(out.find("no region may store country 'BR'"), std::string::npos) << out;
}

// --all-regions asks every region of the policy and labels each answer; a region that cannot
// be asked is reported in place (exit 1) and the others still printed.
TEST(CliBinaryTest, QueryAllRegionsLabelsEachRegionsAnswer) {
  TempDir dir;
  FakeBroker broker;
  const std::string policy = sluice::testing::WritePolicyWithBrokers(
      dir.Sub("residency.yaml"), broker.url(), "http://127.0.0.1:1");
  ASSERT_FALSE(policy.empty());
  std::string out;
  EXPECT_EQ(RunSluice(dir, {"query", "--config", policy, "--all-regions", "--country", "DE"},
                      &out),
            1)
      << out;
  EXPECT_NE(out.find("=== region eu-central ==="), std::string::npos) << out;
  EXPECT_NE(out.find("matched: 3 record(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("=== region us-east ===\nunavailable: cannot reach http://127.0.0.1:1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("=== counts per country per region"), std::string::npos) << out;
  EXPECT_NE(out.find("eu-central  DE                 2"), std::string::npos) << out;
  EXPECT_NE(out.find("eu-central  FR                 1"), std::string::npos) << out;
  EXPECT_NE(out.find("us-east     -        unavailable"), std::string::npos) << out;
  ASSERT_EQ(broker.Requests().size(), 1u);
  EXPECT_EQ(broker.Requests()[0].Query("country"), "DE");  // the filter, not a target

  EXPECT_EQ(RunSluice(dir, {"query", "--config", policy, "--all-regions", "--output", "ndjson"},
                      &out),
            1);
  EXPECT_NE(out.find("{\"region\":\"eu-central\",\"topic\":\"sensors\",\"partition\":1"),
            std::string::npos)
      << out;
  EXPECT_EQ(RunSluice(dir, {"query", "--config", policy, "--all-regions", "--json"}, &out), 1);
  EXPECT_NE(out.find("{\"regions\":[{\"region\":\"eu-central\",\"answers\":[{\"region\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("{\"region\":\"us-east\",\"error\":\"cannot reach"), std::string::npos)
      << out;
  // Every region, so not with one broker or region.
  EXPECT_EQ(RunSluice(dir, {"query", "--broker", broker.url(), "--all-regions"}, &out), 2);
  EXPECT_NE(out.find("--all-regions asks every region"), std::string::npos) << out;
}

// A replicated region's refusals are the union of its brokers' audit logs: `sluice audit` asks
// every broker of the region and merges them oldest first; a broker it cannot ask is named and
// the exit code is 1.
TEST(CliBinaryTest, AuditOfARegionOfSeveralBrokersMergesEveryBrokersLog) {
  TempDir dir;
  auto audit_of = [](std::vector<int64_t> times) {
    return [times](const HttpRequest& req) {
      std::string entries;
      for (int64_t t : times) {
        entries += std::string(entries.empty() ? "" : ",") + "{\"time_ms\":" +
                   std::to_string(t) + ",\"region\":\"eu-central\",\"principal\":\"p\"," +
                   "\"gateway_id\":\"g\",\"country\":\"US\",\"topic\":\"sensors\"," +
                   "\"records\":1,\"reason\":\"r\",\"request_id\":\"req-" +
                   std::to_string(t) + "\"}";
      }
      if (req.path == "/v1/audit") {
        EXPECT_EQ(req.Query("country"), "US");
      }
      return HttpResponse::Json(200, "{\"region\":\"eu-central\",\"returned\":" +
                                         std::to_string(times.size()) +
                                         ",\"more\":false,\"next\":null,\"entries\":[" +
                                         entries + "]}");
    };
  };
  sluice::testing::FakeHttpServer a(audit_of({1700000000000, 1700000002000}));
  sluice::testing::FakeHttpServer b(audit_of({1700000001000}));
  std::string out;
  ASSERT_EQ(RunSluice(dir, {"audit", "--broker", a.url() + "," + b.url(), "--country", "US"},
                      &out),
            0)
      << out;
  EXPECT_NE(out.find("refusals: 3"), std::string::npos) << out;
  const size_t r0 = out.find("req-1700000000000");
  const size_t r1 = out.find("req-1700000001000");
  const size_t r2 = out.find("req-1700000002000");
  ASSERT_NE(r2, std::string::npos) << out;
  EXPECT_LT(r0, r1);
  EXPECT_LT(r1, r2);
  EXPECT_EQ(RunSluice(dir, {"audit", "--broker", a.url() + ",http://127.0.0.1:1", "--country",
                            "US"},
                      &out),
            1);
  EXPECT_NE(out.find("broker http://127.0.0.1:1:"), std::string::npos) << out;
  EXPECT_NE(out.find("its refusals are not shown"), std::string::npos) << out;
  EXPECT_NE(out.find("refusals: 2"), std::string::npos) << out;
  EXPECT_EQ(RunSluice(dir, {"audit", "--broker", a.url() + "," + b.url(), "--cursor", "5"},
                      &out),
            2);
}

TEST(CliBinaryTest, TopicsAndFetch) {
  TempDir dir;
  FakeBroker broker;
  std::string out;
  ASSERT_EQ(RunSluice(dir, {"topics", "--broker", broker.url()}, &out), 0) << out;
  EXPECT_NE(out.find("sensors"), std::string::npos) << out;
  EXPECT_NE(out.find("42"), std::string::npos) << out;
  EXPECT_NE(out.find("999"), std::string::npos) << out;
  ASSERT_EQ(RunSluice(dir,
                      {"fetch", "--broker", broker.url(), "--topic", "sensors", "--partition",
                       "2", "--offset", "1", "--max", "3"},
                      &out),
            0)
      << out;
  EXPECT_EQ(out, "{\"offset\":1}\n{\"offset\":2}\n{\"offset\":3}\n") << "paged, capped at --max";
  ASSERT_EQ(RunSluice(dir,
                      {"fetch", "--broker", broker.url(), "--topic", "sensors", "--partition",
                       "2"},
                      &out),
            0);
  EXPECT_EQ(out, "{\"offset\":0}\n{\"offset\":1}\n{\"offset\":2}\n{\"offset\":3}\n{\"offset\":4}\n");
}

TEST(CliBinaryTest, SeveralBrokersUseTheFirstThatAnswers) {
  TempDir dir;
  FakeBroker broker;
  const std::string down = "http://127.0.0.1:" + std::to_string(sluice::testing::FreePort());
  std::string out;
  ASSERT_EQ(RunSluice(dir, {"topics", "--broker", down + "," + broker.url()}, &out), 0) << out;
  EXPECT_NE(out.find("sensors"), std::string::npos) << out;
  EXPECT_EQ(RunSluice(dir, {"topics", "--broker", down + ",ftp://x"}, &out), 2) << out;
}

TEST(CliBinaryTest, UnreachableBrokerExitsOne) {
  TempDir dir;
  const std::string url = "http://127.0.0.1:" + std::to_string(sluice::testing::FreePort());
  std::string out;
  EXPECT_EQ(RunSluice(dir, {"query", "--broker", url}, &out), 1) << out;
  EXPECT_NE(out.find("sluice: cannot reach " + url + ": "), std::string::npos) << out;
  EXPECT_EQ(RunSluice(dir, {"topics", "--broker", url}, &out), 1) << out;
  EXPECT_NE(out.find("sluice: cannot reach " + url), std::string::npos) << out;
}

TEST(CliBinaryTest, BrokerErrorExitsOneWithReason) {
  TempDir dir;
  FakeBroker broker;
  std::string out;
  EXPECT_EQ(RunSluice(dir, {"query", "--broker", broker.url(), "--device", "boom"}, &out), 1);
  EXPECT_NE(out.find("HTTP 400"), std::string::npos) << out;
  EXPECT_NE(out.find("bad device"), std::string::npos) << out;
}

TEST(CliBinaryTest, BadArgumentsExitTwoAndHelpExitsZero) {
  TempDir dir;
  std::string out;
  EXPECT_EQ(RunSluice(dir, {}, &out), 2);
  EXPECT_EQ(RunSluice(dir, {"frobnicate"}, &out), 2);
  EXPECT_NE(out.find("unknown command"), std::string::npos) << out;
  EXPECT_EQ(RunSluice(dir, {"query"}, &out), 2) << "no broker";
  EXPECT_EQ(RunSluice(dir, {"query", "--broker", "http://x", "--bogus"}, &out), 2);
  EXPECT_NE(out.find("unknown flag --bogus"), std::string::npos) << out;
  EXPECT_EQ(RunSluice(dir, {"query", "--broker", "http://x", "--country", "Germany"}, &out), 2);
  EXPECT_EQ(RunSluice(dir, {"query", "--broker", "http://x", "--from", "yesterday"}, &out), 2);
  EXPECT_EQ(RunSluice(dir, {"fetch", "--broker", "http://x", "--topic", "t"}, &out), 2)
      << "no partition";
  EXPECT_EQ(RunSluice(dir, {"query", "--broker", "ftp://x"}, &out), 2);
  EXPECT_EQ(RunSluice(dir, {"--help"}, &out), 0);
  EXPECT_NE(out.find("query"), std::string::npos);
  EXPECT_EQ(out.rfind("usage: sluice COMMAND", 0), 0u) << out;
  for (const char* cmd : {"query", "topics", "fetch", "consume"}) {
    EXPECT_EQ(RunSluice(dir, {cmd, "--help"}, &out), 0) << cmd;
    EXPECT_NE(out.find("--broker"), std::string::npos) << out;
    EXPECT_EQ(out.rfind(std::string("usage: sluice ") + cmd, 0), 0u) << out;
  }
}

}  // namespace
}  // namespace sluice::cli
