// EventBuffer: the gateway's durable store-and-forward queue on LevelDB.
//
// Appenders (HTTP handlers, the MQTT callback) call Append(); a single commit thread drains
// everything queued, assigns gateway sequences (monotonic, never reused, surviving restarts),
// writes ONE WriteBatch holding the entries and "m/next_seq", and then completes every callback.
// So many requests share one fsync, and sequence order equals key order per region: a reader's
// cursor can never skip a key that is written later with a smaller sequence.
//
// Durability: SyncMode::kAlways acknowledges after a synced write. SyncMode::kInterval writes
// without sync and issues a tiny synced write every sync_interval_ms; on power loss or an OS
// crash up to sync_interval_ms of acknowledged events can be lost (a process crash loses none:
// LevelDB has already handed the write to the OS).
//
// Reading (one forwarder per region): ReadBatch() seeks from a cursor (never from the first key,
// which would re-scan tombstones), Remove()/DeadLetter() after the broker answered. A corrupt
// entry is moved to the "x/" key space and counted; it never stops reading. Key layout: see
// event_codec.h.
// Thread-safety: all methods are thread-safe. Callbacks and commit listeners run on the commit
// thread and must not block on the buffer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "core/record.h"
#include "core/status.h"

namespace leveldb {
class DB;
class Env;
}  // namespace leveldb

namespace sluice::gateway {

enum class SyncMode { kAlways, kInterval };

struct BufferOptions {
  std::string path;
  SyncMode sync = SyncMode::kAlways;
  int64_t sync_interval_ms = 1000;
  size_t max_queued_events = 500000;   // appends past this fail fast with kResourceExhausted
  leveldb::Env* env = nullptr;         // nullptr: leveldb's default Env (tests: NewMemEnv)
  MetricsRegistry* metrics = nullptr;  // optional: sluice_gateway_quarantined_total
};

// An event to append; the buffer fills in event.gateway_seq. gateway_id is the caller's.
struct PendingEvent {
  RegionId region;
  SensorEvent event;
};

// Runs on the commit thread once the events are durable (or failed). first_seq is the sequence of
// the first event of this Append (sequences of one Append are consecutive).
using AppendCallback = std::function<void(const Status& status, uint64_t first_seq)>;

struct BufferedRecord {
  uint64_t seq = 0;
  SensorEvent event;
  size_t bytes = 0;  // key + value bytes on disk
};

struct ReadBatchResult {
  std::vector<BufferedRecord> records;
  uint64_t next_cursor = 0;  // pass to the next ReadBatch
  bool full = false;         // stopped at max_records/max_bytes with more entries after
};

class EventBuffer {
 public:
  static Result<std::unique_ptr<EventBuffer>> Open(const BufferOptions& options);
  ~EventBuffer();  // StopAppends(), then closes the DB
  EventBuffer(const EventBuffer&) = delete;
  EventBuffer& operator=(const EventBuffer&) = delete;

  void Append(std::vector<PendingEvent> events, AppendCallback done);
  std::future<Status> Append(std::vector<PendingEvent> events);
  // Commits what is queued, then fails later appends with kUnavailable. Idempotent.
  void StopAppends();

  // Up to max_records entries (and about max_bytes; at least one) of `region` with seq >= cursor.
  Result<ReadBatchResult> ReadBatch(const RegionId& region, uint64_t cursor, size_t max_records,
                                    size_t max_bytes);
  // Deletes the given records in one WriteBatch (after the broker acknowledged them).
  Status Remove(const RegionId& region, const std::vector<BufferedRecord>& records);
  // Moves the given records to "d/<region>/<seq>" in one WriteBatch.
  Status DeadLetter(const RegionId& region, const std::vector<BufferedRecord>& records);
  // Sequences of the entries in key space `space` ('q', 'd' or 'x') of `region`. Test/ops aid.
  std::vector<uint64_t> ListKeys(char space, const RegionId& region);

  // `fn` runs on the commit thread after every successful commit (forwarders wake on it).
  void AddCommitListener(std::function<void()> fn);

  uint64_t buffered_records(const RegionId& region) const;
  uint64_t buffered_bytes(const RegionId& region) const;
  uint64_t total_buffered_records() const;
  uint64_t quarantined() const { return quarantined_.load(); }
  uint64_t next_seq() const { return next_seq_.load(); }

 private:
  struct Request {
    std::vector<PendingEvent> events;
    AppendCallback done;
  };
  struct RegionStats {
    std::atomic<int64_t> records{0};
    std::atomic<int64_t> bytes{0};
  };

  explicit EventBuffer(const BufferOptions& options);
  Status Init();
  void CommitLoop();
  void CommitRequests(std::vector<Request>& reqs);
  RegionStats& Stats(const std::string& region) const;
  void Quarantine(const std::string& region, const std::vector<std::string>& keys,
                  const std::vector<std::string>& values);

  BufferOptions options_;
  std::unique_ptr<leveldb::DB> db_;
  Counter* quarantined_metric_ = nullptr;
  std::atomic<uint64_t> quarantined_{0};
  std::atomic<uint64_t> next_seq_{0};

  mutable std::mutex stats_mu_;
  mutable std::map<std::string, std::unique_ptr<RegionStats>> stats_;

  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::vector<Request> queue_;
  size_t queued_events_ = 0;
  bool stopping_ = false;
  bool dirty_ = false;  // kInterval: unsynced writes since the last sync
  std::vector<std::function<void()>> listeners_;
  std::thread commit_thread_;
};

}  // namespace sluice::gateway
