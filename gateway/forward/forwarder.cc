#include "gateway/forward/forwarder.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::gateway {
namespace {

constexpr const char* kLog = "forward";
constexpr int64_t kErrorRetryUs = 1'000'000;

RateLimitedLog& ForwardLog() {
  static RateLimitedLog log;
  return log;
}

bool IsPermanent(int status) {
  return status == 400 || status == 413 || status == 422 || status == 451;
}

// The broker's {"reason":..., "index":N} (index -1 when absent).
void ParseRefusal(const std::string& body, std::string* reason, int64_t* index) {
  *index = -1;
  *reason = body.substr(0, 200);
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    return;
  }
  if (d.HasMember("reason") && d["reason"].IsString()) {
    *reason = d["reason"].GetString();
  }
  if (d.HasMember("error") && d["error"].IsString()) {
    *reason = std::string(d["error"].GetString()) + ": " + *reason;
  }
  if (d.HasMember("index") && d["index"].IsInt64()) {
    *index = d["index"].GetInt64();
  }
}

}  // namespace

int64_t ProducerIdFor(const GatewayId& gateway_id) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : gateway_id.value()) {
    h ^= c;
    h *= 1099511628211ull;
  }
  int64_t id = static_cast<int64_t>(h & static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  return id == 0 ? 1 : id;
}

Forwarder::Forwarder(EventBuffer& buffer, Uplink& uplink, Clock& clock, ForwarderOptions options,
                     MetricsRegistry* metrics)
    : buffer_(buffer), uplink_(uplink), clock_(clock), options_(std::move(options)),
      metrics_(metrics),
      backoff_(options_.backoff_initial_ms, options_.backoff_max_ms, options_.backoff_seed),
      producer_id_(ProducerIdFor(options_.gateway_id)), wake_(std::make_shared<Wake>()) {
  if (metrics_ != nullptr) {
    MetricLabels l{{"region", options_.region.value()}};
    forwarded_metric_ = &metrics_->GetCounter("sluice_gateway_forwarded_total",
                                              "Records acknowledged by the region's broker", l);
    dead_metric_ = &metrics_->GetCounter("sluice_gateway_dead_lettered_total",
                                         "Records refused permanently by the broker", l);
    probe_metric_ = &metrics_->GetCounter(
        "sluice_gateway_forward_probe_cuts_total",
        "Backoffs ended early because the broker's /healthz answered", l);
  }
  // The listener holds the shared wake state, so it stays valid after this forwarder is gone.
  std::shared_ptr<Wake> wake = wake_;
  buffer_.AddCommitListener([wake] {
    std::lock_guard<std::mutex> lock(wake->mu);
    wake->pending = true;
    wake->cv.notify_one();
  });
}

Forwarder::~Forwarder() { Stop(); }

void Forwarder::Notify() {
  std::lock_guard<std::mutex> lock(wake_->mu);
  wake_->pending = true;
  wake_->cv.notify_one();
}

void Forwarder::Start() {
  {
    std::lock_guard<std::mutex> lock(wake_->mu);
    wake_->stop = false;
    wake_->pending = true;
  }
  thread_ = std::thread([this] { Run(); });
}

void Forwarder::Stop() {
  {
    std::lock_guard<std::mutex> lock(wake_->mu);
    wake_->stop = true;
    wake_->cv.notify_all();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Forwarder::Run() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(wake_->mu);
      if (wake_->stop) {
        return;
      }
      wake_->pending = false;
    }
    StepResult r = Step();
    if (r.state == State::kSent || r.state == State::kDeadLettered) {
      continue;  // there may be more right away
    }
    std::unique_lock<std::mutex> lock(wake_->mu);
    auto pred = [&] { return wake_->stop || wake_->pending; };
    if (r.state == State::kIdle) {
      // A commit wakes us; the timeout only guards against a lost notification.
      wake_->cv.wait_for(lock, std::chrono::seconds(1), pred);
    } else {
      int64_t us = r.wait_until_us - clock_.MonotonicUs();
      if (us > 0) {
        if (r.state == State::kLinger) {
          wake_->cv.wait_for(lock, std::chrono::microseconds(us), pred);
        } else {
          // Backoff: commits must not shorten it; only stop does.
          wake_->cv.wait_for(lock, std::chrono::microseconds(us), [&] { return wake_->stop; });
        }
      }
    }
  }
}

