// PartitionIndex: a partition's secondary index (issue 12), kept beside the segments in a
// LevelDB (StoreIndexer keeps it behind the log; RunQuery reads it) and rebuildable from them at
// any time, so nothing in it has to be durable: writes are not synced, and after a crash the
// index resumes from the last offset it recorded as covered.
//
// Every partition's keys sit under its scope ('p' u16 len | topic | u32 partition) in one
// database per broker. Key families (all big-endian, so LevelDB's byte order is the query
// order); the value of 'd', 't' and 'c' entries is the record's country (u8 len | country), so
// counts per country and country filters need no record read:
//   'd' u16 len | device id | ts | offset   a device's records by (timestamp, offset)
//   't' ts | offset                        every record by (timestamp, offset)
//   'c' u8 len | country | ts | offset     a country's records by (timestamp, offset)
//   'r' minute | u8 len | country -> u64   the number of entries of that minute (its start, a
//                                          multiple of kRollupMs, as ts) and country: counts
//                                          per bucket and country read 1,440 keys a day per
//                                          country instead of one entry per record
//   'o' end offset -> chunk                one per Add, keyed by its exclusive end: the entries
//                                          it added (offset | ts | u16 len | device | u8 len |
//                                          country), to drop entries below the log start
//                                          (retention) or from a truncation point (a follower's
//                                          KIP-101 truncation) without a full scan
//   'm' "covered"                          the next offset to index (u64)
//   'm' "dropped"                          entries below it were dropped (DropBelow; u64)
//   "!version" (outside every scope)       the layout; a database of another one is rebuilt
// Timestamps are stored with their sign bit flipped, so negative ones order first.
// A record batch's entries, their rollup counts and the new covered offset are one WriteBatch:
// the index never claims to cover an offset whose entries it lacks, and the rollups always count
// exactly the entries there are.
// Thread-safety: thread-safe (LevelDB's own; Add calls are expected from one indexer).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace leveldb {
class DB;
class Snapshot;
class WriteBatch;
}  // namespace leveldb

namespace sluice::broker {

struct IndexEntry {
  int64_t offset = 0;
  int64_t ts_ms = 0;
  std::string device_id;  // the record key; empty: not in the device family
  std::string country;    // the `country` header; empty if none
};

// One hit, in (ts_ms, offset) order.
struct IndexHit {
  int64_t ts_ms = 0;
  int64_t offset = 0;
  std::string country;
  bool operator==(const IndexHit&) const = default;
};

// Where a page ended: the next page starts strictly after it.
struct IndexCursor {
  int64_t ts_ms = 0;
  int64_t offset = 0;
};

// One moment of a partition index's rollups (PartitionIndex::Rollups): the per-minute counts
// of the entries of offsets in [dropped_below(), covered()), read from one LevelDB snapshot, so
// they never count an entry twice or miss one that the covered offset claims, whatever the
// indexer adds or drops meanwhile. Holds the snapshot until destroyed.
class RollupView {
 public:
  ~RollupView();
  RollupView(const RollupView&) = delete;
  RollupView& operator=(const RollupView&) = delete;

  int64_t covered() const { return covered_; }
  int64_t dropped_below() const { return dropped_below_; }
  // fn(minute_start_ms, country, count) for each minute with from_ms <= minute < to_ms (minute
  // order, then country) and a non-zero count; stops early when fn returns false.
  Status ForEach(int64_t from_ms, int64_t to_ms,
                 const std::function<bool(int64_t, const std::string&, uint64_t)>& fn) const;

 private:
  friend class PartitionIndex;
  RollupView(std::shared_ptr<leveldb::DB> db, std::string scope);
  std::shared_ptr<leveldb::DB> db_;
  const leveldb::Snapshot* snapshot_ = nullptr;
  std::string scope_;
  int64_t covered_ = 0;
  int64_t dropped_below_ = 0;
};

class PartitionIndex {
 public:
  static constexpr int64_t kRollupMs = 60'000;  // rollups count entries per minute
  // The start of ts's rollup minute: the multiple of kRollupMs at or below it (INT64_MIN for the
  // first, partial minute of the 64-bit range).
  static int64_t RollupMinuteOf(int64_t ts);
  static constexpr size_t kMaxDeviceIdBytes = 1024;  // Kafka keys Sluice accepts (record_batch.h)
  static constexpr size_t kMaxCountryBytes = 16;  // residency admits two letters only

