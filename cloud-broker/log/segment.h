// Segment: one file set of a partition log, Kafka's layout: `<20-digit base offset>.log` holding
// RecordBatch v2 bytes back to back exactly as Kafka stores them, plus its SegmentIndex
// (`.index`, `.timeindex`). The segment knows bytes, not batches: PartitionLog frames them and
// decides when to add index entries.
// Thread-safety: ReadAt may run concurrently with itself and with Append (it only reads bytes
// below the size it was given) and Sync may run concurrently with Append; Append, Truncate and
// the index mutators need external exclusion (PartitionLog holds its mutex exclusively).
// Descriptors: the segment holds none of its own. The .log is opened through the shared
// FileCache for each operation (cached, so usually already open); the indexes are opened only
// to load or persist them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cloud-broker/log/file_cache.h"
#include "cloud-broker/log/file_ops.h"
#include "cloud-broker/log/segment_index.h"
#include "core/status.h"

namespace sluice::broker {

// How a partition's segments reach their files. Owned by the PartitionLog, which outlives them.
struct SegmentEnv {
  FileOps* ops = &FileOps::Default();
  FileCache* cache = &FileCache::Default();
  // Called if an fsync made when the cache closes a written .log fails (FileCache contract).
  std::function<void(const Status&)> on_close_sync_failure;
};

class Segment {
 public:
  // Opens `<dir>/<FileName(base_offset)>` and its indexes, creating empty files if missing.
  static Result<std::unique_ptr<Segment>> Open(const std::string& dir, int64_t base_offset,
                                               const SegmentEnv* files);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  int64_t base_offset() const { return base_offset_; }
  uint64_t size() const { return size_.load(std::memory_order_acquire); }
  const std::string& path() const { return path_; }
  SegmentIndex& index() { return index_; }
  const SegmentIndex& index() const { return index_; }

  // Writes `bytes` at the end of the file. On failure (kResourceExhausted when the disk is full)
  // it cuts the file back to its previous size so no partial batch stays behind (if that fails
  // too, recovery drops the torn tail).
  Status Append(std::string_view bytes);
  // Reads up to `n` bytes at `position` into *out (fewer at the end of the file).
  Status ReadAt(uint64_t position, size_t n, std::string* out) const;
  // fdatasync of the .log: everything appended before the call is durable after it returns ok.
  Status Sync();
  // Cuts the file to `new_size` bytes (recovery of a torn tail).
  Status Truncate(uint64_t new_size);
  // Unlinks the .log and index files (retention) and drops the .log from the cache unsynced.
  void RemoveFiles();

  // Largest record timestamp in the segment and the offset of its batch's last record, tracked
  // as batches are appended or scanned (-1 when empty). Used for the time index and retention.
  int64_t max_timestamp = -1;
  int64_t offset_of_max_timestamp = -1;
  // Monotonic ms when the first batch went in (segment_ms rolling); -1 when empty.
  int64_t first_append_ms = -1;
  // Wall-clock ms of the last append (after a restart: the file's modification time); -1 when
  // empty. Time retention ages a segment from min(max_timestamp, this), so a record timestamped
  // far in the future cannot keep its segment, and every later one, forever.
  int64_t last_append_wall_ms = -1;
  // Bytes appended since the last offset-index entry.
  uint64_t bytes_since_index = 0;

  // "00000000000000001234.log"
  static std::string FileName(int64_t base_offset);
  // Every file a segment at `base_offset` may create: the log and its two indexes.
  static std::vector<std::string> FileNames(int64_t base_offset);
  // Parses a segment file name; false for anything else (indexes, temp files).
  static bool ParseFileName(const std::string& name, int64_t* base_offset);

 private:
  Segment(std::string dir, int64_t base_offset, uint64_t size, const SegmentEnv* files);
  Result<std::shared_ptr<CachedFile>> File() const;

  const SegmentEnv* files_;
  std::string path_;
  int64_t base_offset_;
  std::atomic<uint64_t> size_;
  SegmentIndex index_;
};

}  // namespace sluice::broker
