// PartitionLog reads: fetch by offset and lookup by timestamp, both starting from the segment
// indexes and skipping corrupt batches (framing sane: by the batch length; otherwise to the
// next offset-index entry, or the next segment).
#include <algorithm>
#include <mutex>

#include "cloud-broker/log/batch_frame.h"
#include "cloud-broker/log/partition_log.h"
#include "core/record_batch.h"

namespace sluice::broker {

size_t PartitionLog::SegmentFor(int64_t offset) const {
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), offset,
      [](int64_t o, const std::shared_ptr<Segment>& s) { return o < s->base_offset(); });
  return it == segments_.begin() ? 0 : static_cast<size_t>(it - segments_.begin()) - 1;
}

Result<bool> PartitionLog::FrameAt(const Segment& seg, uint64_t seg_size, uint64_t* pos,
                                   std::string* header, BatchFrame* frame,
                                   int64_t* skipped_to) const {
  SLUICE_RETURN_IF_ERROR(seg.ReadAt(*pos, kBatchHeaderSize, header));
  if (PeekBatchFrame(*header, frame) && *pos + frame->total_size() <= seg_size) {
    return true;
  }
  ReportCorrupt(seg, *pos, "bad batch framing");
  *pos = seg.index().NextPositionAfter(*pos, skipped_to);
  return false;
}

Result<LogReadResult> PartitionLog::Read(int64_t from, size_t max_records,
                                         size_t max_bytes) const {
  std::shared_lock lock(mu_);
  const int64_t end = high_watermark_.load();
  LogReadResult out;
  out.end_offset = end;
  out.next_offset = from;
  out.start_offset = segments_.front()->base_offset();
  if (from < out.start_offset || from > end) {
    return Status::InvalidArgument("offset " + std::to_string(from) + " is outside [" +
                                   std::to_string(out.start_offset) + ", " +
                                   std::to_string(end) + "]");
  }
  if (from == end || max_records == 0) {
    return out;
  }
  size_t seg_i = SegmentFor(from);
  uint64_t pos = segments_[seg_i]->index().LookupPosition(from);
  size_t bytes = 0;
  std::string header;
  std::string batch_bytes;
  for (; seg_i < segments_.size(); ++seg_i, pos = 0) {
    const Segment& seg = *segments_[seg_i];
    const uint64_t seg_size = seg.size();
    while (pos < seg_size) {
      BatchFrame frame;
      int64_t next_off = 0;
      Result<bool> framed = FrameAt(seg, seg_size, &pos, &header, &frame, &next_off);
      if (!framed.ok()) {
        return framed.status();
      }
      if (!*framed) {
        if (pos == 0) {
          break;  // on to the next segment
        }
        out.next_offset = std::max(out.next_offset, next_off);
        continue;
      }
      if (frame.base_offset >= end) {
        return out;  // written but not yet fsynced (flush: always)
      }
      const int64_t last = frame.base_offset + frame.last_offset_delta;
      if (last < from) {
        pos += frame.total_size();
        continue;
      }
      if (bytes > 0 && bytes + frame.total_size() > max_bytes) {
        return out;
      }
      SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, frame.total_size(), &batch_bytes));
      Result<RecordBatch> batch = DecodeBatch(batch_bytes);
      if (!batch.ok()) {
        ReportCorrupt(seg, pos, batch.status().message());
        out.next_offset = std::max(out.next_offset, last + 1);
        pos += frame.total_size();
        continue;
      }
      for (Record& r : batch->records) {
        int64_t offset = frame.base_offset + r.offset_delta;
        if (offset < from) {
          continue;
        }
        if (offset >= end) {
          return out;  // a managed high watermark may fall inside a batch
        }
        out.records.push_back(LogRecord{offset, std::move(r)});
        out.next_offset = offset + 1;
        if (out.records.size() >= max_records) {
          return out;
        }
      }
      // A batch may end with offsets that hold no record (Kafka compaction); skip past them.
      out.next_offset = std::max(out.next_offset, last + 1);
      bytes += frame.total_size();
      pos += frame.total_size();
    }
    if (seg_i + 1 < segments_.size()) {
      out.next_offset = std::max(out.next_offset, segments_[seg_i + 1]->base_offset());
    }
  }
  out.next_offset = std::min(out.next_offset, end);
  return out;
}

Result<int64_t> PartitionLog::OffsetForTimestamp(int64_t timestamp) const {
  std::shared_lock lock(mu_);
  const int64_t end = high_watermark_.load();
  std::string header;
  std::string batch_bytes;
  for (const auto& sp : segments_) {
    const Segment& seg = *sp;
    if (std::max(seg.max_timestamp, seg.index().last_timestamp()) < timestamp) {
      continue;  // everything in this segment is older
    }
    uint64_t pos = seg.index().LookupPosition(seg.index().TimeSearchStart(timestamp));
    const uint64_t seg_size = seg.size();
    while (pos < seg_size) {
      BatchFrame frame;
      int64_t ignored = 0;
      Result<bool> framed = FrameAt(seg, seg_size, &pos, &header, &frame, &ignored);
      if (!framed.ok()) {
        return framed.status();
      }
      if (!*framed) {
        if (pos == 0) {
          break;
        }
        continue;
      }
      if (frame.base_offset >= end) {
        return end;
      }
      if (frame.max_timestamp >= timestamp) {
        SLUICE_RETURN_IF_ERROR(seg.ReadAt(pos, frame.total_size(), &batch_bytes));
        Result<RecordBatch> batch = DecodeBatch(batch_bytes);
        if (batch.ok()) {
          for (const Record& r : batch->records) {
            if (r.timestamp_ms >= timestamp) {
              return std::min(frame.base_offset + r.offset_delta, end);
            }
          }
        } else {
          ReportCorrupt(seg, pos, batch.status().message());
        }
      }
      pos += frame.total_size();
    }
  }
  return end;
}

}  // namespace sluice::broker
