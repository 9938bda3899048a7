// MQTT ingest benchmark: a private Mosquitto fed by `mosquitto_pub -l` (200-byte QoS 0 messages
// from a file), delivering first to a plain Paho subscriber that only counts, then to the gateway
// (GatewayApp in this process, mqtt.qos 0, buffer.sync: always). Both rates are measured from the
// first to the last message seen (gateway: committed to LevelDB), in the same run; Mosquitto's
// $SYS/broker/publish/messages/dropped is read after each phase. Several rounds; the last row is
// the median of each.
#include <mqtt/async_client.h>

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
#include "core/logging.h"
#include "gateway/app/gateway_app.h"
#include "tests/common/test_env.h"

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Seen {
  std::atomic<int64_t> n{0};
  Clock::time_point first;
  Clock::time_point last;
};

// Polls `count` until it has not moved for 1.5 s; records when it first and last moved.
void Watch(const std::function<int64_t()>& count, Seen* s, int64_t expected) {
  int64_t prev = 0;
  auto idle_since = Clock::now();
  while (true) {
    int64_t c = count();
    auto now = Clock::now();
    if (c != prev) {
      if (prev == 0) {
        s->first = now;
      }
      s->last = now;
      prev = c;
      idle_since = now;
    }
    s->n = c;
    if (c >= expected || (c > 0 && now - idle_since > std::chrono::milliseconds(1500)) ||
        now - idle_since > std::chrono::seconds(20)) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

double RateOf(const Seen& s) {
  double secs = std::chrono::duration<double>(s.last - s.first).count();
  return secs > 0 ? static_cast<double>(s.n.load()) / secs : 0;
}

std::string Dropped(const testing::TempDir& dir, int port) {
  static int calls = 0;
  // $SYS is republished every second (sys_interval 1): wait for a value covering the phase.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  // Retained $SYS counters (refreshed every second), one read per topic: one read of the
  // wildcard could return one counter twice (an update racing the retained copies).
  std::string out;
  for (const char* name : {"received", "sent", "dropped"}) {
    std::string log = dir.Sub("sys-" + std::to_string(++calls) + ".log");
    testing::RunCommand({"mosquitto_sub", "-p", std::to_string(port), "-t",
                         std::string("$SYS/broker/publish/messages/") + name, "-C", "1", "-W",
                         "5"},
                        log, 10000);
    std::string v = testing::ReadFileOrEmpty(log);
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) {
      v.pop_back();
    }
    out += std::string(out.empty() ? "" : ", ") + name + " " + (v.empty() ? "?" : v);
  }
  return out;
}

// `publishers` mosquitto_pub processes at once, each sending the whole file (one publisher is
// the bottleneck on this VM: ~40-50 k msg/s).
int Publish(const testing::TempDir& dir, int port, const std::string& file, int publishers) {
  std::string cmd;
  for (int i = 0; i < publishers; ++i) {
    cmd += "mosquitto_pub -p " + std::to_string(port) + " -t sensors/dev-" + std::to_string(i) +
           "/temp -q 0 -l < " + file + " & ";
  }
  cmd += "wait";
  return testing::RunCommand({"/bin/sh", "-c", cmd}, dir.Sub("pub.log"), 300000);
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice;
  using namespace sluice::bench;
  SetLogLevel(LogLevel::kWarn);
  // Usage: sluice-bench-gateway-mqtt [messages per publisher] [rounds] [publishers].
  // Each round runs the plain subscriber, then the gateway, on the same published file; several
  // rounds and a longer burst keep one scheduler hiccup in a short phase from deciding the ratio.
  const int64_t kMessages = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const int kRounds = argc > 2 ? std::atoi(argv[2]) : 3;
  const int kPublishers = argc > 3 ? std::atoi(argv[3]) : 1;
  testing::TempDir dir;
  auto mosq = testing::Mosquitto::Start(dir);
  if (!mosq) {
    std::fprintf(stderr, "cannot start mosquitto\n");
    return 1;
  }
  std::string file = dir.Sub("messages.txt");
  {
    std::string line = "{\"v\":21.5,\"pad\":\"" + std::string(200 - 19, 'x') + "\"}\n";
    std::string all;
    all.reserve(line.size() * static_cast<size_t>(kMessages));
    for (int64_t i = 0; i < kMessages; ++i) {
      all += line;
    }
    testing::WriteFile(file, all);
  }
  std::vector<double> plain_rates;
  std::vector<double> gw_rates;
  for (int round = 0; round < kRounds; ++round) {
    // Phase 1: a plain Paho subscriber that only counts.
    Seen plain;
    std::string dropped_plain;
    double pub_secs = 0;  // mosquitto_pub's run time in the plain phase
    {
      std::atomic<int64_t> count{0};
      mqtt::async_client c(mosq->uri(), "bench-plain",
                           static_cast<mqtt::iclient_persistence*>(nullptr));
      c.set_message_callback([&](mqtt::const_message_ptr) { ++count; });
      c.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
      c.subscribe("sensors/+/+", 0)->wait();
      // Watched while publishing: what arrives during the publish counts from its real time.
      std::thread pub([&] {
        auto t0 = std::chrono::steady_clock::now();
        Publish(dir, mosq->port(), file, kPublishers);
        pub_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      });
      Watch([&] { return count.load(); }, &plain, kMessages * kPublishers);
      pub.join();
      dropped_plain = Dropped(dir, mosq->port());
      c.disconnect()->wait();
    }
    // Phase 2: the gateway.
    Seen gw;
    std::string dropped_gw;
    std::string gw_drops;
    {
      gateway::GatewayConfig cfg = OfflineGatewayConfig(dir.Sub("gw-" + std::to_string(round)));
      cfg.http_enabled = false;
      cfg.mqtt_uri = mosq->uri();
      cfg.mqtt_client_id = "bench-gw";
      cfg.mqtt_qos = 0;
      gateway::GatewayApp app(cfg);
      if (!app.Start().ok()) {
        std::fprintf(stderr, "gateway start failed\n");
        return 1;
      }
      testing::WaitFor([&] { return app.mqtt()->subscribed(); }, 10000);
      std::thread pub([&] { Publish(dir, mosq->port(), file, kPublishers); });
      Watch([&] { return static_cast<int64_t>(app.buffer()->next_seq()); }, &gw,
            kMessages * kPublishers);
      pub.join();
      dropped_gw = Dropped(dir, mosq->port());
      double backlog = testing::MetricSum(app.metrics().RenderPrometheus(),
                                          "sluice_gateway_dropped_total");
      gw_drops = std::to_string(static_cast<int64_t>(backlog));
    }
    std::filesystem::remove_all(dir.Sub("gw-" + std::to_string(round)));
    plain_rates.push_back(RateOf(plain));
    gw_rates.push_back(RateOf(gw));
    Row("mqtt: gateway durable (QoS 0, sync: always), round " + std::to_string(round + 1),
        RateOf(gw), "msg/s", "plain Paho subscriber", RateOf(plain));
    const int64_t total = kMessages * kPublishers;
    std::printf("  %d mosquitto_pub published %lld messages in %.2f s (%.0f msg/s)\n", kPublishers,
                static_cast<long long>(total), pub_secs,
                pub_secs > 0 ? static_cast<double>(total) / pub_secs : 0.0);
    std::printf("  messages published %lld; plain subscriber got %lld, gateway committed %lld "
                "(gateway drops %s)\n  mosquitto $SYS after plain phase (cumulative): %s\n  "
                "mosquitto $SYS after gateway phase (cumulative): %s\n",
                static_cast<long long>(total), static_cast<long long>(plain.n.load()),
                static_cast<long long>(gw.n.load()), gw_drops.c_str(), dropped_plain.c_str(),
                dropped_gw.c_str());
  }
  std::sort(plain_rates.begin(), plain_rates.end());
  std::sort(gw_rates.begin(), gw_rates.end());
  Row("mqtt: gateway durable, median of " + std::to_string(kRounds) + " rounds",
      gw_rates[gw_rates.size() / 2], "msg/s", "plain subscriber, median",
      plain_rates[plain_rates.size() / 2]);
  return 0;
}
