// The real sluice-gateway binary under buffer bounds and damage: a full buffer under `reject`
// (HTTP 503 + Retry-After, counted) and `drop_oldest` (evicted, counted, bytes stay bounded), TTL
// expiry, a buffer entry corrupted on disk while the gateway is stopped (quarantined at start,
// the rest delivered to a real sluice-broker, shown by --check-buffer), and a full disk (503
// disk_full at the free-space floor, accepted again once space returns, all delivered once).
#include <arpa/inet.h>
#include <leveldb/db.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "gateway/buffer/event_codec.h"
#include "tests/common/buffer_corruption.h"
#include "tests/common/small_disk.h"
#include "tests/common/test_env.h"

namespace sluice::testing {
namespace {

std::string Config(const std::string& data, int port, const std::string& eu_url,
                   const std::string& buffer) {
  return "gateway:\n  id: gw-b\n  country: DE\n  data_dir: " + data +
         "\nmqtt:\n  enabled: false\nhttp:\n  port: " + std::to_string(port) +
         "\nbuffer:\n" + buffer +
         "forward:\n  backoff_initial: 50ms\n  backoff_max: 200ms\n  linger: 1ms\n"
         "regions:\n  - name: eu-central\n    url: " + eu_url +
         "\n    countries: [DE]\n";
}

// POST over a plain socket, returning the raw response (status line + headers + body).
std::string RawPost(int port, const std::string& path, const std::string& body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string req = "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) {
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  close(fd);
  return out;
}

std::string Event(const std::string& device) {
  return "{\"device_id\":\"" + device + "\",\"v\":\"" + std::string(60, 'p') + "\"}";
}

class GatewayBufferBinaryTest : public ::testing::Test {
 protected:
  std::unique_ptr<ChildProcess> StartGateway(const std::string& buffer, const std::string& eu_url,
                                             int port, const std::string& data_dir = "") {
    std::string cfg = dir_.Sub("gw.yaml");
    EXPECT_TRUE(WriteFile(
        cfg, Config(data_dir.empty() ? dir_.Sub("data") : data_dir, port, eu_url, buffer)));
    auto p = ChildProcess::Start({BinPath("sluice-gateway"), "--config", cfg},
                                 dir_.Sub("gw-" + std::to_string(++runs_) + ".log"));
    EXPECT_TRUE(p && WaitHttpOk(port, "/healthz", 15000)) << (p ? p->ReadLog() : "");
    return p;
  }
  double Metric(int port, const std::string& name, const std::string& labels = "") {
    std::string text;
    if (HttpGet(port, "/metrics", &text) != 200) {
      return -1;
    }
    if (labels.empty()) {
      return MetricSum(text, name);
    }
    size_t pos = text.find(name + "{" + labels + "} ");
    return pos == std::string::npos ? 0 : std::stod(text.substr(text.find("} ", pos) + 2));
  }
  // A 12 MiB tmpfs where "other-app.log" leaves about 3 MiB free; nullptr (and *why) if it
  // cannot be mounted.
  std::unique_ptr<SmallDisk> NearlyFullDisk(std::string* why) {
    auto disk = SmallDisk::Mount(dir_.Sub("disk"), int64_t{12} << 20, why);
    if (disk != nullptr) {
      EXPECT_TRUE(disk->Fill("other-app.log", disk->FreeBytes() - (int64_t{3} << 20)));
    }
    return disk;
  }
  std::unique_ptr<ChildProcess> StartBroker(int port) {
    auto p = ChildProcess::Start(
        {BinPath("sluice-broker"), "--config", SourcePath("config/broker-eu-central.yaml"),
         "--set", "http.port=" + std::to_string(port), "--set",
         "broker.data_dir=" + dir_.Sub("broker")},
        dir_.Sub("broker.log"));
    EXPECT_TRUE(p && WaitHttpOk(port, "/healthz", 15000)) << (p ? p->ReadLog() : "");
    return p && p->Running() ? std::move(p) : nullptr;
  }
  // Posts 20-event NDJSON bodies until one is not answered 202; returns the events accepted
  // and the refusing response in *refusal.
  int PostUntilRefused(int port, const std::string& device_prefix, std::string* refusal) {
    int accepted = 0;
    for (int i = 0; i < 10000; ++i) {
      std::string body;
      for (int j = 0; j < 20; ++j) {
        body += Event(device_prefix + std::to_string(i * 20 + j)) + "\n";
      }
      *refusal = RawPost(port, "/v1/events", body);
      if (refusal->rfind("HTTP/1.1 202", 0) != 0) {
        break;
      }
      accepted += 20;
    }
    return accepted;
  }
  // Waits until the gateway holds nothing more, then expects the broker to hold exactly
  // `accepted` records.
  void ExpectAllDeliveredOnce(int port, int broker_port, int accepted, ChildProcess& gw) {
    ASSERT_TRUE(WaitFor([&] { return Metric(port, "sluice_gateway_buffered_records") == 0.0; },
                        30000))
        << gw.ReadLog();
    std::string body;
    ASSERT_EQ(HttpGet(broker_port, "/v1/query?topic=sensors&limit=1&count=exact", &body), 200)
        << body;
    EXPECT_NE(body.find("\"matched\":" + std::to_string(accepted) + ","), std::string::npos)
        << accepted << " " << body.substr(0, 300);
  }
  int CheckBuffer(std::string* out) {
    std::string log = dir_.Sub("check-" + std::to_string(++runs_) + ".log");
    int code = RunCommand(
        {BinPath("sluice-gateway"), "--config", dir_.Sub("gw.yaml"), "--check-buffer"}, log,
        20000);
    *out = ReadFileOrEmpty(log);
    return code;
  }

