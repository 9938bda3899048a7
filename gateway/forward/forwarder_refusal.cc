// Forwarder: what happens to the front batch of the window when the broker does not take it
// (retry with backoff, or dead-letter what it refuses for good). See forwarder.h.
#include <rapidjson/document.h>

#include "core/logging.h"
#include "gateway/forward/forwarder.h"

namespace sluice::gateway {
namespace {

constexpr const char* kLog = "forward";

RateLimitedLog& RefusalLog() {
  static RateLimitedLog log;
  return log;
}

// The broker's {"reason":..., "index":N} (index -1 when absent).
void ParseRefusal(const std::string& body, std::string* reason, int64_t* index) {
  *index = -1;
  *reason = body.substr(0, 200);
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());  // no recursion on input
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

bool IsPermanentRefusal(int http_status) {
  return http_status == 400 || http_status == 413 || http_status == 422 || http_status == 451;
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
  if (options_.health != nullptr &&
      (reason == "transport" || reason.rfind("status_5", 0) == 0)) {
    options_.health->MarkDown(options_.region, now_us);  // unreachable or unavailable
  }
  int64_t delay_ms = backoff_.NextDelayMs();
  next_attempt_us_ = now_us + delay_ms * 1000;
  next_probe_us_ = now_us + options_.probe_interval_ms * 1000;
  RefusalLog().Log(LogLevel::kWarn, kLog, "retry-" + options_.region.value(),
                   "region " + options_.region.value() + ": batch of " +
                       std::to_string(window_.front().records.size()) + " failed (" + reason +
                       "), retrying in " + std::to_string(delay_ms) + "ms");
  if (options_.probe_interval_ms > 0) {
    return {State::kRetry, std::min(next_attempt_us_, next_probe_us_)};
  }
  return {State::kRetry, next_attempt_us_};
}

Forwarder::StepResult Forwarder::Permanent(const UplinkResponse& resp, int64_t now_us) {
  Batch& head = window_.front();  // alone in the window (HandleFailure)
  std::string reason;
  int64_t index;
  ParseRefusal(resp.body, &reason, &index);
  CountFailure("status_" + std::to_string(resp.status));
  if (resp.status == 413 && head.records.size() > 1) {
    // Too large for the broker: halve the batch; the rest is re-read after it.
    size_t keep = head.records.size() / 2;
    head.next_cursor = head.records[keep].seq;
    read_cursor_ = head.next_cursor;
    head.records.resize(keep);
    Encode(head);
    UpdateInflightCount();
    return {State::kRetry, now_us};
  }
  std::vector<BufferedRecord> dead;
  if (index >= 0 && static_cast<size_t>(index) < head.records.size() && head.records.size() > 1) {
    dead.push_back(std::move(head.records[index]));
    head.records.erase(head.records.begin() + index);
  } else {
    dead = std::move(head.records);
    head.records.clear();
  }
  size_t fresh = 0;
  Status st = buffer_.DeadLetter(options_.region, dead, &fresh);
  if (!st.ok()) {
    // Cannot move them: keep the batch and retry later rather than lose it.
    if (head.records.empty()) {
      head.records = std::move(dead);
    } else {
      head.records.insert(head.records.begin() + index, std::move(dead.front()));
    }
    return Retry("dead_letter_write", now_us);
  }
  dead_lettered_ += fresh;  // not those dead-lettered once already, before a restart
  if (dead_metric_ != nullptr) {
    dead_metric_->Inc(fresh);
  }
  RefusalLog().Log(LogLevel::kError, kLog, "dead-" + options_.region.value(),
                   "region " + options_.region.value() + ": " + std::to_string(dead.size()) +
                       " record(s) from seq " + std::to_string(dead.front().seq) +
                       " dead-lettered after HTTP " + std::to_string(resp.status) + ": " +
                       reason);
  if (head.records.empty()) {
    cursor_ = head.next_cursor;
    window_.pop_front();
    backoff_.Reset();
  } else {
    Encode(head);  // re-send the rest at once
  }
  next_attempt_us_ = 0;
  UpdateInflightCount();
  return {State::kDeadLettered, 0};
}

}  // namespace sluice::gateway
