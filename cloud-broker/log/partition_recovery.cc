// PartitionLog::Open and recovery: validate each segment's indexes (rebuilding them from the
// .log when missing or damaged), CRC-check the active segment and cut it at the first torn or
// corrupt batch; then fit the leader epochs to the log, complete an interrupted TruncateTo and
// set the high watermark. Everything cut or rebuilt is logged.
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
  if (options.index_interval_bytes <= 0) {
    return Status::InvalidArgument("index_interval_bytes must be positive");
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
    Result<std::unique_ptr<Segment>> seg = Segment::Open(dir_, base, &files_);
    if (!seg.ok()) {
      return seg.status();
    }
    segments_.push_back(std::move(seg).value());
  }
  SLUICE_RETURN_IF_ERROR(FsyncDir(dir_, *options_.file_ops));
  next_offset_ = segments_.front()->base_offset();
  for (size_t i = 0; i < segments_.size(); ++i) {
    Segment& seg = *segments_[i];
    if (seg.base_offset() < next_offset_) {
      return Status::Corruption(seg.path() + ": base offset " +
                                std::to_string(seg.base_offset()) +
                                " overlaps the previous segment, which ends at " +
                                std::to_string(next_offset_));
    }
    if (i + 1 < segments_.size()) {
      SLUICE_RETURN_IF_ERROR(RecoverOld(seg, segments_[i + 1]->base_offset()));
    } else {
      SLUICE_RETURN_IF_ERROR(RecoverActive(seg));
    }
  }
  next_offset_ = std::max(next_offset_, segments_.back()->base_offset());
  high_watermark_.store(next_offset_);
  durable_end_ = next_offset_;
  last_flush_us_.store(options_.clock->MonotonicUs());
  SLUICE_RETURN_IF_ERROR(LoadEpochs());
  SLUICE_RETURN_IF_ERROR(FinishPendingTruncation());
  LoadHighWatermark();
  return Status::Ok();
}

// Walks `seg` batch by batch from position 0, building the index it should have into *rebuilt,
// tracking the largest timestamp in seg. Stops at the first torn or bad batch (*why says which)
// with *valid_end at its position.
Status PartitionLog::ScanSegment(Segment& seg, bool verify_crc, SegmentIndex* rebuilt,
                                 uint64_t* valid_end, int64_t* next, std::string* why) {
  const uint64_t size = seg.size();
  uint64_t pos = 0;
  std::string bytes;
  seg.bytes_since_index = 0;
  seg.max_timestamp = -1;
  seg.offset_of_max_timestamp = -1;
  while (pos < size) {
    if (size - pos < kBatchHeaderSize) {
      *why = "torn batch header";
      break;
    }
    SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, kBatchHeaderSize, &bytes));
    BatchFrame frame;
    if (!PeekBatchFrame(bytes, &frame)) {
      *why = "bad batch framing";
      break;
    }
    if (pos + frame.total_size() > size) {
      *why = "torn batch (" + std::to_string(size - pos) + " of " +
             std::to_string(frame.total_size()) + " bytes)";
      break;
    }
    if (frame.base_offset < *next) {
      *why = "offset " + std::to_string(frame.base_offset) + " not above " +
             std::to_string(*next - 1);
      break;
    }
    if (verify_crc) {
      SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, frame.total_size(), &bytes));
      Result<BatchHeader> h = ParseBatchHeader(bytes, /*verify_crc=*/true);
      if (!h.ok()) {
        *why = h.status().message();
        break;
      }
    }
    const int64_t last = frame.base_offset + frame.last_offset_delta;
    if (frame.max_timestamp > seg.max_timestamp) {
      seg.max_timestamp = frame.max_timestamp;
      seg.offset_of_max_timestamp = last;
    }
    if (pos == 0 ||
        seg.bytes_since_index >= static_cast<uint64_t>(options_.index_interval_bytes)) {
      rebuilt->AppendOffset(frame.base_offset, pos);
      rebuilt->MaybeAppendTime(seg.max_timestamp, seg.offset_of_max_timestamp);
      seg.bytes_since_index = 0;
    }
    seg.bytes_since_index += frame.total_size();
    *next = last + 1;
    pos += frame.total_size();
  }
  *valid_end = pos;
  return Status::Ok();
}

// The active segment is always scanned with CRCs: it may end in a torn write.
Status PartitionLog::RecoverActive(Segment& seg) {
  SegmentIndex rebuilt("", seg.base_offset(), options_.file_ops);
  uint64_t valid_end = 0;
  std::string why;
  SLUICE_RETURN_IF_ERROR(
      ScanSegment(seg, /*verify_crc=*/true, &rebuilt, &valid_end, &next_offset_, &why));
  if (valid_end < seg.size()) {
    uint64_t cut = seg.size() - valid_end;
    LogWarn(kComponent, seg.path() + ": " + why + " at position " + std::to_string(valid_end) +
                            "; truncating " + std::to_string(cut) + " bytes");
    SLUICE_RETURN_IF_ERROR(seg.Truncate(valid_end));
    SLUICE_RETURN_IF_ERROR(seg.Sync());
    truncated_bytes_ += cut;
  }
  if (!seg.index().SameEntries(rebuilt)) {
    std::string invalid;
    bool valid = seg.index().Validate(seg.size(), next_offset_, &invalid);
    LogWarn(kComponent, seg.index().index_path() + ": rebuilt the active segment's indexes (" +
                            std::to_string(rebuilt.offsets().size()) + " offset and " +
                            std::to_string(rebuilt.times().size()) + " time entries)" +
                            (valid ? ": they did not match the log" : ": " + invalid));
    SLUICE_RETURN_IF_ERROR(seg.index().CopyFrom(rebuilt));
    ++rebuilt_indexes_;
  }
  if (seg.size() > 0) {
    seg.first_append_ms = options_.clock->MonotonicUs() / 1000;
  }
  return Status::Ok();
}

// An old segment was fsynced with its indexes when it was rolled: trust valid indexes (readers
// check CRCs and skip corrupt batches); rebuild missing or damaged ones from the framing.
Status PartitionLog::RecoverOld(Segment& seg, int64_t end) {
  std::string invalid;
  if (!seg.index().Validate(seg.size(), end, &invalid)) {
    SegmentIndex rebuilt("", seg.base_offset(), options_.file_ops);
    uint64_t valid_end = 0;
    std::string why;
    int64_t next = seg.base_offset();
    SLUICE_RETURN_IF_ERROR(
        ScanSegment(seg, /*verify_crc=*/false, &rebuilt, &valid_end, &next, &why));
    if (valid_end < seg.size()) {
      ReportCorrupt(seg, valid_end, why + " while rebuilding its index");
    }
    if (seg.max_timestamp >= 0) {
      rebuilt.MaybeAppendTime(seg.max_timestamp, seg.offset_of_max_timestamp);
    }
    LogWarn(kComponent, "rebuilt indexes of " + seg.path() + " (" + invalid + "): " +
                            std::to_string(rebuilt.offsets().size()) + " offset and " +
                            std::to_string(rebuilt.times().size()) + " time entries");
    SLUICE_RETURN_IF_ERROR(seg.index().CopyFrom(rebuilt));
    ++rebuilt_indexes_;
  }
  seg.max_timestamp = seg.index().last_timestamp();
  next_offset_ = end;
  return Status::Ok();
}

}  // namespace sluice::broker