  // Opens (creating) the database that holds the indexes of many partitions (a broker's
  // <data_dir>/index: one set of files and a bounded number of fds however many partitions).
  // An index of another layout version is deleted (rebuilt from the logs). kCorruption/kIOError.
  // `low_priority`: LevelDB's compaction thread at nice 19 (process-wide: the first database
  // opened decides).
  static Result<std::shared_ptr<leveldb::DB>> OpenDb(const std::string& dir,
                                                     bool low_priority = false);
  // The index of topic-partition in `db`; its keys live under their own prefix.
  static Result<std::unique_ptr<PartitionIndex>> Open(std::shared_ptr<leveldb::DB> db,
                                                      const std::string& topic,
                                                      int32_t partition);
  // A database of its own in `dir` (tests).
  static Result<std::unique_ptr<PartitionIndex>> Open(const std::string& dir);
  ~PartitionIndex();
  PartitionIndex(const PartitionIndex&) = delete;
  PartitionIndex& operator=(const PartitionIndex&) = delete;

  // The next offset to index (0 for a new index).
  int64_t covered() const { return covered_.load(); }

  // Adds entries (offsets >= covered(), any order) and sets covered to `covered_to`
  // (> every entry's offset). kInvalidArgument for an entry below covered(), a device id
  // longer than kMaxDeviceIdBytes or a country longer than kMaxCountryBytes; nothing is
  // written then.
  Status Add(const std::vector<IndexEntry>& entries, int64_t covered_to);

  // The device's hits with from_ms <= ts < to_ms, after `after` when given, at most `limit`.
  Result<std::vector<IndexHit>> Device(const std::string& device_id, int64_t from_ms,
                                       int64_t to_ms, const std::optional<IndexCursor>& after,
                                       size_t limit) const;
  // The same for the records whose country is `country`.
  Result<std::vector<IndexHit>> Country(const std::string& country, int64_t from_ms,
                                        int64_t to_ms, const std::optional<IndexCursor>& after,
                                        size_t limit) const;
  // Every hit with from_ms <= ts < to_ms, after `after` when given, at most `limit`.
  Result<std::vector<IndexHit>> Time(int64_t from_ms, int64_t to_ms,
                                     const std::optional<IndexCursor>& after, size_t limit) const;

  // The rollups as they are now, with the coverage they count (RollupView).
  Result<std::unique_ptr<RollupView>> Rollups() const;

  // Removes the entries of offsets < start_offset (retention deleted those segments).
  Status DropBelow(int64_t start_offset);
  // Removes the entries of offsets >= offset and lowers covered() to it (the log was cut there).
  Status TruncateFrom(int64_t offset);

 private:
  // Changes of rollup counts by (minute, country), applied with the entries they count.
  using RollupDeltas = std::map<std::pair<int64_t, std::string>, int64_t>;

  PartitionIndex(std::shared_ptr<leveldb::DB> db, std::string scope, int64_t covered,
                 int64_t dropped_below);
  Status ApplyRollupDeltas(const RollupDeltas& deltas, leveldb::WriteBatch* batch) const;
  Result<std::vector<IndexHit>> Scan(const std::string& prefix, int64_t from_ms, int64_t to_ms,
                                     const std::optional<IndexCursor>& after,
                                     size_t limit) const;
  // Deletes the entries of offsets in [from, to).
  Status DropRange(int64_t from, int64_t to, std::optional<int64_t> new_covered,
                   std::optional<int64_t> new_dropped_below);

  std::shared_ptr<leveldb::DB> db_;
  const std::string scope_;  // 'p' u16 len | topic | u32 partition: before every key
  std::atomic<int64_t> covered_{0};  // read by queries while the indexer adds
  std::atomic<int64_t> dropped_below_{0};
};

}  // namespace sluice::broker
