#include "cloud-broker/log/partition_log.h"

#include <algorithm>
#include <atomic>
#include <mutex>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/fs_util.h"
#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "log";
std::atomic<uint64_t> g_corrupt_batches{0};
}  // namespace

PartitionLog::PartitionLog(std::string dir, LogOptions options)
    : dir_(std::move(dir)),
      options_(std::move(options)),
      epochs_(dir_ + "/" + LeaderEpochCache::kFileName, options_.file_ops) {
  files_.ops = options_.file_ops;
  files_.cache = options_.file_cache != nullptr ? options_.file_cache : &FileCache::Default();
  sync_sink_->log = this;
  files_.on_close_sync_failure = [sink = sync_sink_](const Status& st) {
    std::lock_guard<std::mutex> lock(sink->mu);
    if (sink->log != nullptr) {
      sink->log->RecordSyncFailure(st);
    }
  };
}

void PartitionLog::RecordSyncFailure(const Status& st) {
  std::lock_guard<std::mutex> fl(flush_mu_);
  if (sync_failure_.empty()) {
    sync_failure_ = st.message();
    LogError(kComponent, "partition " + dir_ + ": fsync failed (" + st.message() +
                             "): no more appends until the broker restarts and recovers it");
  }
  sync_failed_ = true;
  flush_cv_.notify_all();
}

PartitionLog::~PartitionLog() {
  // A clean close leaves the active segment's indexes matching its log (no rebuild on start).
  if (!segments_.empty()) {
    Status st = segments_.back()->index().Persist();
    if (!st.ok()) {
      LogWarn(kComponent, "closing " + dir_ + ": " + st.ToString() + " (rebuilt on next start)");
    }
  }
  // Closing the segments may fsync their files and report a failure: detach first, then close
  // them while every member is still alive (members are destroyed in reverse order, and the
  // failure state lies after segments_). A failure at close is still logged by the file.
  {
    std::lock_guard<std::mutex> lock(sync_sink_->mu);
    sync_sink_->log = nullptr;
  }
  segments_.clear();
}

uint64_t PartitionLog::CorruptBatchesTotal() { return g_corrupt_batches.load(); }

void PartitionLog::ReportCorrupt(const Segment& seg, uint64_t position,
                                 const std::string& why) const {
  std::lock_guard lock(corrupt_mu_);
  for (const auto& [path, pos] : corrupt_seen_) {
    if (path == seg.path() && pos == position) {
      return;
    }
  }
  corrupt_seen_.emplace_back(seg.path(), position);
  g_corrupt_batches.fetch_add(1);
  LogError(kComponent, seg.path() + ": corrupt batch at position " + std::to_string(position) +
                           " (" + why + "); readers skip it");
}

void PartitionLog::IndexBatch(Segment& seg, int64_t base, int64_t last, int64_t max_ts,
                              uint64_t position, uint64_t size) {
  if (max_ts > seg.max_timestamp) {
    seg.max_timestamp = max_ts;
    seg.offset_of_max_timestamp = last;
  }
  if (position == 0 ||
      seg.bytes_since_index >= static_cast<uint64_t>(options_.index_interval_bytes)) {
    seg.index().AppendOffset(base, position);
    seg.index().MaybeAppendTime(seg.max_timestamp, seg.offset_of_max_timestamp);
    seg.bytes_since_index = 0;
  }
  seg.bytes_since_index += size;
}

// Seals the active segment (final time-index entry, fsync of .log and indexes) and opens a new
// one at next_offset_. Called with mu_ held exclusively.
Status PartitionLog::Roll() {
  Segment& old = *segments_.back();
  if (old.max_timestamp >= 0) {
    old.index().MaybeAppendTime(old.max_timestamp, old.offset_of_max_timestamp);
  }
  SLUICE_RETURN_IF_ERROR(old.Sync());
  SLUICE_RETURN_IF_ERROR(old.index().Persist());
  Result<std::unique_ptr<Segment>> seg = Segment::Open(dir_, next_offset_, &files_);
  if (!seg.ok()) {
    return seg.status();
  }
  SLUICE_RETURN_IF_ERROR(FsyncDir(dir_, *options_.file_ops));
  segments_.push_back(std::move(seg).value());
  return Status::Ok();
}

