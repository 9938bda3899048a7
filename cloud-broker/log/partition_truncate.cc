// PartitionLog::TruncateTo (KIP-101: a follower cuts its log back to where it agrees with the
// leader) and its crash safety. Order: the target goes to truncation-checkpoint (atomic, durable)
// first; then leader epochs, later segments (deleted), the containing segment (.log cut and
// fsynced, indexes rebuilt), the directory fsync; the checkpoint is removed (durably) last. A
// crash anywhere before that reopens with the checkpoint present, and Open cuts again to its
// target (the cut is idempotent), so no record at or past the target survives either way.
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/checkpoint_file.h"
#include "cloud-broker/log/fs_util.h"
#include "cloud-broker/log/partition_log.h"
#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "log";
constexpr const char* kTruncationFile = "truncation-checkpoint";
}  // namespace

Status PartitionLog::FindCut(int64_t offset, size_t* seg_i, uint64_t* position,
                             int64_t* new_end) const {
  *seg_i = SegmentFor(offset);
  const Segment& seg = *segments_[*seg_i];
  const uint64_t size = seg.size();
  uint64_t pos = seg.index().LookupPosition(offset);  // a batch starting at or below offset
  *position = size;
  *new_end = seg.base_offset();
  std::string header;
  while (pos < size) {
    SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, kBatchHeaderSize, &header));
    BatchFrame frame;
    if (!PeekBatchFrame(header, &frame) || pos + frame.total_size() > size) {
      return Status::Corruption(seg.path() + ": cannot truncate to " + std::to_string(offset) +
                                ": bad batch framing at position " + std::to_string(pos));
    }
    const int64_t last = frame.base_offset + frame.last_offset_delta;
    if (last >= offset) {
      *position = pos;
      *new_end = frame.base_offset;
      return Status::Ok();
    }
    *new_end = last + 1;
    pos += frame.total_size();
  }
  return Status::Ok();  // `offset` lies in a hole after the segment's last batch
}

Status PartitionLog::ReindexActive() {
  Segment& seg = *segments_.back();
  SegmentIndex rebuilt("", seg.base_offset(), options_.file_ops);
  uint64_t valid_end = 0;
  int64_t next = seg.base_offset();
  std::string why;
  SLUICE_RETURN_IF_ERROR(
      ScanSegment(seg, /*verify_crc=*/false, &rebuilt, &valid_end, &next, &why));
  if (valid_end < seg.size()) {
    ReportCorrupt(seg, valid_end, why + " while re-indexing it after a truncation");
  }
  SLUICE_RETURN_IF_ERROR(seg.index().CopyFrom(rebuilt));
  if (seg.size() > 0 && seg.first_append_ms < 0) {
    seg.first_append_ms = options_.clock->MonotonicUs() / 1000;
  }
  return Status::Ok();
}

Status PartitionLog::TruncateTo(int64_t offset) {
  std::vector<std::shared_ptr<Segment>> doomed;  // closed after the lock is released
  std::unique_lock lock(mu_);
  const int64_t start = segments_.front()->base_offset();
  if (offset < start) {
    return Status::InvalidArgument("truncate: offset " + std::to_string(offset) +
                                   " is below the log start " + std::to_string(start));
  }
  if (offset >= next_offset_) {
    return Status::Ok();
  }
  if (sync_failed_.load()) {
    std::lock_guard<std::mutex> fl(flush_mu_);
    return Status::Unavailable("partition " + dir_ + " stopped after a failed fsync (" +
                               sync_failure_ + "); restart the broker to recover it");
  }
  size_t seg_i = 0;
  uint64_t position = 0;
  int64_t new_end = 0;
  SLUICE_RETURN_IF_ERROR(FindCut(offset, &seg_i, &position, &new_end));
  const std::string intent = FilePath(kTruncationFile);
  SLUICE_RETURN_IF_ERROR(WriteCheckpointFile(intent, {{new_end}}, *options_.file_ops));
  LogInfo(kComponent, "partition " + dir_ + ": truncating from " +
                          std::to_string(next_offset_) + " to " + std::to_string(new_end));
  // From here a failure may leave the log half cut: the partition stops (as after a failed
  // fsync) and the next Open completes the cut from the checkpoint.
  bool raised = false;
  Status st = [&]() -> Status {
    SLUICE_RETURN_IF_ERROR(epochs_.TruncateFromEnd(new_end));
    while (segments_.size() > seg_i + 1) {
      segments_.back()->RemoveFiles();
      doomed.push_back(std::move(segments_.back()));
      segments_.pop_back();
    }
    Segment& seg = *segments_.back();
    SLUICE_RETURN_IF_ERROR(seg.Truncate(position));
    SLUICE_RETURN_IF_ERROR(seg.Sync());
    SLUICE_RETURN_IF_ERROR(ReindexActive());
    SLUICE_RETURN_IF_ERROR(FsyncDir(dir_, *options_.file_ops));
    next_offset_ = new_end;
    {
      std::lock_guard<std::mutex> fl(flush_mu_);
      truncations_.fetch_add(1);  // fails fsync waits for the removed records (SyncTo)
      durable_end_ = new_end;     // the cut segment was just fsynced, older ones at roll
      unflushed_bytes_.store(0);
      flush_cv_.notify_all();
    }
    // Managed: lowered if above the cut. Unmanaged: everything below the cut is now durable and
    // so readable (an append that raced the cut may have left its records unpublished).
    const int64_t hwm = high_watermark_.load();
    if (hwm > new_end || (!options_.managed_high_watermark && hwm < new_end)) {
      high_watermark_.store(new_end);
      raised = hwm < new_end;
    }
    if (::unlink(intent.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("unlink", intent, errno);
    }
    // Durably gone before any later append is acknowledged: a stale checkpoint would cut it.
    return FsyncDir(dir_, *options_.file_ops);
  }();
  if (!st.ok()) {
    RecordSyncFailure(Status::IOError("truncate to " + std::to_string(new_end) + ": " +
                                      st.message()));
  }
  lock.unlock();
  if (raised && options_.on_visible) {
    options_.on_visible();
  }
  return st;
}

Status PartitionLog::FinishPendingTruncation() {
  const std::string intent = FilePath(kTruncationFile);
  Result<std::vector<CheckpointEntry>> read = ReadCheckpointFile(intent, 1, *options_.file_ops);
  if (!read.ok()) {
    return read.status().code() == StatusCode::kNotFound ? Status::Ok() : read.status();
  }
  if (read->size() != 1) {
    return Status::Corruption(intent + ": expected one target offset");
  }
  const int64_t target = (*read)[0][0];
  LogWarn(kComponent, "partition " + dir_ + ": completing a truncation to " +
                          std::to_string(target) + " that a crash interrupted (log end " +
                          std::to_string(next_offset_) + ")");
  SLUICE_RETURN_IF_ERROR(TruncateTo(target));
  if (::unlink(intent.c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("unlink", intent, errno);
  }
  return FsyncDir(dir_, *options_.file_ops);
}

}  // namespace sluice::broker
