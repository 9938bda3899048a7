// PartitionLog::Open and recovery: rebuild the sparse index and the next offset from the
// segment files, cutting off a torn or corrupt tail.
#include <algorithm>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/fs_util.h"
#include "cloud-broker/log/partition_log.h"
#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "log";
}  // namespace

Result<std::unique_ptr<PartitionLog>> PartitionLog::Open(const std::string& dir,
                                                         const LogOptions& options) {
  if (options.segment_bytes <= 0) {
    return Status::InvalidArgument("segment_bytes must be positive");
  }
  std::unique_ptr<PartitionLog> log(new PartitionLog(dir, options));
  SLUICE_RETURN_IF_ERROR(log->Recover());
  return log;
}

Status PartitionLog::Recover() {
  SLUICE_RETURN_IF_ERROR(MakeDirs(dir_));
  Result<std::vector<std::string>> names = ListDir(dir_);
  if (!names.ok()) {
    return names.status();
  }
  std::vector<int64_t> bases;
  for (const std::string& name : *names) {
    int64_t base;
    if (Segment::ParseFileName(name, &base)) {
      bases.push_back(base);
    }
  }
  std::sort(bases.begin(), bases.end());
  if (bases.empty()) {
    bases.push_back(0);
  }
  for (int64_t base : bases) {
    Result<std::unique_ptr<Segment>> seg = Segment::Open(dir_, base);
    if (!seg.ok()) {
      return seg.status();
    }
    segments_.push_back(std::move(seg).value());
  }
  SLUICE_RETURN_IF_ERROR(FsyncDir(dir_));
  next_offset_ = segments_.front()->base_offset();
  for (size_t i = 0; i < segments_.size(); ++i) {
    SLUICE_RETURN_IF_ERROR(RecoverSegment(i, /*verify_crc=*/i + 1 == segments_.size()));
  }
  next_offset_ = std::max(next_offset_, segments_.back()->base_offset());
  return Status::Ok();
}

// Walks segment i batch by batch. Older segments were fsynced before the roll, so their framing
// is checked but their CRCs are left to readers; the active one is CRC-checked in full.
Status PartitionLog::RecoverSegment(size_t i, bool verify_crc) {
  Segment& seg = *segments_[i];
  const uint64_t size = seg.size();
  if (seg.base_offset() < next_offset_) {
    return Status::Corruption(seg.path() + ": base offset " + std::to_string(seg.base_offset()) +
                              " overlaps the previous segment, which ends at " +
                              std::to_string(next_offset_));
  }
  uint64_t pos = 0;
  std::string bytes;
  std::string why;
  bytes_since_index_ = 0;
  while (pos < size) {
    if (size - pos < kBatchHeaderSize) {
      why = "torn batch header";
      break;
    }
    SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, kBatchHeaderSize, &bytes));
    BatchFrame frame;
    if (!PeekBatchFrame(bytes, &frame)) {
      why = "bad batch framing";
      break;
    }
    if (pos + frame.total_size() > size) {
      why = "torn batch (" + std::to_string(size - pos) + " of " +
            std::to_string(frame.total_size()) + " bytes)";
      break;
    }
    if (frame.base_offset < next_offset_) {
      why = "offset " + std::to_string(frame.base_offset) + " not above " +
            std::to_string(next_offset_ - 1);
      break;
    }
    if (verify_crc) {
      SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, frame.total_size(), &bytes));
      Result<BatchHeader> h = ParseBatchHeader(bytes, /*verify_crc=*/true);
      if (!h.ok()) {
        why = h.status().message();
        break;
      }
    }
    MaybeIndex(frame.base_offset, i, pos, frame.total_size());
    next_offset_ = frame.base_offset + frame.last_offset_delta + 1;
    pos += frame.total_size();
  }
  if (pos < size) {
    uint64_t cut = size - pos;
    LogWarn(kComponent, seg.path() + ": " + why + " at position " + std::to_string(pos) +
                            "; truncating " + std::to_string(cut) + " bytes");
    SLUICE_RETURN_IF_ERROR(seg.Truncate(pos));
    SLUICE_RETURN_IF_ERROR(seg.Sync());
    truncated_bytes_ += cut;
  }
  return Status::Ok();
}

}  // namespace sluice::broker
