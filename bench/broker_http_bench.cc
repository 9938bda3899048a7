// Broker through its HTTP API (issue 3): (b) produce of 1,000-record batches with flush always
// from several client threads (core HttpClient), beside in-process baselines from the same run
// (DecodeBatch alone, and PartitionLog append with flush always); (c) fetch throughput of a
// caught-up consumer and p50/p99 produce latency at a fixed rate.
// Usage: sluice-bench-broker-http [--dir DIR] [--seconds S] [--threads N] [--produce-only]
//        [--index on|off]   (query.index: the broker's query indexer, on by default)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "cloud-broker/server/broker.h"
#include "core/allocator_tuning.h"
#include "core/http.h"
#include "core/record_batch.h"

namespace {

using namespace sluice;
using namespace sluice::broker;
using SteadyClock = std::chrono::steady_clock;

double Seconds(SteadyClock::time_point since) {
  return std::chrono::duration<double>(SteadyClock::now() - since).count();
}

// `n` records of one device (one partition), 200-byte values, the headers the broker requires.
std::string MakeBatch(int device, int n) {
  RecordBatch b;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.timestamp_ms = 1'700'000'000'000 + i;
    r.key = "dev-" + std::to_string(device);
    r.value = std::string(200, static_cast<char>('a' + i % 26));
    r.headers = {{kHeaderCountry, "DE"}};
    b.records.push_back(std::move(r));
  }
  return EncodeBatch(b);
}

// A port the kernel says is free right now (bind to port 0, read it back).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

int main(int argc, char** argv) {
  sluice::TuneAllocatorForLargeBuffers();  // as the shipped binaries do
  std::string dir = std::filesystem::current_path().string() + "/bench-broker-tmp";
  double seconds = 5;
  int threads = 4;
  bool produce_only = false;  // for profiling the produce path alone
  bool index = true;          // query.index
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--produce-only") == 0) produce_only = true;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--threads") == 0) threads = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--index") == 0) index = std::strcmp(argv[i + 1], "off") != 0;
  }
  std::filesystem::remove_all(dir);
  SetLogLevel(LogLevel::kWarn);
  InitHttpThreads(4);

  // Baselines from this run.
  std::vector<std::string> batches;
  for (int t = 0; t < threads; ++t) {
    batches.push_back(MakeBatch(t, 1000));
  }
  const double decode_rate =
      produce_only ? 0 : bench::Rate([&] { (void)DecodeBatch(batches[0]); }, 1000, 1.0);
  double append_rate = 0;
  if (!produce_only) {
    LogOptions o;
    auto log = PartitionLog::Open(dir + "/baseline-0", o);
    append_rate = bench::Rate([&] { (void)(*log)->Append(batches[0]); }, 1000, 1.0);
  }
  std::filesystem::remove_all(dir);

  BrokerOptions o;
  o.data_dir = dir;
  o.region = RegionId("eu-central");
  o.countries = {CountryCode("DE")};
  o.http_port = FreePort();
  o.default_partitions = threads;
  o.flush = FlushPolicy::kAlways;
  o.query_index = index;
  auto broker = Broker::Start(o);
  if (!broker.ok()) {
    std::fprintf(stderr, "broker: %s\n", broker.status().ToString().c_str());
    return 1;
  }
  const std::string url = "http://127.0.0.1:" + std::to_string((*broker)->port());
  const char* type = "application/vnd.kafka.record-batch.v2";

  // (b) produce throughput.
  std::atomic<uint64_t> records{0}, errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  const auto start = SteadyClock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      HttpClient c(url);
      while (!stop.load()) {
        auto r = c.Send("POST", "/v1/topics/bench/records", batches[t], type);
        if (r.ok() && r->status == 200) {
          records.fetch_add(1000);
        } else {
          errors.fetch_add(1);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) {
    t.join();
  }
  const double produce_rate = records.load() / Seconds(start);
  if (StoreIndexer* indexer = (*broker)->indexer()) {
    std::printf("query index: %lld records not indexed yet when produce stopped\n",
                static_cast<long long>(indexer->lag()));
  }
  std::printf("HTTP produce, %d client threads, 1000-record batches, flush always, query index "
              "%s (%llu errors)\n",
              threads, index ? "on" : "off", static_cast<unsigned long long>(errors.load()));
  bench::Row("produce records/s", produce_rate, "rec/s", "DecodeBatch alone (1 core)",
             decode_rate);
  bench::Row("produce records/s", produce_rate, "rec/s", "in-process append, fsync",
             append_rate);
  bench::Row("produce records/s", produce_rate, "rec/s", "issue target", 1e6);

  // (c) fetch throughput of a caught-up consumer: partition 0 from offset 0 to its end.
  if (!produce_only) {
    HttpClient c(url);
    int64_t offset = 0, got = 0;
    const auto fs = SteadyClock::now();
    while (true) {
      auto r = c.Get("/v1/topics/bench/partitions/0/records?max_records=10000&max_bytes=67108864"
                     "&offset=" + std::to_string(offset));
      if (!r.ok() || r->status != 200) {
        break;
      }
      size_t p = r->body.rfind("\"next_offset\":");
      int64_t next = std::atoll(r->body.c_str() + p + 14);
      got += next - offset;
      offset = next;
      size_t e = r->body.rfind("\"end_offset\":");
      if (offset >= std::atoll(r->body.c_str() + e + 13)) {
        break;
      }
    }
    bench::Row("fetch records/s (caught-up consumer, JSON)", got / Seconds(fs), "rec/s",
               "DecodeBatch alone (1 core)", decode_rate);
  }

  // (c) produce latency at a fixed rate: 100-record batches, 200 requests/s, one client.
  if (!produce_only) {
    HttpClient c(url);
    const std::string small = MakeBatch(0, 100);
    std::vector<double> lat;
    const auto t0 = SteadyClock::now();
    for (int i = 0; Seconds(t0) < seconds; ++i) {
      std::this_thread::sleep_until(t0 + std::chrono::microseconds(i * 5000));
      const auto s = SteadyClock::now();
      auto r = c.Send("POST", "/v1/topics/bench/records", small, type);
      if (r.ok() && r->status == 200) {
        lat.push_back(Seconds(s) * 1000);
      }
    }
    std::sort(lat.begin(), lat.end());
    if (!lat.empty()) {
      // Baseline: one fdatasync'd 100-record append in process.
      LogOptions lo;
      auto log = PartitionLog::Open(dir + "/lat-baseline", lo);
      std::vector<double> base;
      for (int i = 0; i < 200; ++i) {
        const auto s = SteadyClock::now();
        (void)(*log)->Append(small);
        base.push_back(Seconds(s) * 1000);
      }
      std::sort(base.begin(), base.end());
      std::printf("produce latency at 200 req/s x 100 records (%zu requests):\n", lat.size());
      bench::Row("  p50 ms", lat[lat.size() / 2], "ms", "in-process append p50", base[100]);
      bench::Row("  p99 ms", lat[lat.size() * 99 / 100], "ms", "in-process append p99",
                 base[198]);
    }
  }
  (*broker)->Stop();
  broker->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
