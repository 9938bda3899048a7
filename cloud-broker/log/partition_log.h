// PartitionLog: the append-only log of one topic partition, in Kafka's on-disk layout: a
// directory `<topic>-<partition>` of segments `<20-digit base offset>.log`, each holding
// RecordBatch v2 bytes. The broker assigns offsets (SetBaseOffset; baseOffset is outside the
// CRC, so the producer's bytes are stored as they came otherwise).
//
// Durability: with FlushPolicy::kAlways, Append returns only after the batch is fsynced.
// Recovery (Open): every segment is walked batch by batch; the last (active) one is also CRC
// checked. The first torn or corrupt batch and everything after it are cut off (logged and
// counted in recovery_truncated_bytes()), so a crash mid-write never stops the broker starting.
// Offsets must increase from batch to batch; a batch that breaks that is treated as corrupt.
//
// Index: an in-memory sparse index offset -> (segment, position), one entry at most every
// index_interval_bytes, rebuilt on open (the next issue persists it as .index files).
// Thread-safety: thread-safe. A shared mutex per partition: Append excludes everything else on
// this partition; reads run in parallel; different partitions never contend.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "cloud-broker/log/segment.h"
#include "core/record.h"
#include "core/status.h"

namespace sluice::broker {

enum class FlushPolicy {
  kAlways,  // fsync every append before acknowledging it
  kNever,   // leave flushing to the OS (and to segment rolls)
};

struct LogOptions {
  int64_t segment_bytes = 128LL * 1024 * 1024;
  FlushPolicy flush = FlushPolicy::kAlways;
  int64_t index_interval_bytes = 4096;
};

// A record read back, with its absolute offset.
struct LogRecord {
  int64_t offset = 0;
  Record record;
};

struct LogReadResult {
  std::vector<LogRecord> records;
  int64_t next_offset = 0;  // offset to read from next
  int64_t end_offset = 0;   // the log's next offset (high watermark) when read
};

class PartitionLog {
 public:
  // Opens (creating if needed) the log in `dir` and recovers it.
  static Result<std::unique_ptr<PartitionLog>> Open(const std::string& dir,
                                                    const LogOptions& options);

  // Appends one encoded batch, assigning it the next offsets. Atomic per batch: on failure the
  // log is unchanged (kIOError). Returns the batch's base offset.
  Result<int64_t> Append(std::string encoded_batch);

  // Reads records with offset >= from: at most max_records, and whole batches while their total
  // size stays within max_bytes (but always at least one batch, so a reader progresses).
  // kInvalidArgument if from is outside [start_offset, next_offset]; kCorruption on a bad CRC.
  Result<LogReadResult> Read(int64_t from, size_t max_records, size_t max_bytes) const;

  int64_t start_offset() const;
  int64_t next_offset() const;
  uint64_t size_bytes() const;
  size_t segment_count() const;
  // Bytes cut from torn or corrupt tails when this log was opened.
  uint64_t recovery_truncated_bytes() const { return truncated_bytes_; }
  const std::string& dir() const { return dir_; }

  // fsyncs the active segment.
  Status Flush();

 private:
  struct IndexEntry {
    int64_t offset;   // base offset of the batch at `position`
    size_t segment;   // index into segments_
    uint64_t position;
  };

  PartitionLog(std::string dir, LogOptions options)
      : dir_(std::move(dir)), options_(options) {}
  Status Recover();                                  // partition_recovery.cc
  Status RecoverSegment(size_t i, bool verify_crc);  // partition_recovery.cc
  Status Roll();
  void MaybeIndex(int64_t offset, size_t segment, uint64_t position, uint64_t size);

  const std::string dir_;
  const LogOptions options_;
  mutable std::shared_mutex mu_;
  std::vector<std::unique_ptr<Segment>> segments_;  // ascending base offsets; last is active
  std::vector<IndexEntry> index_;                   // ascending offsets
  uint64_t bytes_since_index_ = 0;
  int64_t next_offset_ = 0;
  uint64_t truncated_bytes_ = 0;  // set during Open only
};

}  // namespace sluice::broker
