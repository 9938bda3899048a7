#include "gateway/forward/forwarder.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "core/logging.h"
#include "core/record_batch.h"
#include "core/thread_name.h"

namespace sluice::gateway {
namespace {

constexpr const char* kLog = "forward";
constexpr int64_t kErrorRetryUs = 1'000'000;

RateLimitedLog& ForwardLog() {
  static RateLimitedLog log;
  return log;
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
      producer_id_(ProducerIdFor(options_.gateway_id)), wake_(std::make_shared<Wake>()),
      window_limit_(std::max<size_t>(1, options_.max_in_flight)) {
  if (metrics_ != nullptr) {
    MetricLabels l{{"region", options_.region.value()}};
    forwarded_metric_ = &metrics_->GetCounter("sluice_gateway_forwarded_total",
                                              "Records acknowledged by the region's broker", l);
    dead_metric_ = &metrics_->GetCounter("sluice_gateway_dead_lettered_total",
                                         "Records refused permanently by the broker", l);
    probe_metric_ = &metrics_->GetCounter(
        "sluice_gateway_forward_probe_cuts_total",
        "Backoffs ended early because the broker's /healthz answered", l);
    window_metric_ = &metrics_->GetGauge(
        "sluice_gateway_forward_window",
        "Batches the forwarder may have in flight now (AIMD, up to forward.max_in_flight)", l);
    window_metric_->Set(static_cast<int64_t>(window_limit_.load()));
  }
  // The listener holds the shared wake state, so it stays valid after this forwarder is gone.
  std::shared_ptr<Wake> wake = wake_;
  buffer_.AddCommitListener(options_.region, [wake] {
    if (!wake->wants_commits.load(std::memory_order_relaxed)) {
      return;
    }
    std::lock_guard<std::mutex> lock(wake->mu);
    wake->pending = true;
    wake->commit_wakeups.fetch_add(1, std::memory_order_relaxed);
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
  thread_ = std::thread([this] {
    SetCurrentThreadName("fwd-" + options_.region.value());
    Run();
  });
}

void Forwarder::RequestStop() {
  std::lock_guard<std::mutex> lock(wake_->mu);
  wake_->stop = true;
  wake_->cv.notify_all();
}

void Forwarder::Stop() {
  RequestStop();
  if (thread_.joinable()) {
    thread_.join();
  }
  // Answers still on their way: wait for them (the uplink's request timeout bounds this), so no
  // send outlives the uplink it runs on. Their records stay buffered; the broker skips what it
  // already has when they are sent again.
  std::unique_lock<std::mutex> lock(wake_->mu);
  wake_->cv.wait_for(lock, std::chrono::seconds(60), [&] { return wake_->outstanding == 0; });
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
    if (r.state == State::kIdle || (r.state == State::kInFlight && r.wait_until_us == 0)) {
      // A commit or an answer wakes us; the timeout only guards against a lost notification.
      idle_waits_.fetch_add(1);
      wake_->cv.wait_for(lock, std::chrono::milliseconds(options_.idle_poll_ms), pred);
    } else if (r.state == State::kInFlight) {
      int64_t us = r.wait_until_us - clock_.MonotonicUs();
      if (us > 0) {
        wake_->cv.wait_for(lock, std::chrono::microseconds(us), pred);
      }
    } else {
      int64_t us = r.wait_until_us - clock_.MonotonicUs();
      if (us > 0) {
        if (r.state == State::kLinger) {
          wake_->cv.wait_for(lock, std::chrono::microseconds(us), pred);
        } else {
          // Backoff: commits must not shorten it (nor wake the thread); only stop does.
          wake_->wants_commits = false;
          wake_->cv.wait_for(lock, std::chrono::microseconds(us), [&] { return wake_->stop; });
          wake_->wants_commits = true;  // the next round looks at the buffer anyway
        }
      }
    }
  }
}

Forwarder::StepResult Forwarder::Step() {
  const int64_t now = clock_.MonotonicUs();
  size_t acked = Harvest();
  if (AnyPhase(Phase::kFailed)) {
    if (AnyPhase(Phase::kSending)) {
      return {State::kInFlight, 0};  // settle the window first
    }
    std::optional<StepResult> r = HandleFailure(now);
    if (r.has_value()) {
      return *r;
    }
  }
  if (!window_.empty() && window_.front().phase == Phase::kReady && now < next_attempt_us_) {
    // Backing off: only the front batch is in the window.
    Failover(now);
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
    ReportUp();
    backoff_.Reset();
    next_attempt_us_ = 0;
  }
  int64_t linger_until = 0;
  std::optional<StepResult> fill = Fill(now, &linger_until);
  if (fill.has_value()) {
    return *fill;
  }
  SendReady();
  acked += Harvest();  // an uplink that answers synchronously has answered already
  if (AnyPhase(Phase::kFailed) && !AnyPhase(Phase::kSending)) {
    std::optional<StepResult> r = HandleFailure(now);
    if (r.has_value()) {
      return *r;
    }
    return {State::kRetry, now};  // re-send at once, in the next step
  }
  if (acked > 0) {
    return {State::kSent, 0};
  }
  if (AnyPhase(Phase::kSending)) {
    return {State::kInFlight, linger_until};
  }
  if (linger_until > 0) {
    return {State::kLinger, linger_until};
  }
  return {State::kIdle, 0};
}

size_t Forwarder::Harvest() {
  std::map<uint64_t, Result<UplinkResponse>> answers;
  {
    std::lock_guard<std::mutex> lock(wake_->mu);
    answers.swap(wake_->answers);
  }
  size_t acked = 0;
  for (Batch& b : window_) {
    auto it = answers.find(b.id);
    if (b.phase != Phase::kSending || it == answers.end()) {
      continue;
    }
    const Result<UplinkResponse>& r = it->second;
    if (!r.ok() || r->status < 200 || r->status >= 300) {
      b.phase = Phase::kFailed;
      b.answer = std::move(it->second);
      continue;
    }
    Status st = buffer_.Remove(options_.region, b.records);
    if (!st.ok()) {
      // Forwarded anyway; after a restart they are sent again and the broker skips them
      // (idempotent producer: same producer id and gateway_seq).
      LogError(kLog, "region " + options_.region.value() + ": " + st.ToString());
    }
    forwarded_ += b.records.size();
    if (forwarded_metric_ != nullptr) {
      forwarded_metric_->Inc(b.records.size());
    }
    acked += b.records.size();
    b.phase = Phase::kAcked;
    GrowWindow();
    b.records.clear();
    b.body.clear();
  }
  while (!window_.empty() && window_.front().phase == Phase::kAcked) {
    cursor_ = window_.front().next_cursor;
    window_.pop_front();
  }
  if (acked > 0) {
    ReportUp();
  }
  if (window_.empty() && acked > 0) {
    backoff_.Reset();
    next_attempt_us_ = 0;
  }
  UpdateInflightCount();
  return acked;
}

std::optional<Forwarder::StepResult> Forwarder::HandleFailure(int64_t now_us) {
  // Everything after the front is dropped: what it did not deliver stays in the buffer and is
  // read again once the front is through (what it did deliver is removed already).
  while (window_.size() > 1) {
    window_.pop_back();
  }
  Batch& head = window_.front();
  read_cursor_ = head.next_cursor;
  Result<UplinkResponse> answer = std::move(*head.answer);
  head.answer.reset();
  head.phase = Phase::kReady;
  UpdateInflightCount();
  if (!answer.ok()) {
    SetWindow(1);  // one batch at a time until the broker answers again
    return Retry("transport", now_us);
  }
  if (answer->status == 409) {
    // The broker had no room to hold this batch until the one before it was stored (its waiting
    // slots were taken, e.g. by other gateways' batches): send fewer at once for a while.
    SetWindow(std::max<size_t>(1, window_limit_.load() / 2));
    // Out of order: the batch it followed failed. Alone in the window now, it follows nothing
    // unacknowledged, so the broker takes it.
    CountFailure("out_of_order");
    next_attempt_us_ = 0;
    return std::nullopt;
  }
  if (IsPermanentRefusal(answer->status)) {
    return Permanent(*answer, now_us);
  }
  SetWindow(1);
  return Retry("status_" + std::to_string(answer->status), now_us);
}

void Forwarder::SetWindow(size_t n) {
  window_limit_ = n;
  if (window_metric_ != nullptr) {
    window_metric_->Set(static_cast<int64_t>(n));
  }
}

void Forwarder::GrowWindow() {
  // Additive increase: one more batch in flight after a window's worth of acknowledgements.
  if (window_limit_ >= std::max<size_t>(1, options_.max_in_flight)) {
    return;
  }
  if (++acks_since_growth_ >= window_limit_.load()) {
    SetWindow(window_limit_.load() + 1);
    acks_since_growth_ = 0;
  }
}

std::optional<Forwarder::StepResult> Forwarder::Fill(int64_t now_us, int64_t* linger_until_us) {
  if (!window_.empty() && window_.front().phase == Phase::kReady && now_us < next_attempt_us_) {
    return std::nullopt;
  }
  if (window_.empty()) {
    read_cursor_ = cursor_.load();
  }
  while (window_.size() < window_limit_.load()) {
    Result<ReadBatchResult> rb = buffer_.ReadBatch(options_.region, read_cursor_,
                                                   options_.batch_max_records,
                                                   options_.batch_max_bytes);
    if (!rb.ok()) {
      CountFailure("buffer_read");
      ForwardLog().Log(LogLevel::kError, kLog, "read-" + options_.region.value(),
                       "region " + options_.region.value() + ": " + rb.status().ToString());
      if (window_.empty()) {
        return StepResult{State::kError, now_us + kErrorRetryUs};
      }
      return std::nullopt;
    }
    if (rb->records.empty()) {
      read_cursor_ = rb->next_cursor;  // past quarantined entries, if any
      if (window_.empty()) {
        cursor_ = read_cursor_;
      }
      first_seen_us_ = -1;
      return std::nullopt;
    }
    if (!rb->full && options_.linger_ms > 0) {
      if (first_seen_us_ < 0) {
        first_seen_us_ = now_us;
      }
      const int64_t until = first_seen_us_ + options_.linger_ms * 1000;
      if (now_us < until) {
        *linger_until_us = until;
        return std::nullopt;
      }
    }
    first_seen_us_ = -1;
    Batch b;
    b.id = next_batch_id_++;
    b.records = std::move(rb->records);
    b.next_cursor = rb->next_cursor;
    read_cursor_ = rb->next_cursor;
    Encode(b);
    window_.push_back(std::move(b));
  }
  UpdateInflightCount();
  return std::nullopt;
}

void Forwarder::SendReady() {
  size_t sending = 0;
  for (const Batch& b : window_) {
    sending += b.phase == Phase::kSending ? 1 : 0;
  }
  for (size_t i = 0; i < window_.size(); ++i) {
    Batch& b = window_[i];
    if (b.phase != Phase::kReady) {
      continue;
    }
    if (sending >= window_limit_.load()) {
      return;
    }
    int64_t after_seq = -1;
    if (i > 0 && window_[i - 1].phase != Phase::kAcked) {
      after_seq = static_cast<int64_t>(window_[i - 1].records.back().seq);
    }
    b.phase = Phase::kSending;
    ++sending;
    {
      std::lock_guard<std::mutex> lock(wake_->mu);
      wake_->outstanding += 1;
    }
    std::shared_ptr<Wake> wake = wake_;
    const uint64_t id = b.id;
    uplink_.SendBatchAsync(options_.topic, b.body, after_seq,
                           [wake, id](Result<UplinkResponse> r) {
                             std::lock_guard<std::mutex> lock(wake->mu);
                             wake->answers.emplace(id, std::move(r));
                             wake->outstanding -= 1;
                             wake->pending = true;
                             wake->cv.notify_all();
                           });
  }
}

bool Forwarder::AnyPhase(Phase p) const {
  for (const Batch& b : window_) {
    if (b.phase == p) {
      return true;
    }
  }
  return false;
}

void Forwarder::UpdateInflightCount() {
  size_t n = 0;
  for (const Batch& b : window_) {
    n += b.records.size();
  }
  inflight_count_ = n;
}

void Forwarder::Encode(Batch& b) {
  RecordBatch fields;
  fields.producer_id = producer_id_;
  fields.producer_epoch = 0;
  fields.base_sequence = static_cast<int32_t>(b.records.front().seq & 0x7fffffff);
  // Views into the buffered events: no per-record copies (a third of the forwarder's CPU went
  // to building Record objects only to encode them; docs/BENCHMARKS.md, "Drain").
  std::vector<EventRecordScratch> scratch(b.records.size());
  std::vector<RecordView> views(b.records.size());
  for (size_t i = 0; i < b.records.size(); ++i) {
    views[i] = ViewEventRecord(b.records[i].event, scratch[i]);
  }
  b.body = EncodeBatch(fields, views);
}

}  // namespace sluice::gateway
