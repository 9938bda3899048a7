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
// total size; start_offset() then advances (and the first leader epoch's start with it).
//
// Ends (each <= the next): high_watermark() (== end_offset(): the readable end; Read and
// OffsetForTimestamp stop there) <= log_end_offset() (written). durable_end_offset() is the
// fsynced end. Unmanaged (LogOptions::managed_high_watermark false, a single-broker region) the
// high watermark follows the durable end under kAlways and the written end otherwise, as before
// replication. Managed (a replica), only SetHighWatermark moves it.
//
// Replication (partition_replica.cc, partition_truncate.cc): a leader appends with
// Append(batch, epoch), which stamps partitionLeaderEpoch; a follower stores the leader's bytes
// at the leader's offsets with AppendAsFollower; TruncateTo cuts the log back (KIP-101). Files
// beside the segments, in Kafka's checkpoint text format (checkpoint_file.h):
//   leader-epoch-checkpoint    (epoch, start offset) per leader epoch (leader_epoch_cache.h);
//                              rebuilt from the batch headers when missing or unreadable
//   high-watermark-checkpoint  the high watermark, written by CheckpointHighWatermark
//   truncation-checkpoint      a TruncateTo in progress (its target); Open completes it
// A single-broker region's segments are unchanged; its only new file is an empty
// leader-epoch-checkpoint (`0`, `0`), written at the first start of a non-empty log without one
// so that the header scan is not repeated at every start.
//
// Open files: none of its own; segment .log files go through the shared FileCache
// (log.max_open_files), which closes the least recently used (fsyncing written ones first) and
// reopens them on demand, so any number of partitions fit a bounded number of descriptors. A
// failed open (EMFILE: kUnavailable) fails the one append or read.
// Thread-safety: thread-safe. A shared mutex per partition: appends exclude each other and
// reads; reads run in parallel; fsyncs run outside it (except TruncateTo's, which holds it
// exclusively for the whole cut); partitions never contend.
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
#include "cloud-broker/log/leader_epoch_cache.h"
#include "cloud-broker/log/log_options.h"
#include "cloud-broker/log/segment.h"
#include "core/clock.h"
#include "core/record.h"
#include "core/status.h"

namespace sluice::broker {

struct BatchFrame;

class PartitionLog {
 public:
  // Opens (creating if needed) the log in `dir` and recovers it.
  static Result<std::unique_ptr<PartitionLog>> Open(const std::string& dir,
                                                    const LogOptions& options);
  ~PartitionLog();

  // Appends one encoded batch, assigning it the next offsets, and returns its base offset once
  // the flush policy allows. Atomic per batch: on failure the log is unchanged (kInvalidArgument
  // for bad bytes, kResourceExhausted when the disk is full, kIOError otherwise). The batch's
  // partitionLeaderEpoch becomes latest_epoch() if the log has one; else it stays as sent.
  Result<int64_t> Append(std::string encoded_batch);
  // The leader's append: as Append, and stamps `leader_epoch` into partitionLeaderEpoch; a new
  // epoch is recorded as starting at the batch's base offset. kInvalidArgument for a negative
  // epoch, kFailedPrecondition for one below latest_epoch() (a deposed leader).
  Result<int64_t> Append(std::string encoded_batch, int32_t leader_epoch);
  // The follower's append: stores the leader's batch byte for byte (offsets and epoch as the
  // leader assigned them) after checking its framing and CRC (kInvalidArgument). Its baseOffset
  // must equal log_end_offset(), else kFailedPrecondition saying gap or overlap, and nothing is
  // stored. An epoch above latest_epoch() is recorded as starting at the base offset. Same flush
  // policy and errors as Append; returns the base offset.
  Result<int64_t> AppendAsFollower(std::string encoded_batch);

