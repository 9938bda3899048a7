#include "cloud-broker/log/partition_log.h"

#include <algorithm>
#include <mutex>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/fs_util.h"
#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::broker {

void PartitionLog::MaybeIndex(int64_t offset, size_t segment, uint64_t position, uint64_t size) {
  if (position == 0 || bytes_since_index_ >= static_cast<uint64_t>(options_.index_interval_bytes)) {
    index_.push_back(IndexEntry{offset, segment, position});
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += size;
}

Status PartitionLog::Roll() {
  Segment* old = segments_.back().get();
  if (options_.flush != FlushPolicy::kAlways) {
    SLUICE_RETURN_IF_ERROR(old->Sync());
  }
  Result<std::unique_ptr<Segment>> seg = Segment::Open(dir_, next_offset_);
  if (!seg.ok()) {
    return seg.status();
  }
  SLUICE_RETURN_IF_ERROR(FsyncDir(dir_));
  segments_.push_back(std::move(seg).value());
  return Status::Ok();
}

Result<int64_t> PartitionLog::Append(std::string encoded_batch) {
  BatchFrame frame;
  if (!PeekBatchFrame(encoded_batch, &frame) || frame.total_size() != encoded_batch.size()) {
    return Status::InvalidArgument("append: not one whole RecordBatch v2");
  }
  std::unique_lock lock(mu_);
  const int64_t base = next_offset_;
  SetBaseOffset(encoded_batch, base);
  Segment* seg = segments_.back().get();
  if (seg->size() > 0 &&
      seg->size() + encoded_batch.size() > static_cast<uint64_t>(options_.segment_bytes)) {
    SLUICE_RETURN_IF_ERROR(Roll());
    seg = segments_.back().get();
  }
  const uint64_t position = seg->size();
  SLUICE_RETURN_IF_ERROR(seg->Append(encoded_batch));
  if (options_.flush == FlushPolicy::kAlways) {
    Status st = seg->Sync();
    if (!st.ok()) {
      (void)seg->Truncate(position);  // not acknowledged: do not keep it (best effort)
      return st;
    }
  }
  MaybeIndex(base, segments_.size() - 1, position, encoded_batch.size());
  next_offset_ = base + frame.last_offset_delta + 1;
  return base;
}

Result<LogReadResult> PartitionLog::Read(int64_t from, size_t max_records,
                                         size_t max_bytes) const {
  std::shared_lock lock(mu_);
  LogReadResult out;
  out.end_offset = next_offset_;
  out.next_offset = from;
  const int64_t start = segments_.front()->base_offset();
  if (from < start || from > next_offset_) {
    return Status::InvalidArgument("offset " + std::to_string(from) + " is outside [" +
                                   std::to_string(start) + ", " +
                                   std::to_string(next_offset_) + "]");
  }
  if (from == next_offset_ || max_records == 0) {
    return out;
  }
  // Last index entry at or below `from`.
  auto it = std::upper_bound(index_.begin(), index_.end(), from,
                             [](int64_t o, const IndexEntry& e) { return o < e.offset; });
  size_t seg_i = 0;
  uint64_t pos = 0;
  if (it != index_.begin()) {
    --it;
    seg_i = it->segment;
    pos = it->position;
  }
  size_t bytes = 0;
  std::string header;
  std::string batch_bytes;
  for (; seg_i < segments_.size(); ++seg_i, pos = 0) {
    const Segment& seg = *segments_[seg_i];
    const uint64_t seg_size = seg.size();
    while (pos < seg_size) {
      SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, kBatchHeaderSize, &header));
      BatchFrame frame;
      if (!PeekBatchFrame(header, &frame) || pos + frame.total_size() > seg_size) {
        return Status::Corruption("bad batch framing in " + seg.path() + " at position " +
                                  std::to_string(pos));
      }
      if (frame.base_offset + frame.last_offset_delta < from) {
        pos += frame.total_size();
        continue;
      }
      if (bytes > 0 && bytes + frame.total_size() > max_bytes) {
        return out;
      }
      SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, frame.total_size(), &batch_bytes));
      Result<RecordBatch> batch = DecodeBatch(batch_bytes);
      if (!batch.ok()) {
        return Status::Corruption(seg.path() + " at position " + std::to_string(pos) + ": " +
                                  batch.status().message());
      }
      for (Record& r : batch->records) {
        int64_t offset = frame.base_offset + r.offset_delta;
        if (offset < from) {
          continue;
        }
        out.records.push_back(LogRecord{offset, std::move(r)});
        out.next_offset = offset + 1;
        if (out.records.size() >= max_records) {
          return out;
        }
      }
      // A batch may end with offsets that hold no record (Kafka compaction); skip past them.
      out.next_offset = std::max(out.next_offset, frame.base_offset + frame.last_offset_delta + 1);
      bytes += frame.total_size();
      pos += frame.total_size();
    }
  }
  return out;
}

int64_t PartitionLog::start_offset() const {
  std::shared_lock lock(mu_);
  return segments_.front()->base_offset();
}

int64_t PartitionLog::next_offset() const {
  std::shared_lock lock(mu_);
  return next_offset_;
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

Status PartitionLog::Flush() {
  std::unique_lock lock(mu_);
  return segments_.back()->Sync();
}

}  // namespace sluice::broker
