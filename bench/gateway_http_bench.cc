// HTTP ingest benchmark: the gateway's POST /v1/events (GatewayApp in this process, sync: always,
// regions unreachable so nothing is forwarded) beside a bare core HttpServer answering 204, both
// driven by the same 8 client threads (core HttpClient, one request at a time each) in the same
// run. Rows: single-event requests (req/s vs the bare listener, alternating rounds) and
// 1,000-event NDJSON bodies (durable events/s); first, the fdatasync latency of this disk idle
// and under the bare run's load, and the bound it puts on closed-loop single-event clients.
// Usage: sluice-bench-gateway-http [data dir] [client threads, default 8] [rounds, default 5]
// SLUICE_BENCH_HTTP_SERVE=<seconds>: only serve both listeners (ports printed) for that long.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/offline_gateway.h"
#include "core/allocator_tuning.h"
#include "core/http.h"
#include "core/logging.h"
#include "gateway/app/gateway_app.h"

namespace sluice::bench {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Requests/s (each carrying `events` events) that `threads` clients get 2xx for in `secs`.
double Drive(int port, const std::string& body, const std::string& ctype, int threads,
             double secs) {
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> bad{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      HttpClient c("http://127.0.0.1:" + std::to_string(port));
      while (!stop.load()) {
        Result<HttpResponse> r = c.Send("POST", "/v1/events", body, ctype);
        (r.ok() && r->status / 100 == 2 ? ok : bad) += 1;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(secs));
  stop = true;
  for (auto& t : ts) {
    t.join();
  }
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (bad.load() > 0) {
    std::fprintf(stderr, "%lld requests failed\n", static_cast<long long>(bad.load()));
  }
  return static_cast<double>(ok.load()) / el;
}

// Samples the latency of a 300-byte append + fdatasync (what one group commit of a single-event
// request costs at least) every 2 ms while it lives; Median() in microseconds. It explains the
// single-event row: every 202 waits for one such fsync, and the disk is slower under load.
class FsyncProbe {
 public:
  explicit FsyncProbe(const std::string& path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    thread_ = std::thread([this] {
      const std::string rec(300, 'r');
      while (!stop_.load() && fd_ >= 0) {
        const auto t0 = std::chrono::steady_clock::now();
        if (::write(fd_, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size()) ||
            ::fdatasync(fd_) != 0) {
          break;
        }
        samples_.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count());
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
  }
  ~FsyncProbe() { Stop(); }
  double Median() {
    Stop();
    if (samples_.empty()) {
      return 0;
    }
    std::sort(samples_.begin(), samples_.end());
    return samples_[samples_.size() / 2];
  }

 private:
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) {
      thread_.join();
    }
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::vector<double> samples_;
  std::thread thread_;
};

std::string Event(int i) {
  return "{\"device_id\":\"dev-" + std::to_string(i % 1000) +
         "\",\"sensor\":\"temp\",\"ts\":1700000000000,\"value\":21.5,\"pad\":\"" +
         std::string(100, 'x') + "\"}";
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  sluice::TuneAllocatorForLargeBuffers();  // as the shipped binaries do
  using namespace sluice;
  using namespace sluice::bench;
  SetLogLevel(LogLevel::kWarn);
  const int kThreads = argc > 2 ? std::atoi(argv[2]) : 8;
  const int kRounds = argc > 3 ? std::atoi(argv[3]) : 5;
  const double kSecs = 1.5;
  InitHttpThreads(4);
  std::string dir = argc > 1 ? argv[1] : "/tmp/sluice-bench-http";
  std::filesystem::remove_all(dir);

  const std::string single = Event(1);
  std::string ndjson;
  for (int i = 0; i < 1000; ++i) {
    ndjson += Event(i) + "\n";
  }
  // Both servers stay up; single-event phases alternate bare / gateway for several rounds so a
  // slow second of this shared machine hits both sides (the bare rate alone varied 8-15 k req/s
  // between runs here). Rows: every round, then the medians.
  HttpServerOptions so;
  so.port = FreePort();
  auto server = HttpServer::Start(so, [](HttpRequest&&, HttpResponder respond) {
    HttpResponse r;
    r.status = 204;
    respond(std::move(r));
  });
  if (!server.ok()) {
    std::fprintf(stderr, "bare server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  gateway::GatewayConfig cfg = OfflineGatewayConfig(dir);
  cfg.mqtt_enabled = false;
  cfg.http_port = FreePort();
  cfg.buffer_max_bytes = int64_t{8} << 30;
  std::vector<double> bares;
  std::vector<double> singles;
  std::vector<double> ratios;
  double gw_bulk = 0;
  {
    gateway::GatewayApp app(cfg);
    Status st = app.Start();
    if (!st.ok()) {
      std::fprintf(stderr, "gateway: %s\n", st.ToString().c_str());
      return 1;
    }
    if (const char* serve = std::getenv("SLUICE_BENCH_HTTP_SERVE")) {
      // For an external load generator (docs/BENCHMARKS.md: wrk): both listeners, N seconds.
      std::printf("bare port %d gateway port %d\n", so.port, cfg.http_port);
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::seconds(std::atoi(serve)));
      return 0;
    }
    double fsync_idle_us = 0;
    double fsync_loaded_us = 0;
    double bare_probed = 0;
    {
      FsyncProbe idle(dir + "/fsync-probe");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      fsync_idle_us = idle.Median();
      FsyncProbe loaded(dir + "/fsync-probe");
      bare_probed = Drive(so.port, single, "application/json", kThreads, kSecs);
      fsync_loaded_us = loaded.Median();
    }
    std::printf("http: fdatasync of a 300 B append: median %.0f us idle, %.0f us while %d clients "
                "drive the bare listener (%.0f req/s)\n",
                fsync_idle_us, fsync_loaded_us, kThreads, bare_probed);
    // Closed-loop clients each wait for their own commit: with the bare round trip R = clients /
    // bare rate and at least one loaded fsync F per request, at most clients / (R + F).
    const double rtt_us = 1e6 * kThreads / bare_probed;
    std::printf("http: fsync bound for %d closed-loop clients: %.0f req/s = %.1f %% of bare "
                "(R %.0f us + F %.0f us; CPU-bound loads fall below it)\n",
                kThreads, 1e6 * kThreads / (rtt_us + fsync_loaded_us),
                100 * rtt_us / (rtt_us + fsync_loaded_us), rtt_us, fsync_loaded_us);
    for (int r = 0; r < kRounds; ++r) {
      const double bare = Drive(so.port, single, "application/json", kThreads, kSecs);
      const double gw = Drive(cfg.http_port, single, "application/json", kThreads, kSecs);
      bares.push_back(bare);
      singles.push_back(gw);
      ratios.push_back(gw / bare);
      Row("http: 1-event POST -> 202 (sync: always), round " + std::to_string(r + 1), gw, "req/s",
          "bare HttpServer 204", bare);
    }
    gw_bulk = 1000 * Drive(cfg.http_port, ndjson, "application/x-ndjson", kThreads, 4.0);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("http: %d client threads; median ratio of the rounds %.1f %%\n", kThreads,
              100 * median(ratios));
  Row("http: 1-event POST -> 202 (sync: always), median", median(singles), "req/s",
      "bare HttpServer 204, median", median(bares));
  Row("http: 1,000-event NDJSON POST (sync: always)", gw_bulk, "events/s", "target", 500000);
  std::filesystem::remove_all(dir);
  return 0;
}
