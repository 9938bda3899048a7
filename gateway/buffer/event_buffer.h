// EventBuffer: the gateway's durable store-and-forward queue on LevelDB.
//
// Appenders (HTTP handlers, the MQTT callback) call Append(), which encodes and checksums the
// events on the caller's thread; a single commit thread drains everything queued, assigns gateway
// sequences (monotonic, never reused, surviving restarts), writes ONE WriteBatch holding one
// chunk per region (event_codec.h) and "m/next_seq", and then completes every callback. So many
// requests share one fsync, and sequence order equals key order per region: a reader's cursor
// can never skip a record that is written later with a smaller sequence.
//
// Durability: SyncMode::kAlways acknowledges after a synced write. SyncMode::kInterval writes
// without sync and issues a tiny synced write every sync_interval_ms; on power loss or an OS
// crash up to sync_interval_ms of acknowledged events can be lost (a process crash loses none).
//
// Removal: a chunk is deleted once every record in it was removed, dead-lettered, quarantined or
// evicted. Which records of a partly delivered chunk are done is kept in memory only (for the
// chunks a reader has touched, so bounded by what is in flight); after a restart such a chunk
// is sent again whole and the broker skips what it already stored (idempotent producer).
//
// Bounds: max_bytes (see OverflowPolicy) and ExpireOlderThan() (TTL by ingest time). Evictions
// delete whole chunks from the head of a region queue (a chunk expires when its youngest record
// does); a record evicted while a forwarder holds it is skipped by the later Remove/DeadLetter,
// so the counters stay exact. Every eviction is counted.
// Open() verifies every queued record's CRC in one streaming scan and moves corrupt ones to "x/".
//
// Reading (one forwarder per region): ReadBatch() seeks from a cursor (never from the first key,
// which would re-scan tombstones), Remove()/DeadLetter() after the broker answered. A corrupt
// record is moved to the "x/" key space and counted; it never stops reading.
// Thread-safety: all methods are thread-safe. Callbacks and commit listeners run on the commit
// thread and must not block on the buffer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/metrics.h"
#include "core/record.h"
#include "core/status.h"
#include "gateway/buffer/buffer_options.h"

namespace leveldb {
class DB;
class WriteBatch;
struct WriteOptions;
}  // namespace leveldb

namespace sluice::gateway {

class EventBuffer {
 public:
  static Result<std::unique_ptr<EventBuffer>> Open(const BufferOptions& options);
  ~EventBuffer();  // StopAppends(), then closes the DB
  EventBuffer(const EventBuffer&) = delete;
  EventBuffer& operator=(const EventBuffer&) = delete;

  void Append(std::vector<PendingEvent> events, AppendCallback done);
  std::future<Status> Append(std::vector<PendingEvent> events);
  // As above with an explicit overflow policy (the others use options.overflow) and, for appends
  // nobody waits for, AppendWait::kUnacknowledged.
  void Append(std::vector<PendingEvent> events, AppendCallback done, OverflowPolicy policy,
              AppendWait wait = AppendWait::kAcknowledged);
  // Commits what is queued, then fails later appends with kUnavailable. Idempotent.
  void StopAppends();

  // Up to max_records entries (and about max_bytes; at least one) of `region` with seq >= cursor.
  Result<ReadBatchResult> ReadBatch(const RegionId& region, uint64_t cursor, size_t max_records,
                                    size_t max_bytes);
  // Deletes the given records in one WriteBatch (after the broker acknowledged them).
  Status Remove(const RegionId& region, const std::vector<BufferedRecord>& records);
  // Moves the given records to "d/<region>/<seq>" in one WriteBatch.
  // *newly (if given) gets how many were not dead-lettered already: a chunk partly done before a
  // restart is read whole again, and its refused records are refused again.
  Status DeadLetter(const RegionId& region, const std::vector<BufferedRecord>& records,
                    size_t* newly = nullptr);
  // Moves never-sent records of `from` to the queue of `to` (residency failover, `failover:
  // next_allowed`), in ONE synced WriteBatch through the commit thread: they are marked done in
  // `from` and appended to `to` with NEW sequences (the broker of `to` may have stored later
  // sequences of this gateway on the same partition already; reusing the old ones would make it
  // skip them as duplicates). A crash leaves each record in exactly one queue. Records evicted
  // meanwhile are not moved. `done` gets the commit's status and the first new sequence.
  // Contract: at most one Reroute from a given region outstanding at a time (its forwarder waits
  // for `done`), so two moves never rewrite the same chunk in one commit.
  void Reroute(const RegionId& from, std::vector<BufferedRecord> records, const RegionId& to,
               AppendCallback done);
  // Records kept in the residency quarantine (PendingEvent::refused_reason), counted at open.
  uint64_t residency_quarantined() const { return residency_quarantined_.load(); }
  // Sequences of the entries in key space `space` ('q', 'd', 'x' or 'r') of `region`. Test/ops
  // aid (the residency quarantine's region is kResidencyQuarantine).
  std::vector<uint64_t> ListKeys(char space, const RegionId& region);

