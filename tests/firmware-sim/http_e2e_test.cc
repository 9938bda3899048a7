// The simulator against a fake gateway (a core HttpServer standing in for POST /v1/events) that
// answers 202 to some requests and 503 to others: the manifest's acked/failed ranges must match
// exactly what the fake acknowledged.
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/clock.h"
#include "core/http.h"
#include "firmware-sim/simulator.h"
#include "tests/common/fake_http_server.h"
#include "tests/common/test_env.h"
#include "tests/firmware-sim/sim_test_util.h"

namespace sluice::sim {
namespace {

using DeviceSeq = std::pair<std::string, uint64_t>;
using testing::ConfigFromYaml;
using testing::ExpandRanges;

// A fake gateway: `policy(request_number, events)` picks the status of each request.
class FakeGateway {
 public:
  using Policy = std::function<int(int, const std::vector<DeviceSeq>&)>;
  explicit FakeGateway(Policy policy)
      : policy_(std::move(policy)),
        server_([this](const HttpRequest& req) { return Handle(req); }) {}
  std::string url() const { return server_.url(); }

  std::mutex mu;
  std::set<DeviceSeq> acked;          // events of requests answered 202
  std::multiset<DeviceSeq> received;  // every event of every request
  int ndjson_multi = 0;               // NDJSON requests holding more than one event
  int single_object = 0;              // application/json requests holding one object
  int requests = 0;
  std::vector<std::string> problems;

 private:
  HttpResponse Handle(const HttpRequest& req) {
    std::vector<DeviceSeq> events;
    std::istringstream lines(req.body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      rapidjson::Document doc;
      doc.Parse(line.c_str());
      if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("device_id") ||
          !doc.HasMember("seq") || !doc.HasMember("ts") || !doc.HasMember("country") ||
          !doc.HasMember("sensor") || !doc.HasMember("value") || !doc.HasMember("pad")) {
        std::lock_guard<std::mutex> lock(mu);
        problems.push_back("bad event: " + line);
        return HttpResponse::Error(400, "invalid_event", "bad json", "", 0);
      }
      events.push_back({doc["device_id"].GetString(), doc["seq"].GetUint64()});
    }
    std::lock_guard<std::mutex> lock(mu);
    if (req.method != "POST" || req.path != "/v1/events") problems.push_back("bad path " + req.path);
    const std::string ct = req.Header("content-type");
    if (ct.find("ndjson") != std::string::npos && events.size() > 1) ++ndjson_multi;
    if (ct.find("application/json") != std::string::npos && events.size() == 1) ++single_object;
    const int status = policy_(++requests, events);
    for (const auto& e : events) received.insert(e);
    if (status == 202) {
      for (const auto& e : events) acked.insert(e);
      return HttpResponse::Json(202, "{\"accepted\":" + std::to_string(events.size()) + "}");
    }
    HttpResponse r = HttpResponse::Error(status, "unavailable", "fake says no");
    r.headers.push_back({"Retry-After", "1"});
    return r;
  }

