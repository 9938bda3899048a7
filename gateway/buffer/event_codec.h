// Compact binary encoding of a buffered SensorEvent, and the buffer's key layout.
//
// Entry value = encoding | CRC-32C(encoding) as fixed32 little-endian, so a torn or flipped
// value is detected when read. Encoding (version 1):
//   version u8 (=1) | device_id | sensor | country | source | gateway_id   (each: varint32 len +
//   bytes) | ts_ms zigzag varint64 | ingest_ms zigzag varint64 | payload (varint32 len + bytes)
// The gateway sequence is not in the entry: it is in the chunk framing or the key.
//
// Queued records are stored in chunks, not one key per record: one LevelDB entry per region per
// commit (split at kChunkMaxBytes), so appending, draining and deleting a million records touch
// thousands of keys, not a million (per-key memtable inserts, reads and tombstones were half of
// the gateway's CPU when draining). Chunk value (version 2):
//   version u8 (=2) | records: seq BE64 | varint32 len | entry (len bytes, as above)
// Sequences strictly increase within a chunk. A chunk's key holds an upper bound of its
// sequences (its last record's when written), above every sequence of the chunk before it, so
// Seek(QueueKey('q', region, cursor)) lands on the chunk holding the first record >= cursor.
// Keys: "q/<region>/<seq BE64>" queued chunk, "d/<region>/<seq BE64>" one dead-lettered entry,
//       "x/<region>/<seq BE64>" one quarantined (corrupt) entry or unreadable chunk tail,
//       "m/next_seq" the next sequence (BE64).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/record.h"
#include "core/status.h"

namespace sluice::gateway {

inline constexpr const char* kNextSeqKey = "m/next_seq";
// The residency quarantine: "r/residency/<seq>" -> "<reason>\n<entry>" (PendingEvent::
// refused_reason). Region names cannot collide with it in another key space.
inline constexpr const char* kResidencyQuarantine = "residency";

// Appends the entry for `e` (encoding + CRC) to *out. e.gateway_seq is not encoded.
void EncodeEntry(const SensorEvent& e, std::string* out);
// Decodes an entry; kCorruption on a CRC mismatch or malformed encoding. Sets out->gateway_seq
// to `seq`.
Status DecodeEntry(std::string_view entry, uint64_t seq, SensorEvent* out);

inline constexpr uint8_t kChunkVersion = 2;
// A commit starts a new chunk once one reaches this size: a reader that wants a few records of
// a chunk reads it whole.
inline constexpr size_t kChunkMaxBytes = 64 * 1024;

// Bytes one record of entry size `entry_size` takes in a chunk (seq + length + entry): what the
// buffer's byte counters and max_bytes count.
size_t ChunkRecordBytes(size_t entry_size);
// Appends one record to a chunk value (an empty value gets the version byte first).
void AppendChunkRecord(std::string* chunk, uint64_t seq, std::string_view entry);

// Walks the records of a chunk value without copying. Next() returns false at the end or when
// the framing is broken (a bad version, a length past the end, a sequence out of order); then
// corrupt() is true and rest() holds the unreadable bytes from that point.
class ChunkParser {
 public:
  explicit ChunkParser(std::string_view chunk);
  bool Next(uint64_t* seq, std::string_view* entry);
  bool corrupt() const { return corrupt_; }
  std::string_view rest() const { return chunk_.substr(pos_); }

 private:
  std::string_view chunk_;
  size_t pos_ = 0;
  bool corrupt_ = false;
  bool started_ = false;
  uint64_t last_ = 0;
};

// "<space>/<region>/" + big-endian seq. Big-endian keeps key order equal to sequence order.
std::string QueueKeyPrefix(char space, const std::string& region);
std::string QueueKey(char space, const std::string& region, uint64_t seq);
void PutBigEndian64(std::string* out, uint64_t v);
uint64_t GetBigEndian64(const char* p);

}  // namespace sluice::gateway
