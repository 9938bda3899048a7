#include "firmware-sim/http_sender.h"

#include <chrono>

#include "core/backoff.h"

namespace sluice::sim {

HttpSender::HttpSender(const SimConfig& config, const std::vector<Device>& fleet, Ledger* ledger)
    : config_(config),
      fleet_(fleet),
      ledger_(ledger),
      site_down_(new std::atomic<bool>[config.sites.size()]),
      queue_(static_cast<size_t>(config.http_workers) * 16) {
  for (size_t i = 0; i < config.sites.size(); ++i) site_down_[i] = false;
  HttpClientOptions options;
  options.timeout_ms = config.http_timeout_ms;
  for (const SiteConfig& site : config.sites) {
    if (site.transport == Transport::kMqtt) {
      clients_.push_back(nullptr);
    } else {
      HttpClientOptions site_options = options;
      site_options.tls = site.http_tls;
      clients_.push_back(std::make_unique<HttpClient>(site.http_url, site_options));
    }
  }
}

HttpSender::~HttpSender() { Finish(); }

void HttpSender::Start() {
  for (int i = 0; i < config_.http_workers; ++i) {
    workers_.emplace_back([this, i] { Worker(i); });
  }
}

void HttpSender::Submit(int site, std::vector<Event> events) {
  Request batch;
  batch.site = site;
  for (Event& e : events) {
    if (fleet_[static_cast<size_t>(e.device)].http_single) {
      Request one;
      one.site = site;
      one.single = true;
      one.events.push_back(std::move(e));
      queue_.Push(std::move(one));
      continue;
    }
    batch.events.push_back(std::move(e));
    if (static_cast<int64_t>(batch.events.size()) >= config_.http_max_batch) {
      queue_.Push(std::move(batch));
      batch = Request();
      batch.site = site;
    }
  }
  if (!batch.events.empty()) queue_.Push(std::move(batch));
}

void HttpSender::Finish() {
  queue_.Close();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

void HttpSender::Worker(int index) {
  uint64_t seed = config_.seed * 1000003ULL + static_cast<uint64_t>(index);
  while (auto request = queue_.Pop()) {
    Send(*request, seed++);
  }
}

void HttpSender::Resolve(const Request& request, Outcome outcome) {
  for (const Event& e : request.events) ledger_->Resolve(e.device, e.seq, outcome);
}

void HttpSender::Send(Request& request, uint64_t seed) {
  const SiteConfig& site = config_.sites[static_cast<size_t>(request.site)];
  std::string body;
  for (const Event& e : request.events) {
    body += EventPayload(fleet_[static_cast<size_t>(e.device)], e, config_.payload_bytes);
    if (!request.single) body += '\n';
  }
  const std::string content_type = request.single ? "application/json" : "application/x-ndjson";
  HttpClient& client = *clients_[static_cast<size_t>(request.site)];
  Backoff backoff(config_.http_backoff_initial_ms, config_.http_backoff_max_ms, seed);
  std::atomic<bool>& down = site_down_[static_cast<size_t>(request.site)];
  const int attempts = down.load() ? 1 : config_.http_max_attempts;
  std::string last_error;
  bool transport_error = false;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) {
      retries_.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff.NextDelayMs()));
    }
    requests_.fetch_add(1);
    Result<HttpResponse> r = client.Send("POST", "/v1/events", body, content_type);
    transport_error = !r.ok();
    if (!r.ok()) {
      last_error = r.status().ToString();
      continue;  // transport error or timeout: retry
    }
    const int status = r->status;
    if (status == 202) {
      if (down.exchange(false)) LogInfo("sim", "site " + site.name + ": gateway reachable again");
      Resolve(request, Outcome::kDelivered);
      return;
    }
    last_error = "HTTP " + std::to_string(status) + " " + r->body.substr(0, 200);
    if (status == 429 || status >= 500) continue;
    break;  // any other answer is permanent: resending the same events cannot help
  }
  if (transport_error && !down.exchange(true)) {
    LogWarn("sim", "site " + site.name + ": gateway " + site.http_url +
                       " unreachable; one attempt per request until it answers");
  }
  Resolve(request, Outcome::kFailed);
  log_.Log(LogLevel::kWarn, "sim", "http-fail-" + site.name,
           "site " + site.name + ": " + std::to_string(request.events.size()) +
               " event(s) to " + site.http_url + "/v1/events failed: " + last_error);
}

}  // namespace sluice::sim
