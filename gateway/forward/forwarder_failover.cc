// Forwarder's residency failover (policy `failover: next_allowed`): while its region is down,
// the records it never sent move to another region their country allows.
//
// Contract: only records after the window move. The window's batch was sent at least once and
// may be stored in this region already (an answer lost on the way looks like an outage), so it
// stays and is delivered here when the region returns: a record is never stored in two regions.
// A move is one synced buffer write (EventBuffer::Reroute), so a crash leaves every record in
// exactly one queue. Records whose country has no other region that is up stay and are looked
// at again when any region's health changes.
#include <future>
#include <map>

#include "core/logging.h"
#include "gateway/forward/forwarder.h"

namespace sluice::gateway {
namespace {

// Records looked at per step: a huge backlog moves over several steps, so the forwarder still
// probes its own region in between.
constexpr size_t kFailoverRecordsPerStep = 20000;

RateLimitedLog& FailoverLog() {
  static RateLimitedLog log;
  return log;
}

}  // namespace

void Forwarder::ReportUp() {
  if (options_.health != nullptr) {
    options_.health->MarkUp(options_.region);
  }
}

void Forwarder::Failover(int64_t now_us) {
  if (!options_.failover_target || options_.health == nullptr) {
    return;
  }
  const int64_t since = options_.health->DownSinceUs(options_.region);
  if (since < 0 || now_us - since < options_.failover_after_ms * 1000) {
    return;
  }
  const uint64_t epoch = options_.health->epoch();
  if (epoch != failover_epoch_) {
    failover_cursor_ = 0;  // a region came up or went down: what was kept may move now
    failover_epoch_ = epoch;
  }
  uint64_t cursor = window_.empty() ? cursor_.load() : window_.back().next_cursor;
  cursor = std::max(cursor, failover_cursor_);
  size_t looked = 0;
  while (looked < kFailoverRecordsPerStep) {
    Result<ReadBatchResult> rb = buffer_.ReadBatch(options_.region, cursor,
                                                   options_.batch_max_records,
                                                   options_.batch_max_bytes);
    if (!rb.ok() || rb->records.empty()) {
      if (rb.ok()) {
        cursor = rb->next_cursor;
      }
      break;
    }
    looked += rb->records.size();
    std::map<std::string, std::vector<BufferedRecord>> moves;  // target region -> records
    for (BufferedRecord& r : rb->records) {
      std::optional<RegionId> to = options_.failover_target(r.event.country);
      if (to.has_value() && *to != options_.region) {
        moves[to->value()].push_back(std::move(r));
      }
    }
    for (auto& [to, records] : moves) {
      const size_t n = records.size();
      std::promise<Status> promise;
      std::future<Status> done = promise.get_future();
      buffer_.Reroute(options_.region, std::move(records), RegionId(to),
                      [&promise](const Status& st, uint64_t) { promise.set_value(st); });
      const Status st = done.get();
      if (!st.ok()) {
        // Nothing moved (one write): they are met again at the next step.
        FailoverLog().Log(LogLevel::kError, "forward", "failover-" + options_.region.value(),
                          "region " + options_.region.value() + ": moving " +
                              std::to_string(n) + " records to " + to + " failed: " +
                              st.ToString());
        return;
      }
      failed_over_ += n;
      if (metrics_ != nullptr) {
        metrics_
            ->GetCounter("sluice_gateway_failover_moved_total",
                         "Records moved to another allowed region while theirs was down "
                         "(residency failover: next_allowed)",
                         {{"from", options_.region.value()}, {"to", to}})
            .Inc(n);
      }
      FailoverLog().Log(LogLevel::kWarn, "forward", "failover-" + options_.region.value(),
                        "region " + options_.region.value() + " down for " +
                            std::to_string((now_us - since) / 1000) + "ms: moved " +
                            std::to_string(n) + " records to " + to +
                            " (residency failover: next_allowed)");
    }
    cursor = rb->next_cursor;
  }
  failover_cursor_ = cursor;
}

}  // namespace sluice::gateway
