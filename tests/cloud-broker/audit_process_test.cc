// Forged batches straight to a broker (issue 13): 10,000 batches from 8 clients at once to a
// real sluice-broker on its shipped eu-central config, each with a country eu-central may not
// store (US, an unlisted BR), a made-up code, two contradictory country headers, or none: every
// one is refused (451 or 400), every refusal is in the region's audit log (GET /v1/audit: the
// 10,000 request ids, each once, with the gateway id, country and reason), and nothing is
// stored: the log directory of the topic holds no record, read from the disk.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "core/http.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using sluice::testing::TempDir;

std::string Forged(int i) {
  Record r = testing::MakeRecord("forger-" + std::to_string(i % 97), "US", 1'790'000'000'000 + i,
                                 "{}");
  switch (i % 5) {
    case 0: break;                                  // US: stored in us-east only
    case 1: r.headers[1].value = "BR"; break;       // unlisted: denied by default
    case 2: r.headers[1].value = "XX"; break;       // not a country
    case 3: r.headers.push_back({kHeaderCountry, "DE"}); break;  // US and DE: contradictory
    case 4: r.headers.erase(r.headers.begin() + 1); break;       // no country at all
  }
  return testing::EncodeRecords({r});
}

TEST(AuditProcessTest, TenThousandForgedBatchesAreAllRefusedAllAuditedNoneStored) {
  TempDir dir;
  const int port = sluice::testing::FreePort();
  std::string log;
  auto broker =
      sluice::testing::StartShippedBroker(dir, "config/broker-eu-central.yaml", port, {}, &log);
  ASSERT_NE(broker, nullptr) << log;
  // A real topic beside it, with one good record: refusals must not touch it either.
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto good = client.Send("POST", "/v1/topics/forged/records",
                          testing::EncodeRecords({testing::MakeRecord("ok", "DE", 1, "{}")}),
                          "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(good.ok());
  ASSERT_EQ(good->status, 200) << good->body;

  constexpr int kBatches = 10000;
  std::atomic<int> next{0};
  std::atomic<int> refused_451{0}, refused_400{0};
  std::mutex mu;
  std::string unexpected;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      HttpClient c("http://127.0.0.1:" + std::to_string(port));
      for (int i = next++; i < kBatches; i = next++) {
        auto r = c.Send("POST", "/v1/topics/forged/records", Forged(i),
                        "application/vnd.kafka.record-batch.v2",
                        {{"X-Request-Id", "forged-" + std::to_string(i)}});
        const int status = r.ok() ? r->status : -1;
        if (status == 451) {
          ++refused_451;
        } else if (status == 400) {
          ++refused_400;
        } else {
          std::lock_guard<std::mutex> lock(mu);
          if (unexpected.empty()) {
            unexpected = "batch " + std::to_string(i) + ": " + std::to_string(status) + " " +
                         (r.ok() ? r->body : r.status().ToString());
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected, "");
  EXPECT_EQ(refused_451.load(), 3 * kBatches / 5);  // US, BR and XX: not this region's
  EXPECT_EQ(refused_400.load(), 2 * kBatches / 5);  // two countries, or none

  std::string body;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/v1/audit?limit=10000", &body, 60000), 200)
      << body.substr(0, 300);
  rapidjson::Document d;
  d.Parse(body.c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_FALSE(d["more"].GetBool());
  std::set<std::string> ids;
  int us = 0;
  for (const auto& e : d["entries"].GetArray()) {
    ids.insert(e["request_id"].GetString());
    EXPECT_EQ(std::string(e["region"].GetString()), "eu-central");
    EXPECT_EQ(std::string(e["topic"].GetString()), "forged");
    EXPECT_EQ(e["records"].GetUint64(), 1u);
    EXPECT_NE(std::string(e["reason"].GetString()), "");
    us += std::string(e["country"].GetString()) == "US";
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kBatches)) << "each refusal audited once";
  EXPECT_TRUE(ids.count("forged-0") && ids.count("forged-9999"));
  EXPECT_EQ(us, kBatches / 5);
  ASSERT_EQ(sluice::testing::HttpGet(port, "/v1/audit?country=BR&limit=10000", &body), 200);
  d.Parse(body.c_str());
  EXPECT_EQ(d["returned"].GetUint64(), static_cast<uint64_t>(kBatches / 5));
  EXPECT_EQ(sluice::testing::HttpGet(port, "/v1/audit?from=yesterday", &body), 400);
  // The BR refusals again, 700 a page, each page from the previous one's next.
  std::set<std::string> paged;
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    const std::string page =
        "/v1/audit?country=BR&limit=700" + (cursor.empty() ? "" : "&cursor=" + cursor);
    ASSERT_EQ(sluice::testing::HttpGet(port, page, &body), 200) << body;
    d.Parse(body.c_str());
    for (const auto& e : d["entries"].GetArray()) paged.insert(e["request_id"].GetString());
    if (!d["more"].GetBool()) {
      EXPECT_TRUE(d["next"].IsNull());
      break;
    }
    cursor = d["next"].GetString();
  }
  EXPECT_EQ(paged.size(), static_cast<size_t>(kBatches / 5));
  const std::string inside = std::to_string(std::stoll(cursor) + 3);  // not an entry's start
  ASSERT_EQ(sluice::testing::HttpGet(port, "/v1/audit?cursor=" + inside, &body), 400)
      << body;
  EXPECT_NE(body.find("\"field\":\"cursor\""), std::string::npos) << body;

  // Nothing forged stored: the only record of topic "forged" is the good one, on disk.
  std::string q;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/v1/query?topic=forged&count=exact", &q), 200) << q;
  d.Parse(q.c_str());
  EXPECT_EQ(d["matched"].GetUint64(), 1u) << q;
  uint64_t log_bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.Sub("data"))) {
    const std::string name = entry.path().filename().string();
    if (entry.path().parent_path().filename().string().rfind("forged-", 0) == 0 &&
        entry.path().extension() == ".log") {
      log_bytes += std::filesystem::file_size(entry.path());
    }
  }
  const uint64_t one_batch =
      testing::EncodeRecords({testing::MakeRecord("ok", "DE", 1, "{}")}).size();
  EXPECT_EQ(log_bytes, one_batch) << "bytes in the topic's segment files";
}

