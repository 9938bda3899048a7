// Compact binary encoding of a buffered SensorEvent, and the buffer's key layout.
//
// Entry value = encoding | CRC-32C(encoding) as fixed32 little-endian, so a torn or flipped
// value is detected when read. Encoding (version 1):
//   version u8 (=1) | device_id | sensor | country | source | gateway_id   (each: varint32 len +
//   bytes) | ts_ms zigzag varint64 | ingest_ms zigzag varint64 | payload (varint32 len + bytes)
// The gateway sequence is not in the value: it is the key's suffix.
// Keys: "q/<region>/<seq BE64>" queued, "d/<region>/<seq BE64>" dead-lettered,
//       "x/<region>/<seq BE64>" quarantined (corrupt), "m/next_seq" the next sequence (BE64).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/record.h"
#include "core/status.h"

namespace sluice::gateway {

inline constexpr const char* kNextSeqKey = "m/next_seq";

// Appends the entry for `e` (encoding + CRC) to *out. e.gateway_seq is not encoded.
void EncodeEntry(const SensorEvent& e, std::string* out);
// Decodes an entry; kCorruption on a CRC mismatch or malformed encoding. Sets out->gateway_seq
// to `seq`.
Status DecodeEntry(std::string_view entry, uint64_t seq, SensorEvent* out);

// "<space>/<region>/" + big-endian seq. Big-endian keeps key order equal to sequence order.
std::string QueueKeyPrefix(char space, const std::string& region);
std::string QueueKey(char space, const std::string& region, uint64_t seq);
void PutBigEndian64(std::string* out, uint64_t v);
uint64_t GetBigEndian64(const char* p);

}  // namespace sluice::gateway