  Policy policy_;
  sluice::testing::FakeHttpServer server_;  // last: stopped first, before the state Handle uses
};

std::string HttpOnlyConfig(const std::string& url, const std::string& manifest, int attempts) {
  return "sim:\n  seed: 11\n  devices: 12\n  duration: 1s\n  rate_per_device: 10\n"
         "  sensors: [temperature, humidity]\n  payload_bytes: 150\n  manifest: " +
         manifest + "\n  http_max_attempts: " + std::to_string(attempts) +
         "\n  http_backoff_initial: 5ms\n  http_backoff_max: 20ms\n  tick: 50ms\n"
         "sites:\n  - name: gw\n    countries: [DE, FR]\n    transport: http\n    http_url: " +
         url + "\n";
}

// Checks the manifest file against what the fake acknowledged; returns the parsed totals.
void CheckManifestMatches(const std::string& path, FakeGateway& gw, uint64_t* acked_total,
                          uint64_t* failed_total) {
  rapidjson::Document doc;
  const std::string text = testing::ReadWholeFile(path);
  doc.Parse(text.c_str());
  ASSERT_FALSE(doc.HasParseError()) << text;
  std::lock_guard<std::mutex> lock(gw.mu);
  EXPECT_TRUE(gw.problems.empty()) << gw.problems.front();
  uint64_t acked = 0;
  uint64_t failed = 0;
  uint64_t sent = 0;
  for (const auto& d : doc["devices"].GetArray()) {
    const std::string id = d["device_id"].GetString();
    std::set<uint64_t> a = ExpandRanges(d["acked_seqs"]);
    std::set<uint64_t> f = ExpandRanges(d["failed_seqs"]);
    const uint64_t n = d["sent"].GetUint64();
    EXPECT_EQ(n, 10u) << id << ": 1 s at 10/s";
    EXPECT_EQ(a.size() + f.size(), n) << id;
    for (uint64_t s = 1; s <= n; ++s) {
      const bool fake_acked = gw.acked.count({id, s}) > 0;
      EXPECT_EQ(a.count(s) > 0, fake_acked) << id << " seq " << s;
      EXPECT_EQ(f.count(s) > 0, !fake_acked) << id << " seq " << s;
      EXPECT_GE(gw.received.count({id, s}), 1u) << id << " seq " << s << " never sent";
    }
    acked += a.size();
    failed += f.size();
    sent += n;
  }
  EXPECT_EQ(doc["totals"]["http_acked"].GetUint64(), acked);
  EXPECT_EQ(doc["totals"]["http_failed"].GetUint64(), failed);
  EXPECT_EQ(doc["totals"]["http_sent"].GetUint64(), sent);
  EXPECT_EQ(doc["totals"]["sent"].GetUint64(), sent);
  EXPECT_EQ(doc["totals"]["mqtt_sent"].GetUint64(), 0u);
  EXPECT_GT(gw.ndjson_multi, 0) << "batched NDJSON requests expected";
  EXPECT_GT(gw.single_object, 0) << "single-event requests expected";
  *acked_total = acked;
  *failed_total = failed;
}

TEST(HttpE2eTest, RetriesTransient503UntilAcked) {
  sluice::testing::TempDir dir;
  // The first attempt of every request fails with 503 (each event travels in exactly one
  // request, so its first event names it): with retries, everything ends up acknowledged.
  auto seen = std::make_shared<std::set<DeviceSeq>>();
  FakeGateway gw([seen](int, const std::vector<DeviceSeq>& events) {
    if (events.empty()) return 202;
    return seen->insert(events.front()).second ? 503 : 202;
  });
  const std::string manifest = dir.Sub("manifest.json");
  SimConfig c = ConfigFromYaml(HttpOnlyConfig(gw.url(), manifest, 6));
  auto report = RunSimulation(c, SystemClock::Instance());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  uint64_t acked = 0;
  uint64_t failed = 0;
  CheckManifestMatches(manifest, gw, &acked, &failed);
  EXPECT_EQ(acked, 120u);
  EXPECT_EQ(failed, 0u);
  EXPECT_GT(report->http_retries, 0u);
  EXPECT_EQ(report->manifest.totals.http_acked, 120u);
}

TEST(HttpE2eTest, PermanentRefusalsAndExhaustedRetriesAreFailedRanges) {
  sluice::testing::TempDir dir;
  // gw-dev-0003 sends single-event requests: always 503 (retries run out). gw-dev-0005 sends in
  // batches: those of its requests that carry an even seq of it are refused with 400.
  FakeGateway gw([](int, const std::vector<DeviceSeq>& events) {
    for (const auto& [id, seq] : events) {
      if (id == "gw-dev-0003") return 503;
      if (id == "gw-dev-0005" && seq % 2 == 0) return 400;
    }
    return 202;
  });
  const std::string manifest = dir.Sub("manifest.json");
  SimConfig c = ConfigFromYaml(HttpOnlyConfig(gw.url(), manifest, 3));
  auto report = RunSimulation(c, SystemClock::Instance());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  uint64_t acked = 0;
  uint64_t failed = 0;
  CheckManifestMatches(manifest, gw, &acked, &failed);
  EXPECT_GE(failed, 15u) << "all 10 of dev-0003 and the 5 even seqs of dev-0005 at least";
  EXPECT_EQ(acked + failed, 120u);
  for (const ManifestDevice& d : report->manifest.devices) {
    if (d.device_id == "gw-dev-0003") {
      EXPECT_EQ(d.http_mode, "single");
      EXPECT_TRUE(d.acked_seqs.empty());
      EXPECT_EQ(d.failed_seqs, (std::vector<SeqRange>{{1, 10}}));
    }
  }
  std::lock_guard<std::mutex> lock(gw.mu);
  EXPECT_EQ(gw.received.count({"gw-dev-0003", 1}), 3u) << "3 attempts for a 503";
}

TEST(HttpE2eTest, UnreachableGatewayStillRunsAndRecordsFailures) {
  sluice::testing::TempDir dir;
  const std::string url = "http://127.0.0.1:" + std::to_string(sluice::testing::FreePort());
  const std::string manifest = dir.Sub("manifest.json");
  SimConfig c = ConfigFromYaml(HttpOnlyConfig(url, manifest, 4));
  auto report = RunSimulation(c, SystemClock::Instance());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->manifest.totals.http_sent, 120u);
  EXPECT_EQ(report->manifest.totals.http_failed, 120u);
  EXPECT_EQ(report->manifest.totals.http_acked, 0u);
  // Once a request runs out of attempts on transport errors the site is marked down and later
  // requests get one attempt: only requests in flight at that moment retry fully.
  EXPECT_GT(report->http_requests, 30u);
  EXPECT_LE(report->http_retries, static_cast<uint64_t>(c.http_workers * 3 + 3));
}

}  // namespace
}  // namespace sluice::sim
