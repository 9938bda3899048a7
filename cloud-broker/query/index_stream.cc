#include "cloud-broker/query/index_stream.h"

#include <limits>

#include "cloud-broker/query/query.h"
#include "core/record_batch.h"

namespace sluice::broker {

Result<std::vector<IndexHit>> IndexFamilyHits(const PartitionIndex& index,
                                              const QueryFilter& filter, int64_t from_ms,
                                              int64_t to_ms,
                                              const std::optional<IndexCursor>& cursor,
                                              size_t limit) {
  if (filter.device_id.has_value()) {
    return index.Device(filter.device_id->value(), from_ms, to_ms, cursor, limit);
  }
  if (filter.country.has_value()) {
    return index.Country(filter.country->value(), from_ms, to_ms, cursor, limit);
  }
  return index.Time(from_ms, to_ms, cursor, limit);
}

IndexStream::IndexStream(const PartitionLog& log, const PartitionIndex& index,
                         const QueryFilter& filter, std::optional<AfterBound> after,
                         int64_t covered_end, const QueryDeadline* deadline)
    : index_(index),
      filter_(filter),
      covered_end_(covered_end),
      deadline_(deadline),
      start_(log.start_offset()),
      from_ms_(filter.from_ms.value_or(std::numeric_limits<int64_t>::min())),
      to_ms_(filter.to_ms.value_or(std::numeric_limits<int64_t>::max())),
      reader_(log) {
  if (after.has_value()) {
    if (after->offset < 0) {
      from_ms_ = std::max(from_ms_, after->ts_ms);  // every offset at ts_ms is after
    } else if (after->ts_ms >= from_ms_) {
      cursor_ = IndexCursor{after->ts_ms, after->offset};
    }
  }
}

Result<std::vector<IndexHit>> IndexStream::NextHits() {
  Result<std::vector<IndexHit>> hits =
      IndexFamilyHits(index_, filter_, from_ms_, to_ms_, cursor_, kPage);
  if (hits.ok() && !hits->empty()) {
    cursor_ = IndexCursor{hits->back().ts_ms, hits->back().offset};
  }
  return hits;
}

Result<std::optional<Record>> LogPointReader::Read(int64_t offset) {
  if (!Holds(offset)) {
    Release();
    Result<LogBatches> read = log_.ReadBatches(offset, 1);
    if (!read.ok()) {
      if (read.status().code() == StatusCode::kInvalidArgument) {
        return std::optional<Record>();  // below the log start now (retention) or cut off
      }
      return read.status();
    }
    if (read->batches.empty()) {
      return std::optional<Record>();
    }
    // No CRC here: every batch an index entry points into had its CRC verified when the indexer
    // read it (ForEachRecord), and the framing is bounds-checked as it is decoded. Verifying the
    // whole batch again for each hit cost 40 % of a device query (as Kafka, reads of stored
    // batches do not re-verify; fetch through the API does).
    Result<BatchHeader> header = ParseBatchHeader(read->batches.front(), /*verify_crc=*/false);
    if (!header.ok()) {
      return header.status();
    }
    batch_ = std::move(read->batches.front());
    batch_first_ = header->base_offset;
    batch_last_ = header->base_offset + header->last_offset_delta;
    position_ = RecordPosition();
  }
  Result<Record> record = DecodeRecordAt(batch_, offset, /*verify_crc=*/false, &position_);
  if (!record.ok()) {
    if (record.status().code() == StatusCode::kNotFound) {
      return std::optional<Record>();
    }
    return record.status();
  }
  ++records_read_;
  return std::optional<Record>(std::move(record).value());
}

void LogPointReader::Release() {
  batch_.clear();
  batch_.shrink_to_fit();
  batch_last_ = -1;
}

Result<LogRecord*> IndexStream::Peek() {
  while (!head_.has_value()) {
    if (timed_out_) {
      return nullptr;
    }
    if (next_ == page_.size()) {
      if (exhausted_) {
        reader_.Release();
        return nullptr;
      }
      Result<std::vector<IndexHit>> hits = NextHits();
      if (!hits.ok()) {
        return hits.status();
      }
      exhausted_ = hits->size() < kPage;
      page_ = std::move(hits).value();
      next_ = 0;
      continue;
    }
    if (deadline_ != nullptr && ++hits_seen_ % kPage == 0 && deadline_->Passed()) {
      timed_out_ = true;
      return nullptr;
    }
    const IndexHit& hit = page_[next_++];
    if (hit.offset >= covered_end_ || hit.offset < start_) {
      continue;  // the tail scan has it, or retention took it (a later removal: ReadHit)
    }
    Result<std::optional<Record>> record = reader_.Read(hit.offset);
    if (!record.ok()) {
      return record.status();
    }
    if (!record->has_value() || (*record)->timestamp_ms != hit.ts_ms ||
        !filter_.Matches(**record)) {
      continue;  // gone, or not the record that was indexed (the indexer catches up)
    }
    head_ = LogRecord{hit.offset, std::move(**record)};
    if (next_ < page_.size() && !reader_.Holds(page_[next_].offset)) {
      reader_.Release();  // the next hit is elsewhere: hold no batch while waiting in the merge
    }
  }
  return &*head_;
}

}  // namespace sluice::broker
