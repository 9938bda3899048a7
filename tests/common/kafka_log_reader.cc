// A RecordBatch v2 parser written from the Kafka documentation alone. Every record read goes
// through Cursor, which checks the bytes left in its frame (batch, then record) first, so a corrupt
// length fails a check rather than reading out of bounds or allocating for what is not there.
#include "tests/common/kafka_log_reader.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

constexpr size_t kLogOverhead = 12;    // baseOffset int64 + batchLength int32
constexpr size_t kBatchHeader = 61;    // baseOffset .. recordCount
constexpr size_t kMinRecordBytes = 7;  // length, attributes, 2 deltas, key, value, header count
constexpr int16_t kCompressionBits = 0x7, kLogAppendTime = 0x8;  // batch attributes

template <typename T>
T GetBig(const char* p) {  // a big-endian integer; the caller checked sizeof(T) bytes are there
  std::make_unsigned_t<T> u = 0;
  for (size_t i = 0; i < sizeof(T); ++i) {
    u = static_cast<std::make_unsigned_t<T>>((u << 8) | static_cast<unsigned char>(p[i]));
  }
  return static_cast<T>(u);
}

int64_t WrapAdd(int64_t a, int64_t b) {  // as Java's long arithmetic: no UB on corrupt input
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// A bounded cursor over one frame. A read returns false if the frame does not hold what it asks.
class Cursor {
 public:
  Cursor(const char* p, size_t n) : p_(p), left_(n) {}
  size_t left() const { return left_; }

  // Zig-zag LEB128 of at most `max_bytes` whose unsigned form fits `bits` bits, as Kafka's
  // ByteUtils.readVarint (5 bytes, 32 bits) and readVarlong (10 bytes, 64 bits).
  bool ZigZag(int max_bytes, int bits, int64_t* v) {
    uint64_t z = 0;
    for (int i = 0; i < max_bytes && left_ > 0; ++i) {
      const auto b = static_cast<unsigned char>(*p_++);
      --left_;
      const int shift = 7 * i;
      if (shift + 7 > bits && ((b & 0x7f) >> (bits - shift)) != 0) {
        return false;  // bits beyond the type's width
      }
      z |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
        return true;
      }
    }
    return false;  // too long, or the frame ended first
  }
  bool Varint(int32_t* v) {
    int64_t w = 0;
    const bool ok = ZigZag(5, 32, &w);
    *v = static_cast<int32_t>(w);
    return ok;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (n > left_) {
      return false;
    }
    *out = std::string_view(p_, n);
    p_ += n;
    left_ -= n;
    return true;
  }
  // A varint-length-prefixed field; -1 means null (read as "") where `nullable`.
  bool Field(bool nullable, std::string* out) {
    int32_t len = 0;
    std::string_view sv;
    if (!Varint(&len) || len < -1 || (len == -1 && !nullable) ||
        (len >= 0 && !Bytes(static_cast<size_t>(len), &sv))) {
      return false;
    }
    out->assign(sv);
    return true;
  }

 private:
  const char* p_;
  size_t left_;
};

struct BatchInfo {  // the batch header fields its records need
  int64_t base_offset = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = 0;
};

// Parses the next record of `batch` into *out; nullptr on success, else what is wrong.
const char* ParseRecord(Cursor& batch, const BatchInfo& b, int64_t* prev_delta, DiskRecord* out) {
  int32_t length = 0;
  std::string_view body;
  if (!batch.Varint(&length) || length < 0 || !batch.Bytes(static_cast<size_t>(length), &body)) {
    return "record length missing, negative or past the batch";
  }
  Cursor r(body.data(), body.size());
  std::string_view attributes;  // int8, unused by Kafka
  int64_t ts_delta = 0;
  int32_t offset_delta = 0;
  if (!r.Bytes(1, &attributes) || !r.ZigZag(10, 64, &ts_delta) || !r.Varint(&offset_delta)) {
    return "bad record attributes, timestampDelta or offsetDelta";
  }
  if (offset_delta <= *prev_delta || offset_delta > b.last_offset_delta) {
    return "offsetDelta not increasing or past lastOffsetDelta";
  }
  *prev_delta = offset_delta;
  int32_t header_count = 0;
  // A header takes at least 2 bytes (two lengths): this bounds the resize below by the input.
  if (!r.Field(true, &out->key) || !r.Field(true, &out->value) || !r.Varint(&header_count) ||
      header_count < 0 || static_cast<size_t>(header_count) > r.left() / 2) {
    return "bad key length, value length or header count";
  }
  out->headers.resize(static_cast<size_t>(header_count));
  for (auto& [key, value] : out->headers) {
    if (!r.Field(false, &key) || !r.Field(true, &value)) {
      return "bad header key or value length";
    }
  }
  if (r.left() != 0) {
    return "record fields do not fill its length";
  }
  out->offset = WrapAdd(b.base_offset, offset_delta);
  out->timestamp_ms =
      (b.attributes & kLogAppendTime) != 0 ? b.max_timestamp : WrapAdd(b.base_timestamp, ts_delta);
  out->producer_id = b.producer_id;
  return nullptr;
}