// An audit log that cannot take another entry (here: full at audit.max_bytes) turns residency
// refusals into 503 audit_unavailable: exactly the refusals answered 451 are in the log.
TEST(AuditProcessTest, ARefusalThatCannotBeAuditedIs503AndEveryAnswered451IsInTheLog) {
  TempDir dir;
  const int port = sluice::testing::FreePort();
  std::string log;
  auto broker = sluice::testing::StartShippedBroker(dir, "config/broker-eu-central.yaml", port,
                                                    {"--set", "audit.max_bytes=1MiB"}, &log);
  ASSERT_NE(broker, nullptr) << log;
  HttpClient c("http://127.0.0.1:" + std::to_string(port));
  int answered_451 = 0;
  int answered_503 = 0;
  for (int i = 0; i < 6000 && answered_503 < 20; ++i) {
    auto r = c.Send("POST", "/v1/topics/forged/records", Forged(5 * i),  // US
                    "application/vnd.kafka.record-batch.v2",
                    {{"X-Request-Id", std::string(100, 'r') + std::to_string(i)}});
    ASSERT_TRUE(r.ok());
    if (r->status == 451) {
      ++answered_451;
    } else {
      ASSERT_EQ(r->status, 503) << r->body;
      EXPECT_NE(r->body.find("audit_unavailable"), std::string::npos) << r->body;
      ++answered_503;
    }
  }
  EXPECT_GT(answered_451, 1000);
  EXPECT_EQ(answered_503, 20) << "the log never filled";
  std::string body;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/v1/audit?limit=10000", &body, 60000), 200);
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_EQ(d["returned"].GetUint64(), static_cast<uint64_t>(answered_451));
  std::string metrics;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/metrics", &metrics), 200);
  EXPECT_EQ(sluice::testing::MetricSum(metrics, "sluice_broker_audit_failures_total"), 20.0);
}

}  // namespace
}  // namespace sluice::broker