  TempDir dir_;
  int runs_ = 0;
};

TEST_F(GatewayBufferBinaryTest, RejectAnswers503WithRetryAfterAndCounts) {
  int port = FreePort();
  auto gw = StartGateway("  max_bytes: 2KiB\n  overflow:\n    http: reject\n",
                         "http://127.0.0.1:1", port);
  ASSERT_NE(gw, nullptr);
  std::string resp;
  int accepted = 0;
  for (int i = 0; i < 100; ++i) {
    resp = RawPost(port, "/v1/events", Event("d-" + std::to_string(i)));
    if (resp.rfind("HTTP/1.1 503", 0) == 0) {
      break;
    }
    ASSERT_EQ(resp.rfind("HTTP/1.1 202", 0), 0u) << resp;
    ++accepted;
  }
  ASSERT_EQ(resp.rfind("HTTP/1.1 503", 0), 0u) << resp;
  EXPECT_NE(resp.find("Retry-After: 1"), std::string::npos) << resp;
  EXPECT_NE(resp.find("buffer_full"), std::string::npos) << resp;
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(Metric(port, "sluice_gateway_dropped_total", "reason=\"buffer_full\",source=\"http\""),
            1.0);
  EXPECT_LE(Metric(port, "sluice_gateway_buffered_bytes"), 2048.0);
  EXPECT_EQ(Metric(port, "sluice_gateway_buffered_records"), accepted);
}

TEST_F(GatewayBufferBinaryTest, DropOldestKeepsAcceptingWithinMaxBytesAndCounts) {
  int port = FreePort();
  auto gw = StartGateway("  max_bytes: 2KiB\n  overflow:\n    http: drop_oldest\n",
                         "http://127.0.0.1:1", port);
  ASSERT_NE(gw, nullptr);
  for (int i = 0; i < 60; ++i) {
    std::string resp = RawPost(port, "/v1/events", Event("d-" + std::to_string(i)));
    ASSERT_EQ(resp.rfind("HTTP/1.1 202", 0), 0u) << resp;
  }
  double dropped =
      Metric(port, "sluice_gateway_dropped_total", "reason=\"drop_oldest\",source=\"buffer\"");
  double kept = Metric(port, "sluice_gateway_buffered_records");
  EXPECT_GT(dropped, 0.0);
  EXPECT_EQ(dropped + kept, 60.0);
  EXPECT_LE(Metric(port, "sluice_gateway_buffered_bytes"), 2048.0);
  ASSERT_EQ(WEXITSTATUS(gw->Stop(SIGTERM, 15000)), 0);
  std::string out;
  ASSERT_EQ(CheckBuffer(&out), 0) << out;
  EXPECT_NE(out.find("region eu-central: queued " + std::to_string(static_cast<int>(kept))),
            std::string::npos)
      << out;
}

TEST_F(GatewayBufferBinaryTest, TtlExpiresUndeliveredRecords) {
  int port = FreePort();
  auto gw = StartGateway("  ttl: 200ms\n", "http://127.0.0.1:1", port);
  ASSERT_NE(gw, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(RawPost(port, "/v1/events", Event("t-" + std::to_string(i))).rfind("HTTP/1.1 202", 0),
              0u);
  }
  EXPECT_TRUE(WaitFor(
      [&] {
        return Metric(port, "sluice_gateway_dropped_total",
                      "reason=\"ttl\",source=\"buffer\"") == 5.0;
      },
      15000));
  EXPECT_EQ(Metric(port, "sluice_gateway_buffered_records"), 0.0);
}

TEST_F(GatewayBufferBinaryTest, CorruptEntryIsQuarantinedAndTheRestDelivered) {
  int port = FreePort();
  int broker_port = FreePort();
  const std::string eu = "http://127.0.0.1:" + std::to_string(broker_port);
  {
    // The broker is not up yet: everything stays queued.
    auto gw = StartGateway("  sync: always\n", eu, port);
    ASSERT_NE(gw, nullptr);
    for (int i = 0; i < 10; ++i) {
      ASSERT_EQ(RawPost(port, "/v1/events", Event("cor-" + std::to_string(i)))
                    .rfind("HTTP/1.1 202", 0),
                0u);
    }
    std::string out;
    EXPECT_EQ(CheckBuffer(&out), 1) << out;  // locked by the running gateway
    ASSERT_EQ(WEXITSTATUS(gw->Stop(SIGTERM, 15000)), 0);
  }
  {
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(leveldb::Options(), dir_.Sub("data/buffer"), &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    ASSERT_TRUE(CorruptBufferedRecord(db.get(), "eu-central", 3));
  }
  std::string out;
  ASSERT_EQ(CheckBuffer(&out), 0) << out;
  EXPECT_NE(out.find("corrupt (quarantined at next start) q/eu-central/3"), std::string::npos)
      << out;
  EXPECT_NE(out.find("region eu-central: queued 9 records"), std::string::npos) << out;

  auto broker = StartBroker(broker_port);
  ASSERT_NE(broker, nullptr);
  auto gw = StartGateway("  sync: always\n", eu, port);
  ASSERT_NE(gw, nullptr);
  EXPECT_EQ(Metric(port, "sluice_gateway_quarantined_total"), 1.0);
  ASSERT_TRUE(WaitFor([&] { return Metric(port, "sluice_gateway_buffered_records") == 0.0; },
                      20000))
      << gw->ReadLog();
  std::string body;
  ASSERT_EQ(HttpGet(broker_port, "/v1/query?topic=sensors&limit=1000", &body), 200) << body;
  for (int i = 0; i < 10; ++i) {
    std::string dev = "\"device_id\":\"cor-" + std::to_string(i) + "\"";
    EXPECT_EQ(body.find(dev) != std::string::npos, i != 3) << i << " " << body;
  }
  ASSERT_EQ(WEXITSTATUS(gw->Stop(SIGTERM, 15000)), 0);
  ASSERT_EQ(CheckBuffer(&out), 0) << out;
  EXPECT_NE(out.find("quarantined x/eu-central/3: buffer entry CRC mismatch"), std::string::npos)
      << out;
  EXPECT_NE(out.find("region eu-central: queued 0 records"), std::string::npos) << out;
  // A buffer that cannot be opened: exit 1.
  std::string log = dir_.Sub("missing.log");
  EXPECT_EQ(RunCommand({BinPath("sluice-gateway"), "--config", dir_.Sub("gw.yaml"), "--set",
                        "gateway.data_dir=" + dir_.Sub("nowhere"), "--check-buffer"},
                       log, 20000),
            1)
      << ReadFileOrEmpty(log);
}

TEST_F(GatewayBufferBinaryTest, FullDiskAnswers503DiskFullThenRecoversAndDeliversAllOnce) {
  std::string why;
  auto disk = NearlyFullDisk(&why);  // another program's file leaves about 3 MiB
  if (disk == nullptr) {
    GTEST_SKIP() << why;
  }
  int port = FreePort();
  int broker_port = FreePort();
  const std::string eu = "http://127.0.0.1:" + std::to_string(broker_port);  // not up yet
  // The gateway keeps 2 MiB free.
  auto gw = StartGateway("  min_free_bytes: 2MiB\n  write_buffer_bytes: 256KiB\n", eu, port,
                         disk->Sub("data"));
  ASSERT_NE(gw, nullptr);
  std::string resp;
  int accepted = PostUntilRefused(port, "df-", &resp);
  ASSERT_EQ(resp.rfind("HTTP/1.1 503", 0), 0u) << resp;
  EXPECT_NE(resp.find("Retry-After: 1"), std::string::npos) << resp;
  EXPECT_NE(resp.find("\"error\":\"disk_full\""), std::string::npos) << resp;
  EXPECT_NE(resp.find("buffer.min_free_bytes is 2097152"), std::string::npos) << resp;
  EXPECT_GT(accepted, 1000);
  EXPECT_EQ(Metric(port, "sluice_gateway_dropped_total", "reason=\"disk_full\",source=\"http\""),
            1.0);
  EXPECT_EQ(Metric(port, "sluice_gateway_buffered_records"), accepted);
  const double free_bytes = Metric(port, "sluice_gateway_buffer_disk_free_bytes");
  EXPECT_GT(free_bytes, 0.0);
  EXPECT_LT(free_bytes, 3.0 * (1 << 20));  // what the floor kept, give or take a commit
  EXPECT_TRUE(gw->Running()) << gw->ReadLog();
  // LevelDB's background work may free a little (an old log): take the disk well below the
  // floor for /healthz to say so deterministically.
  ASSERT_TRUE(disk->Fill("other-app-2.log", disk->FreeBytes() - (int64_t{1} << 20)));
  std::string health;
  EXPECT_EQ(HttpGet(port, "/healthz", &health), 200);
  EXPECT_NE(health.find("\"status\":\"degraded\""), std::string::npos) << health;
  EXPECT_NE(health.find("\"reason\":\"disk_full\""), std::string::npos) << health;

  // Space comes back: accepted again by the same process.
  std::filesystem::remove(disk->Sub("other-app.log"));
  std::filesystem::remove(disk->Sub("other-app-2.log"));
  EXPECT_EQ(HttpGet(port, "/healthz", &health), 200);
  EXPECT_NE(health.find("\"status\":\"ok\""), std::string::npos) << health;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(RawPost(port, "/v1/events", Event("after-" + std::to_string(i))).rfind("HTTP/1.1 202", 0),
              0u);
  }
  accepted += 10;
  auto broker = StartBroker(broker_port);
  ASSERT_NE(broker, nullptr);
  ExpectAllDeliveredOnce(port, broker_port, accepted, *gw);
  EXPECT_EQ(WEXITSTATUS(gw->Stop(SIGTERM, 15000)), 0);
}

TEST_F(GatewayBufferBinaryTest, WriteErrorExits75AndARestartDeliversEverythingAcknowledged) {
  std::string why;
  auto disk = NearlyFullDisk(&why);  // another program's file leaves about 3 MiB
  if (disk == nullptr) {
    GTEST_SKIP() << why;
  }
  int port = FreePort();
  int broker_port = FreePort();
  const std::string eu = "http://127.0.0.1:" + std::to_string(broker_port);  // not up yet
  // No free-space floor: LevelDB itself meets ENOSPC.
  const std::string buffer = "  min_free_bytes: 0\n  write_buffer_bytes: 256KiB\n";
  auto gw = StartGateway(buffer, eu, port, disk->Sub("data"));
  ASSERT_NE(gw, nullptr);
  std::string resp;
  const int accepted = PostUntilRefused(port, "we-", &resp);
  ASSERT_EQ(resp.rfind("HTTP/1.1 503", 0), 0u) << resp;
  EXPECT_NE(resp.find("No space left on device"), std::string::npos) << resp;
  EXPECT_GT(accepted, 0);
  // Fail-stop: the gateway exits for its supervisor to restart it.
  EXPECT_EQ(gw->WaitExit(10000), 75) << gw->ReadLog();
  EXPECT_NE(gw->ReadLog().find("restart the gateway to recover it; exiting with code 75"),
            std::string::npos)
      << gw->ReadLog();

  std::filesystem::remove(disk->Sub("other-app.log"));
  auto broker = StartBroker(broker_port);
  ASSERT_NE(broker, nullptr);
  gw = StartGateway(buffer, eu, port, disk->Sub("data"));
  ASSERT_NE(gw, nullptr);
  ExpectAllDeliveredOnce(port, broker_port, accepted, *gw);
  EXPECT_EQ(WEXITSTATUS(gw->Stop(SIGTERM, 15000)), 0);
}

}  // namespace
}  // namespace sluice::testing
