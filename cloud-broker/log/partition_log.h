// PartitionLog: the append-only log of one topic partition, in Kafka's on-disk layout: a
// directory `<topic>-<partition>` of segments `<20-digit base offset>.log` holding RecordBatch
// v2 bytes, each with a sparse `.index` and `.timeindex` (segment_index.h). The broker assigns
// offsets (SetBaseOffset; baseOffset is outside the CRC, so the producer's bytes are stored as
// they came otherwise). Segments roll at segment_bytes or segment_ms.
//
// Durability (README "Flush policy"): kAlways acknowledges an append only after an fsync that
// covers it; concurrent appenders share fsyncs (group commit: whoever finds no fsync running
// runs one for everything written so far; the others wait for it). Readers see only fsynced
// batches under kAlways. kInterval acknowledges after write(); an fsync follows every
// flush_bytes (in the appending thread) and every flush_ms (MaybeFlush, from the store's
// maintenance thread). kNever leaves it to the OS and to segment rolls.
// A failed write (disk full: kResourceExhausted) is cut back: the log is unchanged.
//
// Recovery (Open, partition_recovery.cc): the active segment is CRC-checked and cut at the first
// torn or corrupt batch; an old segment's indexes are validated and rebuilt from the .log when
// missing or damaged. Readers skip a corrupt batch in an old segment (counted, logged once).
// Retention (ApplyRetention) deletes whole non-active segments by age (largest timestamp) or
// total size; start_offset() then advances.
// Open files: none of its own; segment .log files go through the shared FileCache
// (log.max_open_files), which closes the least recently used (fsyncing written ones first) and
// reopens them on demand, so any number of partitions fit a bounded number of descriptors. A
// failed open (EMFILE: kUnavailable) fails the one append or read.
// Thread-safety: thread-safe. A shared mutex per partition: appends exclude each other and
// reads; reads run in parallel; fsyncs run outside it; partitions never contend.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cloud-broker/log/file_ops.h"
#include "cloud-broker/log/segment.h"
#include "core/clock.h"
#include "core/record.h"
#include "core/status.h"

namespace sluice::broker {

struct BatchFrame;

enum class FlushPolicy {
  kAlways,    // fsync (group-committed) before acknowledging
  kInterval,  // acknowledge after write(); fsync every flush_ms and/or flush_bytes
  kNever,     // leave flushing to the OS (and to segment rolls)
};

struct LogOptions {
  int64_t segment_bytes = 128LL * 1024 * 1024;
  int64_t segment_ms = 7LL * 24 * 3600 * 1000;  // -1: never roll by age
  int64_t index_interval_bytes = 4096;
  FlushPolicy flush = FlushPolicy::kAlways;
  int64_t flush_ms = 1000;      // kInterval; -1: no timed fsync
  int64_t flush_bytes = -1;     // kInterval; -1: no size-triggered fsync
  int64_t retention_ms = -1;    // -1: keep forever
  int64_t retention_bytes = -1; // -1: no size limit
  Clock* clock = &SystemClock::Instance();
  FileOps* file_ops = &FileOps::Default();
  FileCache* file_cache = nullptr;  // nullptr: FileCache::Default()
  // Called with no lock held whenever new records become readable (long-poll wake-up).
  std::function<void()> on_visible;
};

// A record read back, with its absolute offset.
struct LogRecord {
  int64_t offset = 0;
  Record record;
};

struct LogReadResult {
  std::vector<LogRecord> records;
  int64_t next_offset = 0;  // offset to read from next
  int64_t end_offset = 0;   // the log's readable end (high watermark) when read
  int64_t start_offset = 0;
};

class PartitionLog {
 public:
  // Opens (creating if needed) the log in `dir` and recovers it.
  static Result<std::unique_ptr<PartitionLog>> Open(const std::string& dir,
                                                    const LogOptions& options);
  ~PartitionLog();

  // Appends one encoded batch, assigning it the next offsets, and returns its base offset once
  // the flush policy allows. Atomic per batch: on failure the log is unchanged (kInvalidArgument
  // for bad bytes, kResourceExhausted when the disk is full, kIOError otherwise).
  Result<int64_t> Append(std::string encoded_batch);

