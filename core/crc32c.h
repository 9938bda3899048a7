// CRC-32C (Castagnoli), as used by Kafka's RecordBatch v2 and by Sluice's buffer entries.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::crc32c {

// Extends `init` (the CRC of previous data, 0 to start) over data[0, n).
uint32_t Extend(uint32_t init, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

}  // namespace sluice::crc32c