  // Deletes queued records whose ingest time is < cutoff_ms (scanning each region from its head,
  // stopping at the first younger record); returns how many, counted reason="ttl".
  uint64_t ExpireOlderThan(int64_t cutoff_ms);
  // Compacts the key range of regions with many removals since the last call, so that tombstones
  // of delivered records do not slow reads down. Cheap when there is nothing to do.
  void CompactRemoved(uint64_t min_removed = 100000);

  // `fn` runs on the commit thread after each successful commit that added records of `region`
  // (its forwarder wakes on it); commits of other regions do not call it.
  void AddCommitListener(const RegionId& region, std::function<void()> fn);

  uint64_t buffered_records(const RegionId& region) const;
  uint64_t buffered_bytes(const RegionId& region) const;
  uint64_t total_buffered_records() const;
  uint64_t total_buffered_bytes() const { return static_cast<uint64_t>(total_bytes_.load()); }
  uint64_t quarantined() const { return quarantined_.load(); }
  uint64_t dropped_oldest() const { return dropped_oldest_.load(); }
  uint64_t expired() const { return expired_.load(); }
  uint64_t next_seq() const { return next_seq_.load(); }
  // Not OK once a LevelDB write failed; from then on every write is refused (kUnavailable).
  // LevelDB keeps appending to its log after a failed, possibly partial record, and a record
  // acknowledged after that can be lost at the next open: only reopening the buffer (a
  // restart) is safe, and it recovers everything acknowledged before the failure.
  Status write_failure() const;
  // Bytes an unprivileged writer may still use on the buffer's filesystem; -1 if unknown.
  int64_t DiskFreeBytes() const;
  // OK if an append of up to one chunk (64 KiB) would be taken with `disk_free_bytes`
  // (DiskFreeBytes()) free; else why not (write_failure(), or "disk full").
  Status Writable(int64_t disk_free_bytes) const;

 private:
  struct Request {
    std::string blob;  // every encoded value, back to back (one allocation per request)
    std::vector<std::pair<std::string, size_t>> entries;  // region, end offset in blob
    int64_t bytes = 0;                                        // ChunkRecordBytes of all
    AppendCallback done;
    // Reroute: the records leave this queue in the same write (seq and bytes only).
    std::string moved_from;
    std::vector<BufferedRecord> moved;
  };
  // A chunk a reader has touched and that still holds records not done with.
  struct OpenChunk {
    uint64_t first = 0;      // sequence of its first record
    int64_t live = 0;        // records neither removed, dead-lettered nor quarantined
    std::vector<bool> done;  // by seq - first
    bool IsDone(uint64_t seq) const { return seq >= first && seq - first < done.size() && done[seq - first]; }
  };
  struct RegionStats {
    std::atomic<int64_t> records{0};
    std::atomic<int64_t> bytes{0};
    uint64_t head_hint = 0;      // evict_mu_: no live "q/" key below this
    std::map<uint64_t, OpenChunk> open_chunks;  // evict_mu_: by chunk key seq
    uint64_t dropped_below = 0;  // evict_mu_: every key below was evicted or removed
    uint64_t removed = 0;        // evict_mu_: removals since the last CompactRange
    uint64_t max_removed = 0;    // evict_mu_
  };