  // Records with offset >= from: at most max_records, and whole batches while their total size
  // stays within max_bytes (at least one batch). kInvalidArgument (HTTP 416) if from is outside
  // [start_offset, end_offset]. Corrupt batches are skipped (CorruptBatchesTotal()).
  Result<LogReadResult> Read(int64_t from, size_t max_records, size_t max_bytes) const;
  // First offset whose record timestamp is >= timestamp; end_offset() if none.
  Result<int64_t> OffsetForTimestamp(int64_t timestamp) const;

  // Deletes old segments past retention (never the active one), oldest first: by size, and by
  // age of min(largest record timestamp, time of the segment's last append). Returns how many.
  size_t ApplyRetention();
  // kInterval: fsyncs if unflushed data is older than flush_ms.
  Status MaybeFlush();
  // fsyncs everything written so far.
  Status Flush();

  int64_t start_offset() const;
  int64_t end_offset() const;                        // readable end
  int64_t next_offset() const { return end_offset(); }
  uint64_t size_bytes() const;
  size_t segment_count() const;
  const LogOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }
  // Bytes cut from torn or corrupt tails, and index files rebuilt, when this log was opened.
  uint64_t recovery_truncated_bytes() const { return truncated_bytes_; }
  size_t rebuilt_indexes() const { return rebuilt_indexes_; }
  // Process-wide count of distinct corrupt batches found in old segments.
  static uint64_t CorruptBatchesTotal();

 private:
  PartitionLog(std::string dir, LogOptions options);
  Status Recover();                                  // partition_recovery.cc
  Status RecoverActive(Segment& seg);                // partition_recovery.cc
  Status RecoverOld(Segment& seg, int64_t end);      // partition_recovery.cc
  Status ScanSegment(Segment& seg, bool verify_crc, SegmentIndex* rebuilt, uint64_t* valid_end,
                     int64_t* next, std::string* why);
  Status Roll();
  // Adds the batch to the active segment's in-memory indexes (persisted at roll and Flush).
  void IndexBatch(Segment& seg, int64_t base, int64_t last, int64_t max_ts, uint64_t position,
                  uint64_t size);
  // Group commit: returns once everything up to `end` is fsynced.
  Status SyncTo(int64_t end);
  // Stops the partition after a failed fsync (see sync_failure_).
  void RecordSyncFailure(const Status& st);
  void SetVisible(int64_t end);
  size_t SegmentFor(int64_t offset) const;
  void ReportCorrupt(const Segment& seg, uint64_t position, const std::string& why) const;
  // Frames the batch at *pos; on bad framing reports it, moves *pos to the next index entry (0:
  // none left in the segment) with its offset in *skipped_to, and yields false.
  Result<bool> FrameAt(const Segment& seg, uint64_t seg_size, uint64_t* pos, std::string* header,
                       BatchFrame* frame, int64_t* skipped_to) const;

  const std::string dir_;
  const LogOptions options_;
  mutable std::shared_mutex mu_;
  // Where a file the cache closes later reports a failed fsync: this log until its destructor
  // detaches it (a cached file may be closed, by another partition's eviction, after this log
  // and its members are gone).
  struct SyncFailureSink {
    std::mutex mu;
    PartitionLog* log = nullptr;  // guarded by mu
  };
  std::shared_ptr<SyncFailureSink> sync_sink_ = std::make_shared<SyncFailureSink>();
  SegmentEnv files_;  // before segments_: they use it until destroyed
  std::vector<std::shared_ptr<Segment>> segments_;  // ascending base offsets; last is active
  int64_t next_offset_ = 0;                          // written end (guarded by mu_)
  std::atomic<int64_t> visible_end_{0};
  uint64_t truncated_bytes_ = 0;  // set during Open only
  size_t rebuilt_indexes_ = 0;

  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool flushing_ = false;          // guarded by flush_mu_
  int64_t durable_end_ = 0;        // guarded by flush_mu_
  std::atomic<uint64_t> unflushed_bytes_{0};
  std::atomic<int64_t> last_flush_us_{0};
  // A failed fsync stops the partition (Kafka takes the log dir offline; after a failed fsync
  // the page cache may no longer match the disk, so later syncs could "succeed" over lost
  // writes, and a refused batch's bytes would become readable with the next sync): every later
  // append fails until a restart recovers the log from what is on disk.
  std::string sync_failure_;  // guarded by flush_mu_; empty: healthy
  std::atomic<bool> sync_failed_{false};
  mutable std::mutex corrupt_mu_;
  mutable std::vector<std::pair<std::string, uint64_t>> corrupt_seen_;
};

}  // namespace sluice::broker