Forwarder::StepResult Forwarder::Step() {
  int64_t now = clock_.MonotonicUs();
  if (inflight_.empty()) {
    Result<ReadBatchResult> rb = buffer_.ReadBatch(options_.region, cursor_.load(),
                                                   options_.batch_max_records,
                                                   options_.batch_max_bytes);
    if (!rb.ok()) {
      CountFailure("buffer_read");
      ForwardLog().Log(LogLevel::kError, kLog, "read-" + options_.region.value(),
                       "region " + options_.region.value() + ": " + rb.status().ToString());
      return {State::kError, now + kErrorRetryUs};
    }
    if (rb->records.empty()) {
      cursor_ = rb->next_cursor;  // past quarantined entries, if any
      first_seen_us_ = -1;
      return {State::kIdle, 0};
    }
    if (!rb->full && options_.linger_ms > 0) {
      if (first_seen_us_ < 0) {
        first_seen_us_ = now;
      }
      int64_t until = first_seen_us_ + options_.linger_ms * 1000;
      if (now < until) {
        return {State::kLinger, until};
      }
    }
    first_seen_us_ = -1;
    inflight_ = std::move(rb->records);
    inflight_next_cursor_ = rb->next_cursor;
    next_attempt_us_ = 0;
    Encode();
  }
  if (now < next_attempt_us_) {
    if (options_.probe_interval_ms <= 0) {
      return {State::kRetry, next_attempt_us_};
    }
    if (now < next_probe_us_) {
      return {State::kRetry, std::min(next_attempt_us_, next_probe_us_)};
    }
    next_probe_us_ = now + options_.probe_interval_ms * 1000;
    if (!uplink_.Probe().ok()) {
      return {State::kRetry, std::min(next_attempt_us_, next_probe_us_)};
    }
    // The broker answers again: end the backoff and send now.
    probe_cuts_ += 1;
    if (probe_metric_ != nullptr) {
      probe_metric_->Inc();
    }
    backoff_.Reset();
    next_attempt_us_ = 0;
  }
  Result<UplinkResponse> resp = uplink_.SendBatch(options_.topic, body_);
  if (!resp.ok()) {
    return Retry("transport", now);
  }
  if (resp->status >= 200 && resp->status < 300) {
    Status st = buffer_.Remove(options_.region, inflight_);
    if (!st.ok()) {
      // Forwarded anyway; after a restart they are sent again and the broker skips them
      // (idempotent producer: same producer id and gateway_seq).
      LogError(kLog, "region " + options_.region.value() + ": " + st.ToString());
    }
    forwarded_ += inflight_.size();
    if (forwarded_metric_ != nullptr) {
      forwarded_metric_->Inc(inflight_.size());
    }
    FinishBatch();
    return {State::kSent, 0};
  }
  if (IsPermanent(resp->status)) {
    return Permanent(*resp, now);
  }
  return Retry("status_" + std::to_string(resp->status), now);
}

void Forwarder::Encode() {
  RecordBatch b;
  b.producer_id = producer_id_;
  b.producer_epoch = 0;
  b.base_sequence = static_cast<int32_t>(inflight_.front().seq & 0x7fffffff);
  b.records.reserve(inflight_.size());
  for (const BufferedRecord& r : inflight_) {
    b.records.push_back(ToRecord(r.event));
  }
  body_ = EncodeBatch(b);
  inflight_count_ = inflight_.size();
}

void Forwarder::FinishBatch() {
  cursor_ = inflight_next_cursor_;
  inflight_.clear();
  body_.clear();
  inflight_count_ = 0;
  backoff_.Reset();
  next_attempt_us_ = 0;
}

void Forwarder::CountFailure(const std::string& reason) {
  failures_ += 1;
  if (metrics_ != nullptr) {
    metrics_
        ->GetCounter("sluice_gateway_forward_failures_total", "Failed forward attempts",
                     {{"region", options_.region.value()}, {"reason", reason}})
        .Inc();
  }
}

Forwarder::StepResult Forwarder::Retry(const std::string& reason, int64_t now_us) {
  CountFailure(reason);
  int64_t delay_ms = backoff_.NextDelayMs();
  next_attempt_us_ = now_us + delay_ms * 1000;
  next_probe_us_ = now_us + options_.probe_interval_ms * 1000;
  ForwardLog().Log(LogLevel::kWarn, kLog, "retry-" + options_.region.value(),
                   "region " + options_.region.value() + ": batch of " +
                       std::to_string(inflight_.size()) + " failed (" + reason +
                       "), retrying in " + std::to_string(delay_ms) + "ms");
  if (options_.probe_interval_ms > 0) {
    return {State::kRetry, std::min(next_attempt_us_, next_probe_us_)};
  }
  return {State::kRetry, next_attempt_us_};
}

Forwarder::StepResult Forwarder::Permanent(const UplinkResponse& resp, int64_t now_us) {
  std::string reason;
  int64_t index;
  ParseRefusal(resp.body, &reason, &index);
  CountFailure("status_" + std::to_string(resp.status));
  if (resp.status == 413 && inflight_.size() > 1) {
    // Too large for the broker: halve the batch; the rest is re-read after it.
    size_t keep = inflight_.size() / 2;
    inflight_next_cursor_ = inflight_[keep].seq;
    inflight_.resize(keep);
    Encode();
    return {State::kRetry, now_us};
  }
  std::vector<BufferedRecord> dead;
  if (index >= 0 && static_cast<size_t>(index) < inflight_.size() && inflight_.size() > 1) {
    dead.push_back(std::move(inflight_[index]));
    inflight_.erase(inflight_.begin() + index);
  } else {
    dead = std::move(inflight_);
    inflight_.clear();
  }
  Status st = buffer_.DeadLetter(options_.region, dead);
  if (!st.ok()) {
    // Cannot move them: keep the batch and retry later rather than lose it.
    if (inflight_.empty()) {
      inflight_ = std::move(dead);
    } else {
      inflight_.insert(inflight_.begin() + index, std::move(dead.front()));
    }
    return Retry("dead_letter_write", now_us);
  }
  dead_lettered_ += dead.size();
  if (dead_metric_ != nullptr) {
    dead_metric_->Inc(dead.size());
  }
  ForwardLog().Log(LogLevel::kError, kLog, "dead-" + options_.region.value(),
                   "region " + options_.region.value() + ": " + std::to_string(dead.size()) +
                       " record(s) from seq " + std::to_string(dead.front().seq) +
                       " dead-lettered after HTTP " + std::to_string(resp.status) + ": " + reason);
  if (inflight_.empty()) {
    FinishBatch();
  } else {
    Encode();  // re-send the rest at once
    next_attempt_us_ = 0;
  }
  return {State::kDeadLettered, 0};
}

}  // namespace sluice::gateway
