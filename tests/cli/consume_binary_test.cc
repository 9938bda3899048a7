// `sluice consume` against a fake broker (a core HttpServer with canned answers): --from-time
// asks the offset-by-timestamp endpoint and starts there; --from end; usage errors exit 2.
// (The group mode against the real broker: tests/cloud-broker/group_process_test.cc.)
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "core/http.h"
#include "tests/common/fake_http_server.h"
#include "tests/common/test_env.h"

namespace sluice::cli {
namespace {

using sluice::testing::BinPath;
using sluice::testing::TempDir;

// Partition sensors-0 holds offsets 0..9; the record at offset o has ts 1714521600000 + o.
class FakeBroker {
 public:
  FakeBroker() : server_([this](const HttpRequest& req) { return Handle(req); }) {}
  std::string url() const { return server_.url(); }
  std::vector<HttpRequest> Requests() { return server_.Requests(); }

 private:
  HttpResponse Handle(const HttpRequest& req) {
    if (req.path == "/v1/topics") {
      return HttpResponse::Json(200, R"({"region":"eu","topics":[{"name":"sensors",
          "partitions":[{"partition":0,"start_offset":0,"end_offset":10,"size_bytes":1}]}]})");
    }
    if (req.path == "/v1/topics/sensors/partitions/0/offset") {
      const int64_t ts = std::stoll(req.Query("timestamp", "0"));
      const int64_t o = std::min<int64_t>(10, std::max<int64_t>(0, ts - 1714521600000));
      return HttpResponse::Json(200, "{\"timestamp\":" + std::to_string(ts) + ",\"offset\":" +
                                         std::to_string(o) + ",\"end_offset\":10}");
    }
    if (req.path == "/v1/topics/sensors/partitions/0/records") {
      const int64_t offset = std::stoll(req.Query("offset", "0"));
      const int64_t max = std::stoll(req.Query("max_records", "500"));
      std::string recs;
      int64_t o = offset;
      for (; o < 10 && o < offset + max; ++o) {
        recs += std::string(recs.empty() ? "" : ",") +
                "{\"partition\":0,\"offset\":" + std::to_string(o) + "}";
      }
      return HttpResponse::Json(200, "{\"records\":[" + recs + "],\"next_offset\":" +
                                         std::to_string(o) + ",\"end_offset\":10}");
    }
    return HttpResponse::Error(404, "not_found", "no route " + req.path);
  }

  sluice::testing::FakeHttpServer server_;  // last: stopped before Handle's state goes
};

struct ConsumeRun {
  int code;
  std::string output;
};

ConsumeRun Consume(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
  args.insert(args.begin(), {BinPath("sluice"), "consume"});
  const std::string log = dir.Sub(name);
  int code = sluice::testing::RunCommand(args, log, 30000);
  return {code, sluice::testing::ReadFileOrEmpty(log)};
}

TEST(ConsumeBinaryTest, FromTimeUsesTheTimestampEndpoint) {
  TempDir dir;
  FakeBroker broker;
  ConsumeRun r = Consume(dir, "a.out",
                         {"--broker", broker.url(), "--topic", "sensors", "--partition", "0",
                          "--from-time", "2024-05-01T00:00:00.007Z", "--max", "2"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "{\"partition\":0,\"offset\":7}\n{\"partition\":0,\"offset\":8}\n");
  bool asked = false;
  for (const HttpRequest& q : broker.Requests()) {
    if (q.path == "/v1/topics/sensors/partitions/0/offset") {
      asked = true;
      EXPECT_EQ(q.Query("timestamp"), "1714521600007");
    }
  }
  EXPECT_TRUE(asked);
}

TEST(ConsumeBinaryTest, FromEndPrintsNothingAndLongPollIsPassedOn) {
  TempDir dir;
  FakeBroker broker;
  ConsumeRun r = Consume(dir, "b.out",
                         {"--broker", broker.url(), "--topic", "sensors", "--partition", "0",
                          "--from", "end", "--wait-ms", "250"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "");
  const auto reqs = broker.Requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs.back().Query("offset"), "10");
  EXPECT_EQ(reqs.back().Query("wait_ms"), "250");
}

TEST(ConsumeBinaryTest, UsageErrorsExit2) {
  TempDir dir;
  const std::vector<std::vector<std::string>> bad = {
      {"--broker", "http://127.0.0.1:1", "--partition", "0"},  // no topic
      {"--broker", "http://127.0.0.1:1", "--topic", "t"},      // no mode
      {"--broker", "http://127.0.0.1:1", "--topic", "t", "--partition", "0", "--group", "g"},
      {"--broker", "http://127.0.0.1:1", "--topic", "t", "--group", "g", "--from", "middle"},
      {"--broker", "http://127.0.0.1:1", "--topic", "t", "--group", "g", "--from-time", "soon"},
      {"--broker", "http://127.0.0.1:1", "--topic", "t", "--group", "g", "--from", "end",
       "--from-offset", "3"},
      {"--broker", "http://127.0.0.1:1", "--topic", "t", "--group", "g", "--strategy", "sticky"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    ConsumeRun r = Consume(dir, "u" + std::to_string(i) + ".out", bad[i]);
    EXPECT_EQ(r.code, 2) << i << ": " << r.output;
    EXPECT_NE(r.output.find("sluice: "), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace sluice::cli
