// The partition log's options and the value types its reads return (partition_log.h).
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cloud-broker/log/file_ops.h"
#include "core/clock.h"
#include "core/record.h"

namespace sluice::broker {

class FileCache;

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
  // false (a single-broker region): the high watermark follows the readable end by itself (the
  // durable end under kAlways, the written end otherwise). true (a replica): it moves only by
  // SetHighWatermark, and Open starts it from the high-watermark checkpoint.
  bool managed_high_watermark = false;
  Clock* clock = &SystemClock::Instance();
  FileOps* file_ops = &FileOps::Default();
  FileCache* file_cache = nullptr;  // nullptr: FileCache::Default()
  // Called with no lock held whenever new records become readable (the high watermark advanced;
  // long-poll wake-up).
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

// Stored batches exactly as on disk (a follower's fetch: PartitionLog::ReadBatches).
struct LogBatches {
  std::vector<std::string> batches;  // whole RecordBatch v2 bytes, ascending offsets
  int64_t next_offset = 0;           // the offset after the last batch returned
  int64_t log_end_offset = 0;        // the log end when read
  int64_t high_watermark = 0;        // the high watermark when read
};

}  // namespace sluice::broker
