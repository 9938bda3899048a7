// Internal entry points of the CRC-32C implementation, exposed so tests can check the software
// and hardware paths against each other. Use crc32c.h everywhere else.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::crc32c::internal {

// Both have Extend's contract (`init` is the CRC of previous data, 0 to start).
uint32_t ExtendSoftware(uint32_t init, const void* data, size_t n);  // slicing-by-8 tables
// SSE4.2 crc32 instruction. Only call when HardwareAvailable() is true.
uint32_t ExtendHardware(uint32_t init, const void* data, size_t n);
bool HardwareAvailable();

}  // namespace sluice::crc32c::internal
