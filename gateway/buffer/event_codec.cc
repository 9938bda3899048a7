#include "gateway/buffer/event_codec.h"

#include <cstring>

#include "core/crc32c.h"

namespace sluice::gateway {
namespace {

constexpr uint8_t kVersion = 1;

void PutVarint64(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutString(std::string* out, std::string_view s) {
  PutVarint64(out, s.size());
  out->append(s.data(), s.size());
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

// A bounds-checked reader over the encoding.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Varint64(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift <= 63 && pos_ < in_.size(); shift += 7) {
      uint8_t b = static_cast<uint8_t>(in_[pos_++]);
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool String(std::string* s) {
    uint64_t n;
    if (!Varint64(&n) || n > in_.size() - pos_) {
      return false;
    }
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Byte(uint8_t* b) {
    if (pos_ >= in_.size()) {
      return false;
    }
    *b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool AtEnd() const { return pos_ == in_.size(); }
  size_t Remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

void EncodeEntry(const SensorEvent& e, std::string* out) {
  size_t start = out->size();
  out->push_back(static_cast<char>(kVersion));
  PutString(out, e.device_id.value());
  PutString(out, e.sensor);
  PutString(out, e.country.value());
  PutString(out, e.source);
  PutString(out, e.gateway_id.value());
  PutVarint64(out, ZigZag(e.ts_ms));
  PutVarint64(out, ZigZag(e.ingest_ms));
  PutString(out, e.payload);
  uint32_t crc = crc32c::Value(out->data() + start, out->size() - start);
  char buf[4];
  for (int i = 0; i < 4; ++i) {
    buf[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  }
  out->append(buf, 4);
}

Status DecodeEntry(std::string_view entry, uint64_t seq, SensorEvent* out) {
  if (entry.size() < 5) {
    return Status::Corruption("buffer entry too short");
  }
  std::string_view body = entry.substr(0, entry.size() - 4);
  const auto* c = reinterpret_cast<const uint8_t*>(entry.data() + body.size());
  uint32_t stored = static_cast<uint32_t>(c[0]) | (static_cast<uint32_t>(c[1]) << 8) |
                    (static_cast<uint32_t>(c[2]) << 16) | (static_cast<uint32_t>(c[3]) << 24);
  if (crc32c::Value(body) != stored) {
    return Status::Corruption("buffer entry CRC mismatch");
  }
  Reader r(body);
  uint8_t version = 0;
  uint64_t ts = 0;
  uint64_t ingest = 0;
  if (!r.Byte(&version) || version != kVersion) {
    return Status::Corruption("unknown buffer entry version");
  }
  if (!r.String(&out->device_id.value()) || !r.String(&out->sensor) ||
      !r.String(&out->country.value()) || !r.String(&out->source) ||
      !r.String(&out->gateway_id.value()) || !r.Varint64(&ts) || !r.Varint64(&ingest) ||
      !r.String(&out->payload) || !r.AtEnd()) {
    return Status::Corruption("malformed buffer entry");
  }
  out->ts_ms = UnZigZag(ts);
  out->ingest_ms = UnZigZag(ingest);
  out->gateway_seq = GatewaySeq(seq);
  return Status::Ok();
}

void PutBigEndian64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

uint64_t GetBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

size_t ChunkRecordBytes(size_t entry_size) {
  size_t varint = 1;
  for (size_t v = entry_size; v >= 0x80; v >>= 7) {
    ++varint;
  }
  return 8 + varint + entry_size;
}

void AppendChunkRecord(std::string* chunk, uint64_t seq, std::string_view entry) {
  if (chunk->empty()) {
    chunk->push_back(static_cast<char>(kChunkVersion));
  }
  PutBigEndian64(chunk, seq);
  PutVarint64(chunk, entry.size());
  chunk->append(entry.data(), entry.size());
}

ChunkParser::ChunkParser(std::string_view chunk) : chunk_(chunk) {
  if (chunk_.empty() || static_cast<uint8_t>(chunk_[0]) != kChunkVersion) {
    corrupt_ = true;
    return;
  }
  pos_ = 1;
}

bool ChunkParser::Next(uint64_t* seq, std::string_view* entry) {
  if (corrupt_ || pos_ == chunk_.size()) {
    return false;
  }
  std::string_view rest = chunk_.substr(pos_);
  if (rest.size() < 9) {
    corrupt_ = true;
    return false;
  }
  const uint64_t s = GetBigEndian64(rest.data());
  Reader r(rest.substr(8));
  std::string_view body = rest.substr(8);
  uint64_t len = 0;
  if ((started_ && s <= last_) || !r.Varint64(&len)) {
    corrupt_ = true;
    return false;
  }
  size_t header = 8 + (body.size() - r.Remaining());
  if (len > rest.size() - header) {
    corrupt_ = true;
    return false;
  }
  *seq = s;
  *entry = rest.substr(header, len);
  pos_ += header + len;
  started_ = true;
  last_ = s;
  return true;
}

std::string QueueKeyPrefix(char space, const std::string& region) {
  std::string k;
  k.reserve(region.size() + 3);
  k.push_back(space);
  k.push_back('/');
  k.append(region);
  k.push_back('/');
  return k;
}

std::string QueueKey(char space, const std::string& region, uint64_t seq) {
  std::string k = QueueKeyPrefix(space, region);
  PutBigEndian64(&k, seq);
  return k;
}

}  // namespace sluice::gateway
