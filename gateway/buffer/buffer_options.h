// Value types of the EventBuffer's interface: options, the event to append, records read back.
// Split from event_buffer.h to keep that header short; event_buffer.h includes this one.
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/record.h"
#include "core/status.h"

namespace leveldb {
class Env;
}  // namespace leveldb

namespace sluice::gateway {

enum class SyncMode { kAlways, kInterval };

// What an Append does when the buffer holds max_bytes already.
//   kReject: the append fails with a "buffer full" kResourceExhausted (IsBufferFull()); nothing
//            is stored. HTTP answers 503 + Retry-After, MQTT counts the message as dropped.
//   kDropOldest: the commit thread first deletes the oldest records of the largest region queue
//            until the new records fit, counted in sluice_gateway_dropped_total{source="buffer",
//            reason="drop_oldest"}.
enum class OverflowPolicy { kReject, kDropOldest };

// Whether anyone waits for an append's callback.
//   kAcknowledged: an HTTP 202 or an MQTT QoS 1 acknowledgement waits: committed at once (with
//                  whatever else is queued).
//   kUnacknowledged: nothing waits (MQTT QoS 0): it may wait up to
//                  BufferOptions::unacknowledged_commit_delay_ms for more to share its synced
//                  write, so a stream of QoS 0 messages costs a few fsyncs per second, not
//                  thousands. What a crash can lose of them stays bounded by the caller
//                  (mqtt qos0_max_pending).
enum class AppendWait { kAcknowledged, kUnacknowledged };

struct BufferOptions {
  std::string path;
  SyncMode sync = SyncMode::kAlways;
  int64_t sync_interval_ms = 1000;
  size_t max_queued_events = 500000;   // appends past this fail fast with kResourceExhausted
  // Bytes of queued records (ChunkRecordBytes of each: seq + length + event) the buffer may
  // hold. Tracked exactly: counters recomputed by the scan at open, updated with every write.
  // 0: unbounded.
  int64_t max_bytes = 0;
  OverflowPolicy overflow = OverflowPolicy::kReject;  // for Append() without a policy
  // LevelDB's write_buffer_size: the memtable filled before it is written to a table. Up to two
  // are in memory while one is flushed, and a crash leaves up to one in the log, replayed into
  // memory at the next open. Bigger: fewer flushes; smaller: less memory (config
  // buffer.write_buffer_bytes; leveldb clamps it to 64 KiB..1 GiB).
  size_t write_buffer_bytes = size_t{16} << 20;
  // AppendWait::kUnacknowledged appends wait at most this long for their commit, or until
  // unacknowledged_commit_events are queued (config buffer.qos0_commit_delay_ms). 0: at once.
  int64_t unacknowledged_commit_delay_ms = 5;
  size_t unacknowledged_commit_events = 4096;
  // Free space (statvfs f_bavail of the filesystem holding `path`) every commit leaves behind:
  // a commit that would leave less fails with a "disk full" kResourceExhausted (IsDiskFull()),
  // nothing stored, before LevelDB ever sees ENOSPC. Headroom for memtable flushes, compactions
  // and the removals of delivered records (config buffer.min_free_bytes). 0: no check.
  int64_t min_free_bytes = 0;
  leveldb::Env* env = nullptr;         // nullptr: leveldb's default Env (tests: NewMemEnv)
  MetricsRegistry* metrics = nullptr;  // optional: quarantined_total, dropped_total{buffer}
};

// An event to append; the buffer fills in event.gateway_seq. gateway_id is the caller's.
struct PendingEvent {
  RegionId region;
  SensorEvent event;
  // Non-empty: the event may be stored in no region (residency); it is kept in the buffer's
  // residency quarantine ("r/residency/<seq>", with this reason), counted, listed by
  // `sluice-gateway --check-buffer`, never forwarded. `region` is ignored. No '\n' in it.
  std::string refused_reason;
};

// Runs on the commit thread once the events are durable (or failed). first_seq is the sequence of
// the first event of this Append (sequences of one Append are consecutive).
using AppendCallback = std::function<void(const Status& status, uint64_t first_seq)>;

struct BufferedRecord {
  uint64_t seq = 0;
  SensorEvent event;
  size_t bytes = 0;  // ChunkRecordBytes: what it takes in its chunk
};

struct ReadBatchResult {
  std::vector<BufferedRecord> records;
  uint64_t next_cursor = 0;  // pass to the next ReadBatch
  bool full = false;         // stopped at max_records/max_bytes with more entries after
};

// True for the status of an Append refused because the buffer holds max_bytes (kReject).
bool IsBufferFull(const Status& st);
// True for the status of an Append refused because the disk is (nearly) full (min_free_bytes).
bool IsDiskFull(const Status& st);
// The reason label a refused Append is counted under (sluice_gateway_dropped_total{reason}):
// "buffer_full", "disk_full" or "buffer_unavailable".
const char* AppendRefusalReason(const Status& st);

}  // namespace sluice::gateway
