#include "firmware-sim/simulator.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "core/logging.h"
#include "firmware-sim/fleet.h"
#include "firmware-sim/http_sender.h"
#include "firmware-sim/ledger.h"
#include "firmware-sim/mqtt_publisher.h"
#include "firmware-sim/scheduler.h"
#include "firmware-sim/work_queue.h"

namespace sluice::sim {
namespace {

constexpr int64_t kMqttDrainMs = 30000;

struct MqttWork {
  int site = 0;
  std::vector<Event> events;
};

}  // namespace

Result<RunReport> RunSimulation(const SimConfig& config, Clock& clock,
                                const std::atomic<bool>* stop) {
  const std::vector<Device> fleet = BuildFleet(config);
  Ledger ledger(fleet.size());
  const size_t n_sites = config.sites.size();
  std::vector<bool> site_mqtt(n_sites, false);
  std::vector<bool> site_http(n_sites, false);
  for (const Device& d : fleet) {
    (d.transport == DeviceTransport::kMqtt ? site_mqtt : site_http)[static_cast<size_t>(d.site)] =
        true;
  }

  // Connect every MQTT site before sending anything: a broker that is down fails the start.
  std::vector<std::unique_ptr<MqttPublisher>> publishers(n_sites);
  for (size_t s = 0; s < n_sites; ++s) {
    if (!site_mqtt[s]) continue;
    auto p = MqttPublisher::Connect(config, static_cast<int>(s), fleet, &ledger);
    if (!p.ok()) return p.status();
    publishers[s] = std::move(p.value());
  }
  std::unique_ptr<HttpSender> http;
  bool any_http = false;
  for (bool b : site_http) any_http = any_http || b;
  if (any_http) {
    http = std::make_unique<HttpSender>(config, fleet, &ledger);
    http->Start();
  }
  WorkQueue<MqttWork> mqtt_queue(64);
  std::thread mqtt_worker([&] {
    while (auto work = mqtt_queue.Pop()) {
      MqttPublisher* p = publishers[static_cast<size_t>(work->site)].get();
      for (const Event& e : work->events) p->Publish(e);
    }
    for (auto& p : publishers) {
      if (p) p->Drain(kMqttDrainMs);
    }
  });

  const int64_t started_ms = clock.NowMs();
  const int64_t start_us = clock.MonotonicUs();
  EventScheduler scheduler(config, fleet, started_ms);
  const int64_t tick_us = config.tick_ms * 1000;
  std::vector<Event> due;
  std::vector<std::vector<Event>> mqtt_by_site(n_sites);
  std::vector<std::vector<Event>> http_by_site(n_sites);
  LogInfo("sim", "running " + std::to_string(fleet.size()) + " devices over " +
                     std::to_string(n_sites) + " site(s) for " +
                     std::to_string(config.duration_ms) + " ms");
  while (!scheduler.Done()) {
    if (stop != nullptr && stop->load()) {
      LogInfo("sim", "stop requested: ending the schedule early");
      scheduler.Cancel();
      break;
    }
    const int64_t elapsed = clock.MonotonicUs() - start_us;
    due.clear();
    scheduler.TakeDue(elapsed, &due);
    for (Event& e : due) {
      const Device& d = fleet[static_cast<size_t>(e.device)];
      ledger.RecordSent(e.device, e.seq);
      auto& bucket = d.transport == DeviceTransport::kMqtt ? mqtt_by_site : http_by_site;
      bucket[static_cast<size_t>(d.site)].push_back(std::move(e));
    }
    for (size_t s = 0; s < n_sites; ++s) {
      if (!mqtt_by_site[s].empty()) {
        mqtt_queue.Push(MqttWork{static_cast<int>(s), std::move(mqtt_by_site[s])});
        mqtt_by_site[s].clear();
      }
      if (!http_by_site[s].empty()) {
        http->Submit(static_cast<int>(s), std::move(http_by_site[s]));
        http_by_site[s].clear();
      }
    }
    if (scheduler.Done()) break;
    // Sleep to the tick boundary at or after the next due event, so one tick's events of a
    // site travel together.
    const int64_t next = scheduler.NextDueUs();
    const int64_t wake = ((next + tick_us - 1) / tick_us) * tick_us;
    const int64_t now = clock.MonotonicUs() - start_us;
    if (wake > now) {
      // Sleep in slices so a stop request is noticed promptly.
      std::this_thread::sleep_for(std::chrono::microseconds(std::min<int64_t>(wake - now, 200000)));
    }
  }
  mqtt_queue.Close();
  if (http) http->Finish();
  mqtt_worker.join();
  publishers.clear();
  const int64_t finished_ms = clock.NowMs();

  RunReport report;
  report.elapsed_ms = (clock.MonotonicUs() - start_us) / 1000;
  report.manifest = BuildManifest(config, fleet, ledger, started_ms, finished_ms);
  if (http) {
    report.http_requests = http->requests();
    report.http_retries = http->retries();
  }
  if (!config.manifest.empty()) {
    SLUICE_RETURN_IF_ERROR(WriteFileAtomically(config.manifest, ManifestToJson(report.manifest)));
  }
  return report;
}

std::string FormatSummary(const RunReport& r) {
  const ManifestTotals& t = r.manifest.totals;
  const double secs = r.elapsed_ms > 0 ? static_cast<double>(r.elapsed_ms) / 1000.0 : 0.0;
  char rate[64];
  std::snprintf(rate, sizeof(rate), "%.1f", secs > 0 ? static_cast<double>(t.sent) / secs : 0.0);
  std::string out;
  out += "sluice-sim: " + std::to_string(r.manifest.devices.size()) + " devices, " +
         std::to_string(t.sent) + " events in " + std::to_string(r.elapsed_ms) + " ms (" + rate +
         " events/s)\n";
  out += "  mqtt: " + std::to_string(t.mqtt_sent) + " published, " +
         std::to_string(t.mqtt_errors) + " errors\n";
  out += "  http: " + std::to_string(t.http_sent) + " sent, " + std::to_string(t.http_acked) +
         " acked (202), " + std::to_string(t.http_failed) + " failed; " +
         std::to_string(r.http_requests) + " requests, " + std::to_string(r.http_retries) +
         " retries\n";
  return out;
}

}  // namespace sluice::sim