  explicit EventBuffer(const BufferOptions& options);
  Status Init();
  void CommitLoop();
  // mu_ held: why an append (or move) must be refused now whatever it holds (stopping, a failed
  // write), or OK.
  Status RefusalLocked() const;
  void CommitRequests(std::vector<Request>& reqs);
  // Every LevelDB write goes through here: refused once one failed (see write_failure()).
  Status Write(const leveldb::WriteOptions& options, leveldb::WriteBatch* batch);
  // Commit thread: kResourceExhausted "disk full" if writing `bytes` would leave less than
  // min_free_bytes on the buffer's filesystem.
  Status CheckFreeSpaceForCommit(int64_t bytes);
  // The same for a given free-space figure (-1: unknown, never refused).
  Status FreeSpaceStatus(int64_t free_bytes, int64_t bytes) const;
  RegionStats& Stats(const std::string& region) const;
  void Adjust(RegionStats& rs, int64_t records, int64_t bytes);
  // evict_mu_ held. Deletes the live prefix of `region` while the records are older than
  // cutoff_ms (cutoff_ms < 0: any age) until `goal_bytes` are freed; returns records deleted.
  uint64_t EvictPrefixLocked(const std::string& region, int64_t goal_bytes, int64_t cutoff_ms,
                             int64_t* freed);
  void MakeRoom(int64_t bytes);  // commit thread: kDropOldest
  void CountDrop(const char* reason, uint64_t n);
  // Removes from `records` those below the region's dropped_below (evict_mu_ held).
  std::vector<const BufferedRecord*> LiveLocked(RegionStats& rs,
                                                const std::vector<BufferedRecord>& records);
  Status VerifyAtOpen(uint64_t* next);
  // evict_mu_ held. The open chunk holding `seq` (loaded from the DB when no reader touched it
  // yet), or nullptr when no chunk holds it; *key_seq gets the chunk's key.
  OpenChunk* FindChunkLocked(const std::string& region, RegionStats& rs, uint64_t seq,
                             uint64_t* key_seq);
  // evict_mu_ held. MarkDoneLocked, then one (unsynced) write and the counters.
  Status RemoveLocked(const std::string& region, RegionStats& rs,
                      const std::vector<const BufferedRecord*>& live);
  // evict_mu_ held. Marks the records done in their chunks, adding the deletes of chunks left
  // empty to `batch`; returns how many were live (not done before) and their bytes.
  std::pair<int64_t, int64_t> MarkDoneLocked(const std::string& region, RegionStats& rs,
                                             const std::vector<const BufferedRecord*>& records,
                                             leveldb::WriteBatch* batch);
  // evict_mu_ held. As MarkDoneLocked, and also rewrites each chunk that keeps other records
  // without the given ones (in `batch`): unlike a removal, a move must not come back after a
  // restart (the record would then be in two queues, and reach two regions).
  std::pair<int64_t, int64_t> MoveOutLocked(const std::string& region, RegionStats& rs,
                                            const std::vector<const BufferedRecord*>& records,
                                            leveldb::WriteBatch* batch);
  // evict_mu_ held. Indexes a chunk's records as an OpenChunk (replacing any); nullptr if the
  // chunk holds no readable record.
  OpenChunk* AddOpenChunkLocked(RegionStats& rs, uint64_t key_seq, std::string_view chunk);
  // Moves the corrupt records of one chunk (and its unreadable tail, if any) to "x/" and
  // rewrites the chunk with the rest (*kept; deleted when empty), in one write. Returns how many
  // were quarantined (0 if the write failed), their sequences in *bad_seqs, adds their bytes.
  int64_t QuarantineChunk(const std::string& region, uint64_t key_seq, std::string_view chunk,
                          std::string* kept, std::vector<uint64_t>* bad_seqs, int64_t* bytes);
  void CountQuarantined(uint64_t n);

  BufferOptions options_;
  std::unique_ptr<leveldb::DB> db_;
  Counter* quarantined_metric_ = nullptr;
  Counter* dropped_oldest_metric_ = nullptr;
  Counter* expired_metric_ = nullptr;
  std::atomic<uint64_t> quarantined_{0};
  std::atomic<uint64_t> residency_quarantined_{0};
  std::atomic<uint64_t> dropped_oldest_{0};
  std::atomic<uint64_t> expired_{0};
  std::atomic<int64_t> total_bytes_{0};
  // Bytes appended or removed (Adjust) since the commit thread last ran malloc_trim: once it
  // stops changing for kIdleBeforeTrim, freed memtables and buffers go back to the OS.
  std::atomic<int64_t> churn_bytes_{0};
  std::mutex evict_mu_;  // serialises evictions with Remove/DeadLetter/Quarantine
  std::atomic<uint64_t> next_seq_{0};
  // Commit thread only: free bytes at the last statfs minus what commits wrote since (-1: ask).
  int64_t free_estimate_ = -1;
  std::chrono::steady_clock::time_point free_checked_at_;
  std::atomic<bool> write_failed_{false};
  mutable std::mutex failure_mu_;
  Status write_failure_;  // failure_mu_

  mutable std::mutex stats_mu_;
  mutable std::map<std::string, std::unique_ptr<RegionStats>> stats_;

  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::vector<Request> queue_;
  size_t queued_events_ = 0;
  size_t acknowledged_queued_ = 0;  // queued requests someone waits for
  // When the oldest queued kUnacknowledged request must be committed (if any is queued).
  std::chrono::steady_clock::time_point unacknowledged_deadline_;
  int64_t queued_bytes_ = 0;  // bytes of queued requests, for the kReject check
  bool stopping_ = false;
  bool dirty_ = false;  // kInterval: unsynced writes since the last sync
  std::vector<std::pair<std::string, std::function<void()>>> listeners_;  // region, fn
  std::thread commit_thread_;
};

}  // namespace sluice::gateway
