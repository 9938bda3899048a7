// PartitionLog's replication state: the leader epochs (loaded, fitted or rebuilt at Open), the
// high watermark (managed, checkpointed) and the raw batch reads a follower fetches.
#include <algorithm>
#include <mutex>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/checkpoint_file.h"
#include "cloud-broker/log/partition_log.h"
#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "log";
constexpr const char* kHighWatermarkFile = "high-watermark-checkpoint";
}  // namespace

Status PartitionLog::LoadEpochs() {
  const int64_t start = segments_.front()->base_offset();
  Status loaded = epochs_.Load();
  if (loaded.ok()) {
    // Entries at or past the recovered end name records a crash took (or never wrote).
    const std::vector<EpochEntry> before = epochs_.entries();
    Status st = epochs_.TruncateFromEnd(next_offset_);
    if (st.ok()) {
      st = epochs_.TruncateFromStart(start);
    }
    if (!st.ok()) {
      LogWarn(kComponent, epochs_.path() + ": " + st.ToString() + " (fitted again next start)");
    } else if (epochs_.entries() != before) {
      LogWarn(kComponent, epochs_.path() + ": fitted to the recovered log [" +
                              std::to_string(start) + ", " + std::to_string(next_offset_) + ")");
    }
    return Status::Ok();
  }
  if (loaded.code() == StatusCode::kUnavailable) {
    return loaded;  // out of descriptors: retryable, and a rebuild would need them too
  }
  if (loaded.code() != StatusCode::kNotFound) {
    LogWarn(kComponent, loaded.ToString() + ": rebuilding it from the batch headers");
  }
  // Rebuild: each epoch starts at the first batch that carries it.
  std::vector<EpochEntry> rebuilt;
  std::string header;
  for (const auto& sp : segments_) {
    const Segment& seg = *sp;
    const uint64_t size = seg.size();
    uint64_t pos = 0;
    while (pos < size) {
      SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, kBatchHeaderSize, &header));
      BatchFrame frame;
      if (!PeekBatchFrame(header, &frame)) {
        break;  // damaged framing in an old segment: its later batches cannot be walked
      }
      if (frame.leader_epoch >= 0 &&
          (rebuilt.empty() || frame.leader_epoch > rebuilt.back().epoch)) {
        rebuilt.push_back({frame.leader_epoch, frame.base_offset});
      }
      pos += frame.total_size();
    }
  }
  if (!rebuilt.empty()) {
    rebuilt.front().start_offset = std::max(rebuilt.front().start_offset, start);
  }
  // An empty log costs nothing to rescan; a non-empty one writes the (maybe empty) result, so
  // the next start need not read every batch header again.
  Status st = next_offset_ > start || loaded.code() != StatusCode::kNotFound
                  ? epochs_.Reset(std::move(rebuilt))
                  : Status::Ok();
  if (!st.ok()) {
    LogWarn(kComponent, epochs_.path() + ": " + st.ToString() + " (rebuilt again next start)");
  }
  return Status::Ok();
}

void PartitionLog::LoadHighWatermark() {
  const int64_t start = segments_.front()->base_offset();
  int64_t hwm = next_offset_;
  if (options_.managed_high_watermark) {
    hwm = start;  // Kafka: no checkpoint reads as 0, raised to the log start
    Result<std::vector<CheckpointEntry>> read =
        ReadCheckpointFile(FilePath(kHighWatermarkFile), 1, *options_.file_ops);
    if (read.ok() && read->size() == 1) {
      hwm = std::clamp((*read)[0][0], start, next_offset_);
    } else if (!read.ok() && read.status().code() != StatusCode::kNotFound) {
      LogWarn(kComponent, read.status().ToString() + ": high watermark starts at " +
                              std::to_string(hwm));
    }
  }
  high_watermark_.store(hwm);
}

Result<int64_t> PartitionLog::SetHighWatermark(int64_t offset) {
  if (!options_.managed_high_watermark) {
    return Status::FailedPrecondition("partition " + dir_ +
                                      ": the high watermark is not managed");
  }
  bool advanced = false;
  int64_t now;
  {
    std::shared_lock lock(mu_);
    const int64_t target = std::min(offset, next_offset_);
    int64_t cur = high_watermark_.load();
    while (cur < target && !high_watermark_.compare_exchange_weak(cur, target)) {
    }
    advanced = cur < target;
    now = std::max(cur, target);
  }
  if (advanced && options_.on_visible) {
    options_.on_visible();
  }
  return now;
}

Status PartitionLog::CheckpointHighWatermark() {
  std::lock_guard<std::mutex> lock(hwm_file_mu_);
  return WriteCheckpointFile(FilePath(kHighWatermarkFile), {{high_watermark_.load()}},
                             *options_.file_ops);
}

Status PartitionLog::AssignLeaderEpoch(int32_t epoch) {
  if (epoch < 0) {
    return Status::InvalidArgument("negative leader epoch " + std::to_string(epoch));
  }
  std::unique_lock lock(mu_);
  if (epoch < epochs_.latest_epoch()) {
    return Status::FailedPrecondition("leader epoch " + std::to_string(epoch) +
                                      " is below this log's latest, " +
                                      std::to_string(epochs_.latest_epoch()));
  }
  return epochs_.Assign(epoch, next_offset_);  // no-op for the latest epoch
}

int32_t PartitionLog::latest_epoch() const {
  std::shared_lock lock(mu_);
  return epochs_.latest_epoch();
}

EpochEndOffset PartitionLog::EndOffsetForEpoch(int32_t epoch) const {
  std::shared_lock lock(mu_);
  return epochs_.EndOffsetFor(epoch, next_offset_);
}

std::vector<EpochEntry> PartitionLog::epoch_entries() const {
  std::shared_lock lock(mu_);
  return epochs_.entries();
}

Result<LogBatches> PartitionLog::ReadBatches(int64_t from, size_t max_bytes) const {
  std::shared_lock lock(mu_);
  LogBatches out;
  out.log_end_offset = next_offset_;
  out.high_watermark = high_watermark_.load();
  out.next_offset = from;
  const int64_t start = segments_.front()->base_offset();
  if (from < start || from > next_offset_) {
    return Status::InvalidArgument("offset " + std::to_string(from) + " is outside [" +
                                   std::to_string(start) + ", " +
                                   std::to_string(next_offset_) + "]");
  }
  size_t bytes = 0;
  std::string header;
  for (size_t seg_i = SegmentFor(from); seg_i < segments_.size(); ++seg_i) {
    const Segment& seg = *segments_[seg_i];
    const uint64_t size = seg.size();
    uint64_t pos = seg.base_offset() <= from ? seg.index().LookupPosition(from) : 0;
    while (pos < size) {
      SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, kBatchHeaderSize, &header));
      BatchFrame frame;
      if (!PeekBatchFrame(header, &frame) || pos + frame.total_size() > size) {
        return Status::Corruption(seg.path() + ": bad batch framing at position " +
                                  std::to_string(pos));
      }
      const int64_t last = frame.base_offset + frame.last_offset_delta;
      if (last >= from) {
        if (bytes > 0 && bytes + frame.total_size() > max_bytes) {
          return out;
        }
        std::string batch;
        SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, frame.total_size(), &batch));
        bytes += batch.size();
        out.batches.push_back(std::move(batch));
        out.next_offset = last + 1;
      }
      pos += frame.total_size();
    }
  }
  return out;
}

}  // namespace sluice::broker
