// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). Two implementations behind one entry
// point: the SSE4.2 crc32 instruction when the CPU has it (checked once at run time), otherwise a
// table-driven slicing-by-8 loop (eight 256-entry tables built at compile time).
#include "core/crc32c.h"

#include <array>
#include <cstring>

#include "core/crc32c_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SLUICE_CRC32C_X86 1
#include <nmmintrin.h>
#endif

namespace sluice::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) {
      c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    }
    t[0][i] = c;
  }
  // t[k][i] is the CRC of byte i followed by k zero bytes.
  for (size_t k = 1; k < 8; ++k) {
    for (size_t i = 0; i < 256; ++i) {
      uint32_t prev = t[k - 1][i];
      t[k][i] = (prev >> 8) ^ t[0][prev & 0xff];
    }
  }
  return t;
}

constexpr Tables kTables = MakeTables();

inline uint64_t LoadLE64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

#ifdef SLUICE_CRC32C_X86
__attribute__((target("sse4.2"))) uint32_t HardwareRaw(uint32_t crc, const uint8_t* p,
                                                       size_t n) {
  // Byte steps up to 8-byte alignment, then 8 bytes per instruction, then the tail.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = _mm_crc32_u8(crc, *p++);
    --n;
  }
  uint64_t c64 = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  crc = static_cast<uint32_t>(c64);
  while (n > 0) {
    crc = _mm_crc32_u8(crc, *p++);
    --n;
  }
  return crc;
}
#endif

uint32_t SoftwareRaw(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint64_t v = LoadLE64(p) ^ crc;
    crc = kTables[7][v & 0xff] ^ kTables[6][(v >> 8) & 0xff] ^ kTables[5][(v >> 16) & 0xff] ^
          kTables[4][(v >> 24) & 0xff] ^ kTables[3][(v >> 32) & 0xff] ^
          kTables[2][(v >> 40) & 0xff] ^ kTables[1][(v >> 48) & 0xff] ^ kTables[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    crc = (crc >> 8) ^ kTables[0][(crc ^ *p++) & 0xff];
    --n;
  }
  return crc;
}

bool DetectHardware() {
#ifdef SLUICE_CRC32C_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

}  // namespace

namespace internal {

uint32_t ExtendSoftware(uint32_t init, const void* data, size_t n) {
  return ~SoftwareRaw(~init, static_cast<const uint8_t*>(data), n);
}

uint32_t ExtendHardware(uint32_t init, const void* data, size_t n) {
#ifdef SLUICE_CRC32C_X86
  return ~HardwareRaw(~init, static_cast<const uint8_t*>(data), n);
#else
  return ExtendSoftware(init, data, n);
#endif
}

bool HardwareAvailable() {
  static const bool available = DetectHardware();
  return available;
}

}  // namespace internal

uint32_t Extend(uint32_t init, const void* data, size_t n) {
  if (internal::HardwareAvailable()) {
    return internal::ExtendHardware(init, data, n);
  }
  return internal::ExtendSoftware(init, data, n);
}

}  // namespace sluice::crc32c
