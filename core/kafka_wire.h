// Wire primitives of the Kafka protocol used by the RecordBatch codec: big-endian fixed-width
// integers and zig-zag varints/varlongs (Kafka's ByteUtils), plus a bounds-checked reader.
// Internal to core; the writers assume the caller sized the buffer. Thread-safety: pure functions;
// a WireReader is a plain value used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace sluice::wire {

// ---- Writers: each returns the position just past what it wrote.

inline uint32_t ZigZag32(int32_t v) {
  return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
}
inline uint64_t ZigZag64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline size_t UVarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline size_t VarintSize(int32_t v) { return UVarintSize(ZigZag32(v)); }
inline size_t VarlongSize(int64_t v) { return UVarintSize(ZigZag64(v)); }

inline char* PutUVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline char* PutVarint(char* p, int32_t v) { return PutUVarint(p, ZigZag32(v)); }
inline char* PutVarlong(char* p, int64_t v) { return PutUVarint(p, ZigZag64(v)); }

template <typename T>
inline char* PutBig(char* p, T v) {
  auto u = static_cast<std::make_unsigned_t<T>>(v);
  for (int i = static_cast<int>(sizeof(T)) - 1; i >= 0; --i) {
    *p++ = static_cast<char>((u >> (8 * i)) & 0xff);
  }
  return p;
}

inline char* PutBytes(char* p, std::string_view s) {
  if (!s.empty()) {
    std::memcpy(p, s.data(), s.size());
  }
  return p + s.size();
}

// ---- Readers.

template <typename T>
inline T GetBig(const char* p) {
  std::make_unsigned_t<T> u = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    u = static_cast<std::make_unsigned_t<T>>((u << 8) | static_cast<unsigned char>(p[i]));
  }
  return static_cast<T>(u);
}

// A bounded cursor over one frame of the input. Every read checks the bytes left first.
class WireReader {
 public:
  WireReader(const char* p, size_t n) : p_(p), end_(p + n) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const char* data() const { return p_; }  // the next byte to read

  bool ReadByte(uint8_t* v) {
    if (p_ == end_) {
      return false;
    }
    *v = static_cast<uint8_t>(*p_++);
    return true;
  }
  // Kafka's readVarint: zig-zag, at most 5 bytes.
  bool ReadVarint(int32_t* v) {
    uint64_t u = 0;
    if (!ReadUVarint(5, &u) || u > 0xffffffffu) {
      return false;
    }
    const auto z = static_cast<uint32_t>(u);
    *v = static_cast<int32_t>((z >> 1) ^ (~(z & 1) + 1));
    return true;
  }
  // Kafka's readVarlong: zig-zag, at most 10 bytes.
  bool ReadVarlong(int64_t* v) {
    uint64_t u = 0;
    if (!ReadUVarint(10, &u)) {
      return false;
    }
    *v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool ReadBytes(size_t n, std::string_view* out) {
    if (n > remaining()) {
      return false;
    }
    *out = std::string_view(p_, n);
    p_ += n;
    return true;
  }
  // Splits off the next n bytes as their own frame.
  bool ReadFrame(size_t n, WireReader* frame) {
    std::string_view sv;
    if (!ReadBytes(n, &sv)) {
      return false;
    }
    *frame = WireReader(sv.data(), sv.size());
    return true;
  }

 private:
  bool ReadUVarint(int max_bytes, uint64_t* v) {
    uint64_t result = 0;
    for (int i = 0; i < max_bytes; ++i) {
      if (p_ == end_) {
        return false;
      }
      const auto b = static_cast<uint8_t>(*p_++);
      const int shift = 7 * i;
      if (shift == 63 && (b & 0x7e) != 0) {
        return false;  // bits past 64
      }
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;  // longer than allowed
  }

  const char* p_;
  const char* end_;
};

}  // namespace sluice::wire
