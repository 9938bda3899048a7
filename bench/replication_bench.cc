// Produce to a running region over HTTP (issue 11): throughput of 1,000-record batches from
// several client threads, and p50/p99 latency of 100-record batches at a fixed rate, each
// batch sent to its partition's leader (from GET /v1/metadata), acks=all. bench/replication.sh
// runs it against three replicated brokers and against one broker alone, in the same run.
// Usage: sluice-bench-replication URL [--seconds S] [--threads N] [--topic T]
//        sluice-bench-replication --write-batch FILE   (a 100-record batch, for curl)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "core/http.h"
#include "core/partitioner.h"
#include "core/record_batch.h"

namespace {

using namespace sluice;
using SteadyClock = std::chrono::steady_clock;

std::string MakeBatch(const std::string& key, int n) {
  RecordBatch b;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.timestamp_ms = 1'700'000'000'000 + i;
    r.key = key;
    r.value = std::string(200, static_cast<char>('a' + i % 26));
    r.headers = {{kHeaderCountry, "DE"}};
    b.records.push_back(std::move(r));
  }
  return EncodeBatch(b);
}

// Leader URL per partition of `topic`, from the region's metadata.
std::vector<std::string> Leaders(const std::string& url, const std::string& topic) {
  HttpClient c(url);
  Result<HttpResponse> r = c.Get("/v1/metadata");
  std::vector<std::string> out;
  if (!r.ok() || r->status != 200) {
    return out;
  }
  rapidjson::Document d;
  d.Parse(r->body.c_str());
  if (d.HasParseError() || !d.HasMember("topics")) {
    return out;
  }
  for (const auto& t : d["topics"].GetArray()) {
    if (topic != t["name"].GetString()) {
      continue;
    }
    for (const auto& p : t["partitions"].GetArray()) {
      const size_t i = static_cast<size_t>(p["partition"].GetInt());
      out.resize(std::max(out.size(), i + 1));
      out[i] = p["leader_url"].GetString();
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: sluice-bench-replication URL [--seconds S] [--threads N]\n");
    return 2;
  }
  if (std::strcmp(argv[1], "--write-batch") == 0 && argc >= 3) {
    const std::string batch = MakeBatch("dev-failover", 100);
    FILE* f = std::fopen(argv[2], "wb");
    if (f == nullptr || std::fwrite(batch.data(), 1, batch.size(), f) != batch.size()) {
      std::perror(argv[2]);
      return 1;
    }
    std::fclose(f);
    return 0;
  }
  const std::string url = argv[1];
  double seconds = 5;
  int threads = 4;
  std::string topic = "bench";
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--topic") == 0) topic = argv[i + 1];
  }
  const std::vector<std::string> leaders = Leaders(url, topic);
  if (leaders.empty() || std::any_of(leaders.begin(), leaders.end(),
                                     [](const std::string& l) { return l.empty(); })) {
    std::fprintf(stderr, "no leaders for topic %s at %s\n", topic.c_str(), url.c_str());
    return 1;
  }
  const int32_t partitions = static_cast<int32_t>(leaders.size());
  // Throughput: each thread one device (one partition), 1,000-record batches.
  std::atomic<int64_t> records{0};
  std::atomic<int64_t> failures{0};
  const auto start = SteadyClock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::string key = "dev-" + std::to_string(t);
      HttpClient c(leaders[static_cast<size_t>(PartitionForKey(key, partitions))]);
      const std::string batch = MakeBatch(key, 1000);
      while (SteadyClock::now() < until) {
        Result<HttpResponse> r =
            c.Send("POST", "/v1/topics/" + topic + "/records", batch,
                   "application/vnd.kafka.record-batch.v2");
        if (r.ok() && r->status == 200) {
          records += 1000;
        } else {
          failures += 1;
        }
      }
    });
  }
  for (std::thread& th : pool) {
    th.join();
  }
  const double took = std::chrono::duration<double>(SteadyClock::now() - start).count();
  std::printf("throughput: %.0f records/s (%d threads x 1,000-record batches, %lld refused)\n",
              static_cast<double>(records.load()) / took, threads,
              static_cast<long long>(failures.load()));
  // Latency: one client, 100-record batches at 200 requests/s.
  {
    const std::string key = "dev-latency";
    HttpClient c(leaders[static_cast<size_t>(PartitionForKey(key, partitions))]);
    const std::string batch = MakeBatch(key, 100);
    std::vector<double> ms;
    const auto lat_until = SteadyClock::now() + std::chrono::duration<double>(seconds);
    auto next = SteadyClock::now();
    while (SteadyClock::now() < lat_until) {
      std::this_thread::sleep_until(next);
      next += std::chrono::milliseconds(5);
      const auto t0 = SteadyClock::now();
      Result<HttpResponse> r = c.Send("POST", "/v1/topics/" + topic + "/records", batch,
                                      "application/vnd.kafka.record-batch.v2");
      if (r.ok() && r->status == 200) {
        ms.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
      }
    }
    std::sort(ms.begin(), ms.end());
    if (!ms.empty()) {
      std::printf("latency at 200 req/s x 100 records: p50 %.2f ms, p99 %.2f ms (%zu requests)\n",
                  ms[ms.size() / 2], ms[ms.size() * 99 / 100], ms.size());
    }
  }
  return 0;
}
