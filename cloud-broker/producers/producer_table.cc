#include "cloud-broker/producers/producer_table.h"

#include <charconv>
#include <chrono>
#include <condition_variable>

#include "cloud-broker/producers/producer_entry.h"

namespace sluice::broker {

int64_t GatewaySeqOf(const Record& record) {
  const std::string* s = record.FindHeader(kHeaderGatewaySeq);
  if (s == nullptr || s->empty()) {
    return -1;
  }
  int64_t v = -1;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || ptr != s->data() + s->size() || v < 0) {
    return -1;
  }
  return v;
}

PartitionProducerState& ProducerTable::Guard::State(const std::string& topic,
                                                    int32_t partition) {
  return entry_->partitions[{topic, partition}];
}

void ProducerTable::Guard::Appended(const std::string& topic, int32_t partition,
                                    const AppendedRange& r) {
  PartitionProducerState& st = State(topic, partition);
  if (r.last_seq > st.last_seq) {
    st.last_seq = r.last_seq;
  }
  st.recent.push_back(r);
  while (st.recent.size() > kRecentBatches) {
    st.recent.pop_front();
  }
}

const AppendedRange* ProducerTable::Guard::FindExact(const std::string& topic, int32_t partition,
                                                     int64_t first_seq, int64_t last_seq) {
  PartitionProducerState& st = State(topic, partition);
  for (const AppendedRange& r : st.recent) {
    if (r.first_seq == first_seq && r.last_seq == last_seq) {
      return &r;
    }
  }
  return nullptr;
}

int64_t ProducerTable::Guard::AckedThrough(const std::string& topic) {
  auto it = entry_->acked_through.find(topic);
  return it == entry_->acked_through.end() ? -1 : it->second;
}

void ProducerTable::Guard::MarkAcked(const std::string& topic, int64_t last_seq) {
  int64_t& mark = entry_->acked_through.try_emplace(topic, -1).first->second;
  if (last_seq > mark) {
    mark = last_seq;
  }
  entry_->changed.notify_all();
}

void ProducerTable::Guard::MarkFailed() {
  entry_->failures += 1;
  entry_->changed.notify_all();
}

bool ProducerTable::Guard::WaitForAcked(const std::string& topic, int64_t after_seq,
                                        int64_t timeout_ms) {
  if (AckedThrough(topic) >= after_seq) {
    return true;
  }
  if (table_->waiters_.fetch_add(1) >= table_->max_waiters_) {
    table_->waiters_ -= 1;  // every waiting slot taken: refuse rather than hold another thread
    return false;
  }
  table_->pipeline_waits_ += 1;
  if (table_->pipeline_waits_metric_ != nullptr) {
    table_->pipeline_waits_metric_->Inc();
  }
  const uint64_t failures = entry_->failures;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  entry_->running -= 1;  // waiting, not running: others waiting on this one must not wait for it
  auto self = entry_->waiting.emplace(topic, after_seq);
  // Another request can still store what this one waits for if it is running, or if it is a
  // waiter whose own wait is over (woken, not yet holding the lock again).
  auto someone_can_progress = [&] {
    if (entry_->running.load() > 0) {
      return true;
    }
    for (const auto& [t, after] : entry_->waiting) {
      if (AckedThrough(t) >= after) {
        return true;
      }
    }
    return false;
  };
  // With nobody able to progress, the batch this one follows may still be on its way (it was
  // sent first, but on another connection): wait a short grace for it to arrive, not the whole
  // timeout. Running requests end without the producer lock (so their answer is never delayed
  // by another request's append); their notification can be missed, so this also polls.
  constexpr auto kArrivalGrace = std::chrono::milliseconds(100);
  auto idle_since = std::chrono::steady_clock::time_point::max();
  while (AckedThrough(topic) < after_seq && entry_->failures == failures) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      break;
    }
    if (someone_can_progress()) {
      idle_since = std::chrono::steady_clock::time_point::max();
    } else if (idle_since == std::chrono::steady_clock::time_point::max()) {
      idle_since = now;
    } else if (now - idle_since >= kArrivalGrace) {
      break;
    }
    entry_->changed.wait_for(lock_, std::chrono::milliseconds(10));
  }
  entry_->waiting.erase(self);
  entry_->running += 1;
  table_->waiters_ -= 1;
  return AckedThrough(topic) >= after_seq;
}

ProducerTable::ProducerTable(size_t max_producers, MetricsRegistry* metrics, int max_waiters)
    : max_producers_(max_producers < 1 ? 1 : max_producers),
      max_waiters_(max_waiters < 1 ? 1 : max_waiters) {
  if (metrics != nullptr) {
    evictions_metric_ = &metrics->GetCounter(
        "sluice_broker_producer_evictions_total",
        "Idempotent producers whose state was evicted (producers.max_ids reached)");
    duplicates_metric_ = &metrics->GetCounter(
        "sluice_broker_duplicates_total",
        "Records of retried produce requests skipped because they were already stored");
    pipeline_waits_metric_ = &metrics->GetCounter(
        "sluice_broker_pipeline_waits_total",
        "Pipelined produce requests that waited for the batch they follow (Sluice-After-Seq)");
    size_metric_ = &metrics->GetGauge("sluice_broker_producers",
                                      "Idempotent producers whose state the broker holds");
  }
}

ProducerTable::~ProducerTable() = default;

std::shared_ptr<ProducerTable::Entry> ProducerTable::EntryFor(int64_t producer_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(producer_id);
  if (it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  lru_.push_front(producer_id);
  auto entry = std::make_shared<Entry>();
  entries_.emplace(producer_id, std::make_pair(entry, lru_.begin()));
  while (entries_.size() > max_producers_) {
    int64_t victim = lru_.back();
    lru_.pop_back();
    entries_.erase(victim);
    evictions_ += 1;
    if (evictions_metric_ != nullptr) {
      evictions_metric_->Inc();
    }
  }
  if (size_metric_ != nullptr) {
    size_metric_->Set(static_cast<int64_t>(entries_.size()));
  }
  return entry;
}

ProducerTable::Guard ProducerTable::Lock(int64_t producer_id) {
  Guard g;
  g.table_ = this;
  g.entry_ = EntryFor(producer_id);
  g.lock_ = std::unique_lock<std::mutex>(g.entry_->mu);
  return g;
}

ProducerTable::Running ProducerTable::Enter(int64_t producer_id) {
  Running r;
  r.entry_ = EntryFor(producer_id);
  r.entry_->running += 1;
  return r;
}

int ProducerTable::running(int64_t producer_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(producer_id);
  return it == entries_.end() ? 0 : it->second.first->running.load();
}

ProducerTable::Running::~Running() {
  if (entry_ != nullptr) {
    entry_->running -= 1;
    entry_->changed.notify_all();
  }
}

void ProducerTable::CountDuplicates(uint64_t n) {
  duplicates_ += n;
  if (duplicates_metric_ != nullptr) {
    duplicates_metric_->Inc(n);
  }
}

size_t ProducerTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace sluice::broker
