// IndexStream: one partition's matches of a query, in (timestamp, offset) order, read through the
// partition's index (cloud-broker/index/partition_index.h) below an offset it covers, each hit
// read back from the log with one record decoded (LogPointReader), not its whole batch.
// The family read is the narrowest the filter allows: the device's entries, else the country's,
// else every entry by time. Every record read is checked against the whole filter again, and a
// hit whose record is gone (retention) or differs (the log was cut and rewritten since it was
// indexed; the indexer re-indexes) is skipped: answers always come from the log.
// Memory: one page of hits (kPage) and the batch of the current hit.
// Thread-safety: one query thread; the index and log may change underneath (see above).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloud-broker/index/partition_index.h"
#include "cloud-broker/log/partition_log.h"
#include "core/record.h"
#include "core/record_batch.h"
#include "core/status.h"

namespace sluice::broker {

struct QueryDeadline;
struct QueryFilter;

// Records strictly after (ts_ms, offset) in (timestamp, offset) order; offset -1 admits every
// offset at ts_ms, INT64_MAX none.
struct AfterBound {
  int64_t ts_ms = 0;
  int64_t offset = 0;
  bool Admits(int64_t ts, int64_t off) const { return ts > ts_ms || (ts == ts_ms && off > offset); }
};

// Reads single records of one partition's log by offset, keeping the batch of the last one read
// while the next offsets fall in it (DecodeRecordAt resumes where the last record was found, so
// reading offsets in increasing order decodes each batch's records once). Without re-verifying
// the batch's CRC: the indexer verified it when it indexed the batch, and the framing is
// bounds-checked as it is decoded.
class LogPointReader {
 public:
  explicit LogPointReader(const PartitionLog& log) : log_(log) {}
  // The record at `offset`, nullopt if the log no longer holds it (retention, a cut tail).
  Result<std::optional<Record>> Read(int64_t offset);
  bool Holds(int64_t offset) const { return offset >= batch_first_ && offset <= batch_last_; }
  void Release();  // drops the batch held
  uint64_t records_read() const { return records_read_; }

 private:
  const PartitionLog& log_;
  std::string batch_;  // the batch of the last record read
  int64_t batch_first_ = 0;
  int64_t batch_last_ = -1;
  RecordPosition position_;  // of the last record decoded from batch_
  uint64_t records_read_ = 0;
};

class IndexStream {
 public:
  static constexpr size_t kPage = 256;

  // Reads hits with offsets in [log.start_offset(), covered_end). `deadline` (may be null) is
  // checked every kPage hits.
  IndexStream(const PartitionLog& log, const PartitionIndex& index, const QueryFilter& filter,
              std::optional<AfterBound> after, int64_t covered_end,
              const QueryDeadline* deadline = nullptr);

  // The next match, nullptr at the end or once the deadline passed (timed_out()). Valid until
  // Pop().
  Result<LogRecord*> Peek();
  void Pop() { head_.reset(); }
  bool timed_out() const { return timed_out_; }

  uint64_t records_read() const { return reader_.records_read(); }

 private:
  Result<std::vector<IndexHit>> NextHits();

  const PartitionIndex& index_;
  const QueryFilter& filter_;
  const int64_t covered_end_;
  const QueryDeadline* deadline_;
  const int64_t start_;  // the log start when the stream began
  bool timed_out_ = false;
  size_t hits_seen_ = 0;
  int64_t from_ms_;
  int64_t to_ms_;
  std::optional<IndexCursor> cursor_;  // after the last hit fetched
  std::vector<IndexHit> page_;
  size_t next_ = 0;
  bool exhausted_ = false;
  std::optional<LogRecord> head_;
  LogPointReader reader_;
};

// Which family an index query reads for `filter`, and its hits in [from, to) after `cursor`.
Result<std::vector<IndexHit>> IndexFamilyHits(const PartitionIndex& index,
                                              const QueryFilter& filter, int64_t from_ms,
                                              int64_t to_ms,
                                              const std::optional<IndexCursor>& cursor,
                                              size_t limit);

}  // namespace sluice::broker
