// LeaderEpochCache: which leader epoch wrote which offsets of one partition (Kafka's
// LeaderEpochFileCache, KIP-101 and KIP-279): ascending (epoch, start offset) entries, epochs and
// start offsets both strictly increasing; an epoch's records run from its start offset to the
// next entry's start (the latest: to the log end). A follower asks the leader EndOffsetFor(its
// latest epoch) and truncates to it, so logs that diverged after a leader change converge.
// Persisted in the partition directory as `leader-epoch-checkpoint` in Kafka's text format
// (checkpoint_file.h: `0`, the count, then `epoch start_offset` per line), rewritten atomically
// on every change; a memory-only cache (empty path) never writes.
// Every mutator changes memory first, then writes the file: on a failed write the memory copy is
// still right and the error says the file may be stale (the log rebuilds or re-validates it when
// it is next opened).
// Thread-safety: none; PartitionLog guards it with its mutex.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud-broker/log/file_ops.h"
#include "core/status.h"

namespace sluice::broker {

struct EpochEntry {
  int32_t epoch = -1;
  int64_t start_offset = -1;
  bool operator==(const EpochEntry&) const = default;
};

// EndOffsetFor's answer; both -1 when undefined.
struct EpochEndOffset {
  int32_t epoch = -1;
  int64_t end_offset = -1;
  bool undefined() const { return epoch < 0; }
  bool operator==(const EpochEndOffset&) const = default;
};

class LeaderEpochCache {
 public:
  static constexpr const char* kFileName = "leader-epoch-checkpoint";

  // `path`: the checkpoint file ("" keeps the cache in memory only).
  LeaderEpochCache(std::string path, FileOps* ops);

  // Replaces the entries with the file's. kNotFound if it does not exist, kCorruption if it
  // does not parse or its entries are not strictly increasing (the entries are then empty).
  Status Load();
  // Replaces the entries (a rebuild from the log) and writes them. Invalid ones are refused.
  Status Reset(std::vector<EpochEntry> entries);

  // Records that `epoch` starts at `start_offset`. No-op (Ok) if epoch < 0 or epoch <= the
  // latest epoch. Entries starting at or after start_offset are replaced (a new leader's epoch
  // begins where the log it inherited ends).
  Status Assign(int32_t epoch, int64_t start_offset);
  // KIP-279: the largest epoch <= `epoch` and where it ends: the start offset of the next higher
  // epoch, or log_end_offset when it is the latest (also when `epoch` is above the latest).
  // Undefined (-1, -1) if the cache is empty or `epoch` is below the first entry's epoch. (Kafka
  // answers (epoch, first start offset) for the latter; both lead a follower to a safe point.)
  EpochEndOffset EndOffsetFor(int32_t epoch, int64_t log_end_offset) const;
  // Drops entries starting at or after end_offset (the log was truncated to it).
  Status TruncateFromEnd(int64_t end_offset);
  // Retention moved the log start: entries wholly below start_offset are dropped; the last one
  // starting below it is kept with its start moved up to start_offset.
  Status TruncateFromStart(int64_t start_offset);

  // The latest entry; epoch -1 if the cache is empty.
  EpochEntry latest() const { return entries_.empty() ? EpochEntry{} : entries_.back(); }
  int32_t latest_epoch() const { return latest().epoch; }
  const std::vector<EpochEntry>& entries() const { return entries_; }
  const std::string& path() const { return path_; }

  // True if epochs and start offsets are strictly increasing and non-negative.
  static bool Valid(const std::vector<EpochEntry>& entries);

 private:
  Status Persist() const;

  const std::string path_;
  FileOps* const ops_;
  std::vector<EpochEntry> entries_;
};

}  // namespace sluice::broker
