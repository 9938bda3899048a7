// PartitionLog appends: the leader's (offsets assigned, epoch stamped), the follower's (the
// leader's offsets, checked against the log end), and publishing what became readable.
#include <algorithm>
#include <mutex>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/partition_log.h"
#include "core/record_batch.h"

namespace sluice::broker {

Result<int64_t> PartitionLog::Append(std::string encoded_batch) {
  BatchFrame frame;
  if (!PeekBatchFrame(encoded_batch, &frame) || frame.total_size() != encoded_batch.size()) {
    return Status::InvalidArgument("append: not one whole RecordBatch v2");
  }
  return DoAppend(std::move(encoded_batch), frame, AppendMode::kLeader, kKeepEpoch);
}

Result<int64_t> PartitionLog::Append(std::string encoded_batch, int32_t leader_epoch) {
  BatchFrame frame;
  if (!PeekBatchFrame(encoded_batch, &frame) || frame.total_size() != encoded_batch.size()) {
    return Status::InvalidArgument("append: not one whole RecordBatch v2");
  }
  if (leader_epoch < 0) {
    return Status::InvalidArgument("append: negative leader epoch " +
                                   std::to_string(leader_epoch));
  }
  return DoAppend(std::move(encoded_batch), frame, AppendMode::kLeader, leader_epoch);
}

Result<int64_t> PartitionLog::AppendAsFollower(std::string encoded_batch) {
  BatchFrame frame;
  if (!PeekBatchFrame(encoded_batch, &frame) || frame.total_size() != encoded_batch.size()) {
    return Status::InvalidArgument("follower append: not one whole RecordBatch v2");
  }
  Result<BatchHeader> header = ParseBatchHeader(encoded_batch, /*verify_crc=*/true);
  if (!header.ok()) {
    return Status::InvalidArgument("follower append: " + header.status().message());
  }
  return DoAppend(std::move(encoded_batch), frame, AppendMode::kFollower, frame.leader_epoch);
}

Result<int64_t> PartitionLog::DoAppend(std::string batch, const BatchFrame& frame,
                                       AppendMode mode, int32_t epoch) {
  if (sync_failed_.load()) {
    std::lock_guard<std::mutex> fl(flush_mu_);
    return Status::Unavailable("partition " + dir_ + " stopped after a failed fsync (" +
                               sync_failure_ + "); restart the broker to recover it");
  }
  int64_t base;
  int64_t end;
  uint64_t gen;
  {
    std::unique_lock lock(mu_);
    base = next_offset_;
    const int32_t latest = epochs_.latest_epoch();
    if (mode == AppendMode::kFollower) {
      if (frame.base_offset != base) {
        const int64_t last = frame.base_offset + frame.last_offset_delta;
        return Status::FailedPrecondition(
            "follower append: batch [" + std::to_string(frame.base_offset) + ", " +
            std::to_string(last) + "] does not start at the log end " + std::to_string(base) +
            (frame.base_offset > base
                 ? " (a gap of " + std::to_string(frame.base_offset - base) + " offsets)"
                 : " (overlaps " + std::to_string(std::min(last + 1, base) - frame.base_offset) +
                       " stored offsets)"));
      }
    } else {
      if (epoch != kKeepEpoch && epoch < latest) {
        return Status::FailedPrecondition("append: leader epoch " + std::to_string(epoch) +
                                          " is below the log's latest epoch " +
                                          std::to_string(latest));
      }
      if (epoch == kKeepEpoch) {
        epoch = latest;  // -1 (kKeepEpoch again) when the log never had an epoch
      }
      SetBaseOffset(batch, base);
      if (epoch != kKeepEpoch) {
        SetLeaderEpoch(batch, epoch);
      }
    }
    // A new epoch is recorded before its first batch: a crash between the two leaves an entry
    // at the log end, which Open drops.
    const bool new_epoch = epoch >= 0 && epoch > latest;
    if (new_epoch) {
      Status st = epochs_.Assign(epoch, base);
      if (!st.ok()) {
        (void)epochs_.TruncateFromEnd(base);
        return st;
      }
    }
    Status written = [&]() -> Status {
      Segment* seg = segments_.back().get();
      const int64_t now_ms = options_.clock->MonotonicUs() / 1000;
      bool full = seg->size() + batch.size() > static_cast<uint64_t>(options_.segment_bytes);
      bool old = options_.segment_ms >= 0 && seg->first_append_ms >= 0 &&
                 now_ms - seg->first_append_ms >= options_.segment_ms;
      if (seg->size() > 0 && (full || old)) {
        SLUICE_RETURN_IF_ERROR(Roll());
        seg = segments_.back().get();
      }
      const uint64_t position = seg->size();
      SLUICE_RETURN_IF_ERROR(seg->Append(batch));
      if (seg->first_append_ms < 0) {
        seg->first_append_ms = now_ms;
      }
      seg->last_append_wall_ms = options_.clock->NowMs();
      const int64_t last = base + frame.last_offset_delta;
      IndexBatch(*seg, base, last, frame.max_timestamp, position, batch.size());
      next_offset_ = last + 1;
      return Status::Ok();
    }();
    if (!written.ok()) {
      if (new_epoch) {
        (void)epochs_.TruncateFromEnd(base);
      }
      return written;
    }
    end = next_offset_;
    gen = truncations_.load();
  }
  uint64_t unflushed = unflushed_bytes_.fetch_add(batch.size()) + batch.size();
  if (options_.flush == FlushPolicy::kAlways ||
      (options_.flush == FlushPolicy::kInterval && options_.flush_bytes > 0 &&
       unflushed >= static_cast<uint64_t>(options_.flush_bytes))) {
    SLUICE_RETURN_IF_ERROR(SyncTo(end, gen));
  }
  if (options_.flush != FlushPolicy::kAlways) {
    PublishVisible(end, gen);
  }
  return base;
}

void PartitionLog::PublishVisible(int64_t end, uint64_t gen) {
  if (options_.managed_high_watermark) {
    return;
  }
  bool advanced = false;
  {
    std::shared_lock lock(mu_);
    if (truncations_.load() != gen) {
      return;  // `end` may lie past a truncation
    }
    int64_t cur = high_watermark_.load();
    while (cur < end && !high_watermark_.compare_exchange_weak(cur, end)) {
    }
    advanced = cur < end;
  }
  if (advanced && options_.on_visible) {
    options_.on_visible();
  }
}

}  // namespace sluice::broker
