// HttpSender: posts simulated events to each site's gateway (POST /v1/events, docs/API.md) from
// a small pool of worker threads shared by all sites. A tick's events of "batch" devices of one
// site go in one NDJSON request (at most http_max_batch events); each event of a "single"
// device goes alone as a JSON object, so the gateway sees both shapes. A 202 marks every event
// of the request delivered in the Ledger; 429/5xx and transport errors are retried with
// backoff up to http_max_attempts; any other answer, or running out of attempts, marks them
// failed (logged, rate-limited). A site whose gateway cannot be reached at all (a request ran out
// of attempts on transport errors) is marked down: its requests then get one attempt each until
// one succeeds, so a dead gateway costs one round trip per request instead of the whole backoff.
// Thread-safety: Submit is called from one thread (the scheduler); Finish once, after it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/http.h"
#include "core/logging.h"
#include "firmware-sim/fleet.h"
#include "firmware-sim/ledger.h"
#include "firmware-sim/sim_config.h"
#include "firmware-sim/work_queue.h"

namespace sluice::sim {

class HttpSender {
 public:
  HttpSender(const SimConfig& config, const std::vector<Device>& fleet, Ledger* ledger);
  ~HttpSender();
  HttpSender(const HttpSender&) = delete;
  HttpSender& operator=(const HttpSender&) = delete;

  void Start();
  // Queues requests for `events` (all of site `site`, all HTTP devices); blocks while the
  // workers are behind.
  void Submit(int site, std::vector<Event> events);
  // Sends everything queued, then stops the workers.
  void Finish();

  uint64_t requests() const { return requests_.load(); }
  uint64_t retries() const { return retries_.load(); }

 private:
  struct Request {
    int site = 0;
    std::vector<Event> events;
    bool single = false;
  };
  void Worker(int index);
  void Send(Request& request, uint64_t seed);
  void Resolve(const Request& request, Outcome outcome);

  const SimConfig& config_;
  const std::vector<Device>& fleet_;
  Ledger* ledger_;
  std::vector<std::unique_ptr<HttpClient>> clients_;  // per site; null for sites without HTTP
  std::unique_ptr<std::atomic<bool>[]> site_down_;     // per site
  WorkQueue<Request> queue_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> retries_{0};
  RateLimitedLog log_;
};

}  // namespace sluice::sim