Status PartitionLog::SyncTo(int64_t end, uint64_t gen) {
  std::unique_lock fl(flush_mu_);
  while (true) {
    // Checked first: after a truncation, durable_end_ may pass `end` with other records.
    if (truncations_.load() != gen) {
      return Status::FailedPrecondition("partition " + dir_ + ": truncated (to " +
                                        std::to_string(durable_end_) +
                                        ") while waiting for the fsync of offsets up to " +
                                        std::to_string(end));
    }
    if (durable_end_ >= end) {
      break;
    }
    if (!sync_failure_.empty()) {
      return Status::Unavailable("partition " + dir_ + " stopped after a failed fsync (" +
                                 sync_failure_ + ")");
    }
    if (flushing_) {
      flush_cv_.wait(fl);
      continue;
    }
    flushing_ = true;
    fl.unlock();
    int64_t target;
    uint64_t target_gen;
    std::shared_ptr<Segment> seg;
    {
      std::shared_lock lock(mu_);
      target = next_offset_;
      target_gen = truncations_.load();
      seg = segments_.back();  // older segments were fsynced when rolled
    }
    uint64_t covered = unflushed_bytes_.exchange(0);
    Status st = seg->Sync();
    if (st.ok() && sync_failed_.load()) {
      // The file cache closed this file meanwhile and its fsync failed (RecordSyncFailure):
      // this fsync, on a new descriptor, may not have seen that error.
      std::lock_guard<std::mutex> again(flush_mu_);
      st = Status::IOError(sync_failure_);
    }
    last_flush_us_.store(options_.clock->MonotonicUs());
    fl.lock();
    flushing_ = false;
    if (st.ok()) {
      if (truncations_.load() == target_gen) {  // else TruncateTo set durable_end_ itself
        durable_end_ = std::max(durable_end_, target);
      }
    } else {
      unflushed_bytes_.fetch_add(covered);
      if (sync_failure_.empty()) {
        sync_failure_ = st.message();
        LogError(kComponent, "partition " + dir_ + ": fsync failed (" + st.message() +
                                 "): no more appends until the broker restarts and recovers it");
      }
      sync_failed_ = true;
    }
    flush_cv_.notify_all();
    if (!st.ok()) {
      return st;
    }
    if (options_.flush == FlushPolicy::kAlways) {
      fl.unlock();
      PublishVisible(target, target_gen);
      fl.lock();
    }
  }
  return Status::Ok();
}

Status PartitionLog::MaybeFlush() {
  if (options_.flush != FlushPolicy::kInterval || options_.flush_ms < 0 ||
      unflushed_bytes_.load() == 0) {
    return Status::Ok();
  }
  if (options_.clock->MonotonicUs() - last_flush_us_.load() < options_.flush_ms * 1000) {
    return Status::Ok();
  }
  int64_t end;
  uint64_t gen;
  {
    std::shared_lock lock(mu_);
    end = next_offset_;
    gen = truncations_.load();
  }
  return SyncTo(end, gen);
}

Status PartitionLog::Flush() {
  int64_t end;
  uint64_t gen;
  {
    std::shared_lock lock(mu_);
    end = next_offset_;
    gen = truncations_.load();
  }
  SLUICE_RETURN_IF_ERROR(SyncTo(end, gen));
  std::unique_lock lock(mu_);  // Persist mutates the index's file bookkeeping
  return segments_.back()->index().Persist();
}

size_t PartitionLog::ApplyRetention() {
  if (options_.retention_ms < 0 && options_.retention_bytes < 0) {
    return 0;
  }
  const int64_t now_ms = options_.clock->NowMs();
  std::vector<std::shared_ptr<Segment>> doomed;
  {
    std::unique_lock lock(mu_);
    uint64_t total = 0;
    for (const auto& s : segments_) {
      total += s->size();
    }
    while (segments_.size() > 1) {
      const Segment& s = *segments_.front();
      int64_t max_ts = std::max(s.max_timestamp, s.index().last_timestamp());
      if (s.last_append_wall_ms >= 0) {
        // No timestamp from the future, and a segment without timestamps ages by its writes.
        max_ts = max_ts < 0 ? s.last_append_wall_ms : std::min(max_ts, s.last_append_wall_ms);
      }
      bool too_old = options_.retention_ms >= 0 && max_ts >= 0 &&
                     now_ms - max_ts > options_.retention_ms;
      bool too_big = options_.retention_bytes >= 0 &&
                     total - s.size() >= static_cast<uint64_t>(options_.retention_bytes);
      if (!too_old && !too_big) {
        break;
      }
      LogInfo(kComponent, "retention (" + std::string(too_old ? "age" : "size") +
                              "): deleting " + s.path() + ", start offset now " +
                              std::to_string(segments_[1]->base_offset()));
      total -= s.size();
      segments_.front()->RemoveFiles();
      doomed.push_back(std::move(segments_.front()));
      segments_.erase(segments_.begin());
    }
    if (!doomed.empty()) {
      Status st = epochs_.TruncateFromStart(segments_.front()->base_offset());
      if (!st.ok()) {
        LogWarn(kComponent, "retention: " + st.ToString() + " (refitted when next opened)");
      }
    }
  }
  if (!doomed.empty()) {
    (void)FsyncDir(dir_, *options_.file_ops);
  }
  return doomed.size();
}

int64_t PartitionLog::start_offset() const {
  std::shared_lock lock(mu_);
  return segments_.front()->base_offset();
}

int64_t PartitionLog::log_end_offset() const {
  std::shared_lock lock(mu_);
  return next_offset_;
}

int64_t PartitionLog::durable_end_offset() const {
  std::lock_guard<std::mutex> fl(flush_mu_);
  return durable_end_;
}

uint64_t PartitionLog::size_bytes() const {
  std::shared_lock lock(mu_);
  uint64_t total = 0;
  for (const auto& s : segments_) {
    total += s->size();
  }
  return total;
}

size_t PartitionLog::segment_count() const {
  std::shared_lock lock(mu_);
  return segments_.size();
}

}  // namespace sluice::broker