  // Removes every record at offset >= `offset` (Kafka's truncateTo): a batch holding `offset`
  // goes whole, so log_end_offset() becomes that batch's base offset (the end of the last batch
  // kept, if `offset` falls in a hole). Later segments are deleted, the containing one cut with
  // its indexes, the high watermark, durable end and leader epochs lowered to match. Durable on
  // return, and crash-safe: a truncation-checkpoint names the target first, so a crash at any
  // point reopens with no record at or past it. No-op if offset >= log_end_offset();
  // kInvalidArgument below start_offset(). An append (or Flush) still waiting for its fsync
  // when a truncation runs fails with kFailedPrecondition: its records may be gone.
  Status TruncateTo(int64_t offset);
  // Whole stored batches from the one holding `from`, up to the log end (not the high
  // watermark: what a follower fetches), at least one, then while within max_bytes.
  // kInvalidArgument if from is outside [start_offset, log_end_offset]; kCorruption for a batch
  // whose framing is damaged (a follower must not skip it).
  Result<LogBatches> ReadBatches(int64_t from, size_t max_bytes) const;

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
  int64_t end_offset() const { return high_watermark(); }  // readable end
  int64_t next_offset() const { return end_offset(); }
  int64_t high_watermark() const { return high_watermark_.load(); }
  int64_t log_end_offset() const;      // written end: where the next batch goes
  int64_t durable_end_offset() const;  // fsynced end
  // Managed only (else kFailedPrecondition): raises the high watermark to min(offset,
  // log_end_offset()) and returns it; a lower value changes nothing. Fires on_visible when it
  // advanced.
  Result<int64_t> SetHighWatermark(int64_t offset);
  // Writes the high watermark to high-watermark-checkpoint (atomically); a managed log reopens
  // from it, clamped to [start_offset, recovered log end].
  Status CheckpointHighWatermark();
  // Leader epochs (leader_epoch_cache.h): the latest (-1: none), KIP-279's answer for `epoch`
  // against this log's end, and every entry.
  // A replica becoming leader for `epoch` records it as starting at the log end, before any
  // append (KIP-101: a follower asking for the end of an older epoch is told where this leader
  // started). Ok for the latest epoch again; kFailedPrecondition for an older one. An entry
  // with no batch after it is dropped when the log is reopened.
  Status AssignLeaderEpoch(int32_t epoch);
  int32_t latest_epoch() const;
  EpochEndOffset EndOffsetForEpoch(int32_t epoch) const;
  std::vector<EpochEntry> epoch_entries() const;
  uint64_t size_bytes() const;
  // How many times TruncateTo cut the log since it was opened: a reader that derived state from
  // its records (an index) re-derives it when this changes.
  uint64_t truncations() const { return truncations_.load(); }
  size_t segment_count() const;
  const LogOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }
  // Bytes cut from torn or corrupt tails, and index files rebuilt, when this log was opened.
  uint64_t recovery_truncated_bytes() const { return truncated_bytes_; }
  size_t rebuilt_indexes() const { return rebuilt_indexes_; }
  // Process-wide count of distinct corrupt batches found in old segments.
  static uint64_t CorruptBatchesTotal();

 private:
  enum class AppendMode { kLeader, kFollower };
  static constexpr int32_t kKeepEpoch = -1;
  PartitionLog(std::string dir, LogOptions options);
  // Append's body: kLeader assigns offsets and stamps `epoch` (kKeepEpoch: leave the field);
  // kFollower checks the batch's own base offset against the end.
  Result<int64_t> DoAppend(std::string batch, const BatchFrame& frame, AppendMode mode,
                           int32_t epoch);
  Status Recover();                                  // partition_recovery.cc
  // Loads leader-epoch-checkpoint and fits it to the recovered log, or rebuilds it from the
  // batch headers (partition_replica.cc).
  Status LoadEpochs();
  // The high watermark at Open: recovered end, or (managed) the checkpoint clamped.
  void LoadHighWatermark();
  // Completes a truncation a crash interrupted (partition_truncate.cc).
  Status FinishPendingTruncation();
  // Finds where to cut for TruncateTo(offset): segment, position and new end (mu_ held).
  Status FindCut(int64_t offset, size_t* seg_i, uint64_t* position, int64_t* new_end) const;
  // Rescans the (new) active segment after a cut: indexes and timestamp bookkeeping.
  Status ReindexActive();
  Status RecoverActive(Segment& seg);                // partition_recovery.cc
  Status RecoverOld(Segment& seg, int64_t end);      // partition_recovery.cc
  Status ScanSegment(Segment& seg, bool verify_crc, SegmentIndex* rebuilt, uint64_t* valid_end,
                     int64_t* next, std::string* why);
  Status Roll();
  // Adds the batch to the active segment's in-memory indexes (persisted at roll and Flush).
  void IndexBatch(Segment& seg, int64_t base, int64_t last, int64_t max_ts, uint64_t position,
                  uint64_t size);
  // Group commit: returns once everything up to `end` is fsynced. `gen`: truncations_ when
  // `end` was read; a truncation since fails the wait (kFailedPrecondition).
  Status SyncTo(int64_t end, uint64_t gen);
  // Stops the partition after a failed fsync (see sync_failure_).
  void RecordSyncFailure(const Status& st);
  // Unmanaged: raises the high watermark to `end` unless a truncation (gen) intervened, then
  // fires on_visible if it advanced. Takes mu_ shared; call with no lock held.
  void PublishVisible(int64_t end, uint64_t gen);
  std::string FilePath(const char* name) const { return dir_ + "/" + name; }
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
  // Written under mu_ (exclusive, or shared by a CAS that only raises it); read anywhere.
  std::atomic<int64_t> high_watermark_{0};
  // TruncateTo count, changed with mu_ exclusive and flush_mu_ held (SyncTo's target check).
  std::atomic<uint64_t> truncations_{0};
  LeaderEpochCache epochs_;  // guarded by mu_
  std::mutex hwm_file_mu_;   // serialises CheckpointHighWatermark
  uint64_t truncated_bytes_ = 0;  // set during Open only
  size_t rebuilt_indexes_ = 0;

  mutable std::mutex flush_mu_;
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
