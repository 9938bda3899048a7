// Queries cannot starve produce or /healthz. With cpprestsdk's pool at 2 threads
// (two_http_threads.cc), queries are held inside their scan (ServiceOptions::on_query_start
// blocks on a gate): while they are held, /healthz and produce are still answered, queries past
// query.threads + query.max_waiting are refused at once with 503 and Retry-After, and a query
// over query.timeout is answered 503 query_timeout. Before the query pool, the held queries
// occupied both HTTP threads and /healthz waited for them.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "cloud-broker/server/broker.h"
#include "core/http.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

constexpr const char* kBatchType = "application/vnd.kafka.record-batch.v2";

class QueryGate {
 public:
  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int entered() {
    std::lock_guard<std::mutex> lock(mu_);
    return entered_;
  }
  bool open() {
    std::lock_guard<std::mutex> lock(mu_);
    return open_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int entered_ = 0;
};

class QueryIsolationTest : public ::testing::Test {
 protected:
  void Start(std::function<void()> on_query_start, int64_t timeout_ms = 60000) {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE")};
    o.http_port = sluice::testing::FreePort();
    o.query_threads = 1;
    o.query_max_waiting = 2;
    o.query_timeout_ms = timeout_ms;
    o.on_query_start = std::move(on_query_start);
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    url_ = "http://127.0.0.1:" + std::to_string(broker_->port());
    ASSERT_EQ(Produce(0).status, 200);
  }

  HttpResponse Send(const std::string& method, const std::string& path,
                    const std::string& body = "", const std::string& type = "application/json",
                    int64_t timeout_ms = 30000) {
    HttpClientOptions co;
    co.timeout_ms = timeout_ms;
    HttpClient client(url_, co);
    auto r = client.Send(method, path, body, type);
    return r.ok() ? *r : HttpResponse{0, "", r.status().ToString(), {}};
  }

  HttpResponse Produce(int round) {
    std::vector<Record> recs;
    for (int d = 0; d < 10; ++d) {
      recs.push_back(testing::MakeRecord("dev-" + std::to_string(d), "DE",
                                         1'700'000'000'000 + round, "{\"v\":1}"));
    }
    return Send("POST", "/v1/topics/sensors/records", testing::EncodeRecords(recs), kBatchType);
  }

  sluice::testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::string url_;
};

TEST_F(QueryIsolationTest, HeldQueriesLeaveProduceAndHealthzAnswered) {
  QueryGate gate;
  Start([&] { gate.Enter(); });
  // Six concurrent queries: one scans (held at the gate), two wait, three are refused at once.
  std::vector<std::future<HttpResponse>> queries;
  for (int i = 0; i < 6; ++i) {
    queries.push_back(std::async(std::launch::async, [this] {
      return Send("GET", "/v1/query?country=DE", "", "application/json", 90000);
    }));
  }
  ASSERT_TRUE(sluice::testing::WaitFor([&] { return gate.entered() >= 1; }, 20000));
  auto ready = [&] {
    int n = 0;
    for (auto& q : queries) {
      n += q.valid() && q.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    }
    return n;
  };
  ASSERT_TRUE(sluice::testing::WaitFor([&] { return ready() == 3; }, 20000)) << ready();
  int refused = 0;
  for (auto& q : queries) {
    if (q.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      continue;  // held or waiting
    }
    HttpResponse r = q.get();
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_NE(r.body.find("query_overloaded"), std::string::npos) << r.body;
    bool retry_after = false;
    for (const auto& [k, v] : r.headers) {
      retry_after |= (k == "Retry-After" || k == "retry-after");
    }
    EXPECT_TRUE(retry_after);
    ++refused;
  }
  EXPECT_EQ(refused, 3);
  // With every query held, /healthz and produce are answered (a 10 s client timeout, where a
  // free HTTP thread answers in milliseconds; the gate holds the queries for up to 60 s).
  HttpResponse health = Send("GET", "/healthz", "", "application/json", 10000);
  EXPECT_EQ(health.status, 200) << health.body;
  HttpResponse produced = Produce(1);
  EXPECT_EQ(produced.status, 200) << produced.body;
  EXPECT_FALSE(gate.open());
  EXPECT_EQ(gate.entered(), 1) << "only query.threads queries scan at once";
  gate.Open();
  int answered = 0;
  for (auto& q : queries) {
    if (q.valid()) {
      HttpResponse r = q.get();
      EXPECT_EQ(r.status, 200) << r.body;
      ++answered;
    }
  }
  EXPECT_EQ(answered, 3);
}

TEST_F(QueryIsolationTest, QueryOverItsTimeBudgetIs503QueryTimeout) {
  // The scan starts only once its 1 ms budget has passed (polled, not slept).
  Start(
      [] {
        const int64_t start = SystemClock::Instance().MonotonicUs();
        sluice::testing::WaitFor(
            [&] { return SystemClock::Instance().MonotonicUs() - start > 5000; }, 10000, 1);
      },
      1);
  HttpResponse r = Send("GET", "/v1/query?country=DE");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("query_timeout"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("query.timeout"), std::string::npos) << r.body;
  std::string metrics = Send("GET", "/metrics").body;
  EXPECT_NE(metrics.find("sluice_broker_queries_refused_total{reason=\"timeout\"} 1"),
            std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace sluice::broker
