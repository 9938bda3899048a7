// PartitionIndex: a partition's secondary index (issue 12, first step: the store; the indexer
// that tails the log and the query that uses it come next), kept beside the segments in its own
// LevelDB and rebuildable from them at any time, so nothing in it has to be durable: writes are
// not synced, and after a crash the index resumes from the last offset it recorded as covered.
//
// Key families (all big-endian, so LevelDB's byte order is the query order):
//   'd' u16 len | device id | ts | offset   a device's records by (timestamp, offset)
//   't' ts | offset                        every record by (timestamp, offset)
//   'o' offset -> u16 len | device | ts    by offset, to drop entries below the log start
//                                          (retention) or from a truncation point (a follower's
//                                          KIP-101 truncation) without a full scan
//   'm' "covered"                          the next offset to index (u64)
// Timestamps are stored with their sign bit flipped, so negative ones order first.
// A record batch's entries and the new covered offset are one WriteBatch: the index never
// claims to cover an offset whose entries it lacks.
// Thread-safety: thread-safe (LevelDB's own; Add calls are expected from one indexer).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace leveldb {
class DB;
}  // namespace leveldb

namespace sluice::broker {

struct IndexEntry {
  int64_t offset = 0;
  int64_t ts_ms = 0;
  std::string device_id;  // the record key; empty: not in the device family
};

// One hit, in (ts_ms, offset) order.
struct IndexHit {
  int64_t ts_ms = 0;
  int64_t offset = 0;
  bool operator==(const IndexHit&) const = default;
};

// Where a page ended: the next page starts strictly after it.
struct IndexCursor {
  int64_t ts_ms = 0;
  int64_t offset = 0;
};

class PartitionIndex {
 public:
  static constexpr size_t kMaxDeviceIdBytes = 1024;  // Kafka keys Sluice accepts (record_batch.h)

  // Opens (creating) the index in `dir`. kCorruption/kIOError from LevelDB.
  static Result<std::unique_ptr<PartitionIndex>> Open(const std::string& dir);
  ~PartitionIndex();
  PartitionIndex(const PartitionIndex&) = delete;
  PartitionIndex& operator=(const PartitionIndex&) = delete;

  // The next offset to index (0 for a new index).
  int64_t covered() const { return covered_.load(); }

  // Adds entries (offsets >= covered(), any order) and sets covered to `covered_to`
  // (> every entry's offset). kInvalidArgument for an entry below covered() or a device id
  // longer than kMaxDeviceIdBytes; nothing is written then.
  Status Add(const std::vector<IndexEntry>& entries, int64_t covered_to);

  // The device's hits with from_ms <= ts < to_ms, after `after` when given, at most `limit`.
  Result<std::vector<IndexHit>> Device(const std::string& device_id, int64_t from_ms,
                                       int64_t to_ms, const std::optional<IndexCursor>& after,
                                       size_t limit) const;
  // Every hit with from_ms <= ts < to_ms, after `after` when given, at most `limit`.
  Result<std::vector<IndexHit>> Time(int64_t from_ms, int64_t to_ms,
                                     const std::optional<IndexCursor>& after, size_t limit) const;

  // Removes the entries of offsets < start_offset (retention deleted those segments).
  Status DropBelow(int64_t start_offset);
  // Removes the entries of offsets >= offset and lowers covered() to it (the log was cut there).
  Status TruncateFrom(int64_t offset);

 private:
  PartitionIndex(std::unique_ptr<leveldb::DB> db, int64_t covered);
  Result<std::vector<IndexHit>> Scan(const std::string& prefix, int64_t from_ms, int64_t to_ms,
                                     const std::optional<IndexCursor>& after,
                                     size_t limit) const;
  // Deletes the entries of offsets in [from, to).
  Status DropRange(int64_t from, int64_t to, std::optional<int64_t> new_covered);

  std::unique_ptr<leveldb::DB> db_;
  std::atomic<int64_t> covered_{0};  // read by queries while the indexer adds
};

}  // namespace sluice::broker