// Reads the batches of one segment file into *scan.
Status ReadSegment(const std::string& path, const std::string& topic, int32_t partition,
                   DiskLogScan* scan) {
  std::ifstream in(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.is_open() || in.bad()) {
    return Status::IOError(path + ": cannot read: " + std::strerror(errno));
  }
  scan->files.push_back(path);
  size_t pos = 0;
  auto corrupt = [&](const std::string& why, StatusCode code = StatusCode::kCorruption) {
    return Status(code, path + ":" + std::to_string(pos) + ": " + why);
  };
  while (pos < data.size()) {
    const char* batch = data.data() + pos;
    const size_t left = data.size() - pos;
    const int32_t batch_length = left < kLogOverhead ? 0 : GetBig<int32_t>(batch + 8);
    if (left < kLogOverhead ||
        (batch_length >= 0 && static_cast<size_t>(batch_length) > left - kLogOverhead)) {
      ++scan->torn_tails;  // a crash mid-append: the rest of the file is not a whole batch
      return Status::Ok();
    }
    if (batch_length < static_cast<int32_t>(kBatchHeader - kLogOverhead)) {
      return corrupt("batchLength " + std::to_string(batch_length) + " below the header size");
    }
    // The batch holds at least kBatchHeader bytes (checked above). Fields at Kafka's offsets.
    const size_t total = kLogOverhead + static_cast<size_t>(batch_length);
    BatchInfo b;
    b.base_offset = GetBig<int64_t>(batch);
    const auto magic = static_cast<int8_t>(batch[16]);  // after partitionLeaderEpoch int32
    const auto crc = GetBig<uint32_t>(batch + 17);
    b.attributes = GetBig<int16_t>(batch + 21);
    b.last_offset_delta = GetBig<int32_t>(batch + 23);
    b.base_timestamp = GetBig<int64_t>(batch + 27);
    b.max_timestamp = GetBig<int64_t>(batch + 35);
    b.producer_id = GetBig<int64_t>(batch + 43);  // then producerEpoch int16, baseSequence int32
    const auto record_count = GetBig<int32_t>(batch + 57);
    Cursor c(batch + kBatchHeader, total - kBatchHeader);
    if (magic != 2) {
      return corrupt("magic " + std::to_string(magic) + ", not 2");
    }
    const uint32_t actual = DiskCrc32c(batch + 21, total - 21);  // attributes .. end of batch
    if (actual != crc) {
      return corrupt("CRC-32C mismatch: stored " + std::to_string(crc) + ", computed " +
                     std::to_string(actual));
    }
    if ((b.attributes & kCompressionBits) != 0) {
      return corrupt("compressed batch (attributes " + std::to_string(b.attributes) + ")",
                     StatusCode::kInvalidArgument);
    }
    if (record_count < 0 || static_cast<size_t>(record_count) > c.left() / kMinRecordBytes) {
      return corrupt("recordCount " + std::to_string(record_count) + " cannot fit in " +
                     std::to_string(c.left()) + " bytes");
    }
    int64_t prev_delta = -1;
    for (int32_t i = 0; i < record_count; ++i) {
      DiskRecord rec;
      rec.topic = topic;
      rec.partition = partition;
      if (const char* why = ParseRecord(c, b, &prev_delta, &rec)) {
        return corrupt("record " + std::to_string(i) + ": " + why);
      }
      scan->records.push_back(std::move(rec));
    }
    if (c.left() != 0) {
      return corrupt(std::to_string(c.left()) + " bytes after the last record");
    }
    ++scan->batches;
    pos += total;
  }
  return Status::Ok();
}

// "<topic>-<partition>" split at the last '-'; false if the name is not of that form.
bool ParsePartitionDir(const std::string& name, std::string* topic, int32_t* partition) {
  const size_t dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0) {
    return false;
  }
  const char* end = name.data() + name.size();
  const auto [ptr, ec] = std::from_chars(name.data() + dash + 1, end, *partition);
  *topic = name.substr(0, dash);
  return ec == std::errc() && ptr == end;  // digits only: after the last '-' there is no sign
}

}  // namespace

uint32_t DiskCrc32c(const char* data, size_t n) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      t[i] = i;
      for (int k = 0; k < 8; ++k) {
        t[i] = (t[i] >> 1) ^ (0x82F63B78u & (0u - (t[i] & 1)));
      }
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c = kTable[(c ^ static_cast<unsigned char>(data[i])) & 0xff] ^ (c >> 8);
  }
  return ~c;
}

std::string DiskRecord::Header(const std::string& name, int* count) const {
  auto named = [&name](const auto& h) { return h.first == name; };
  if (count != nullptr) {
    *count = static_cast<int>(std::count_if(headers.begin(), headers.end(), named));
  }
  const auto it = std::find_if(headers.begin(), headers.end(), named);
  return it == headers.end() ? std::string() : it->second;
}

Result<DiskLogScan> ReadBrokerLogs(const std::string& data_dir, const std::string& topic) {
  const fs::path logs = fs::path(data_dir) / "logs";
  std::error_code ec;
  std::vector<std::tuple<std::string, int32_t, fs::path>> partitions;
  for (fs::directory_iterator it(logs, ec), end; !ec && it != end; it.increment(ec)) {
    std::string t;
    int32_t p = 0;
    if (it->is_directory(ec) && ParsePartitionDir(it->path().filename().string(), &t, &p) &&
        (topic.empty() || t == topic)) {
      partitions.emplace_back(std::move(t), p, it->path());
    }
  }
  if (ec) {
    const bool missing = ec == std::errc::no_such_file_or_directory;
    return Status(missing ? StatusCode::kNotFound : StatusCode::kIOError,
                  logs.string() + ": " + ec.message());
  }
  std::sort(partitions.begin(), partitions.end());
  DiskLogScan scan;
  for (const auto& [t, p, dir] : partitions) {
    std::vector<std::string> segments;  // 20-digit names: sorting by name sorts by base offset
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().extension() == ".log" && it->is_regular_file(ec)) {
        segments.push_back(it->path().string());
      }
    }
    if (ec) {
      return Status::IOError(dir.string() + ": " + ec.message());
    }
    std::sort(segments.begin(), segments.end());
    for (const std::string& path : segments) {
      SLUICE_RETURN_IF_ERROR(ReadSegment(path, t, p, &scan));
    }
  }
  return scan;
}

}  // namespace sluice::testing
