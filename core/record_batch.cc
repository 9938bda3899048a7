// Kafka RecordBatch v2 codec (https://kafka.apache.org/documentation/#recordbatch).
//
// Encoding follows Kafka's MemoryRecordsBuilder for an uncompressed batch:
//   - baseTimestamp is the FIRST record's timestamp (Kafka sets it from the first append), not the
//     minimum; maxTimestamp is the maximum; each record stores timestamp - baseTimestamp, which may
//     be negative (varlong). An empty batch gets Kafka's NO_TIMESTAMP (-1) for both.
//   - offsetDelta is the record's index, lastOffsetDelta = n - 1.
//   - the compression bits of `attributes` are cleared (Sluice never compresses); other attribute
//     bits (timestamp type, transactional, control) are written as given.
// The whole batch is sized exactly before writing, so encoding does one allocation.
//
// Decoding trusts nothing: every length is checked against the bytes left in its enclosing frame
// (batch, then record) before it is used, so malformed input yields kCorruption and never reads
// out of bounds or allocates in proportion to an untrusted count; with DecodeLimits (produce) a
// count or size over its bound is refused before anything is allocated for it (a 16 MiB record
// of 8 M empty headers once cost ~840 MB). Each key, value and header is
// copied exactly once, from the input buffer into the Record.
// A null header value (length -1, allowed by Kafka) decodes as an empty string.
#include "core/record_batch.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "core/crc32c.h"
#include "core/kafka_wire.h"

namespace sluice {
namespace {

using wire::GetBig;
using wire::PutBig;
using wire::PutBytes;
using wire::PutVarint;
using wire::PutVarlong;
using wire::VarintSize;
using wire::VarlongSize;
using Reader = wire::WireReader;

constexpr int8_t kMagicV2 = 2;
constexpr size_t kMagicOffset = 16;
constexpr size_t kCrcOffset = 17;
constexpr size_t kAttributesOffset = 21;  // the CRC covers [attributes, end of batch)
constexpr int32_t kMinBatchLength = static_cast<int32_t>(kBatchHeaderSize - kBatchLogOverhead);
// length(1) + attributes(1) + timestampDelta(1) + offsetDelta(1) + keyLength(1) +
// valueLength(1) + headerCount(1).
constexpr int32_t kMinRecordSize = 7;
constexpr int16_t kCompressionMask = kAttrCompressionMask;
constexpr int64_t kNoTimestamp = -1;

inline size_t NullableSize(const std::optional<std::string_view>& s) {
  if (!s.has_value()) {
    return VarintSize(-1);
  }
  return VarintSize(static_cast<int32_t>(s->size())) + s->size();
}

inline char* PutNullable(char* p, const std::optional<std::string_view>& s) {
  if (!s.has_value()) {
    return PutVarint(p, -1);
  }
  p = PutVarint(p, static_cast<int32_t>(s->size()));
  return PutBytes(p, *s);
}

inline int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

// Size of a record after its length prefix.
size_t RecordBodySize(const RecordView& r, int32_t offset_delta, int64_t timestamp_delta) {
  size_t n = 1 + VarlongSize(timestamp_delta) + VarintSize(offset_delta) + NullableSize(r.key) +
             NullableSize(r.value) + VarintSize(static_cast<int32_t>(r.headers.size()));
  for (const HeaderView& h : r.headers) {
    n += VarintSize(static_cast<int32_t>(h.key.size())) + h.key.size() +
         VarintSize(static_cast<int32_t>(h.value.size())) + h.value.size();
  }
  return n;
}

Status RecordError(size_t index, const char* what) {
  return Status::Corruption("record batch: record " + std::to_string(index) + ": " + what);
}

// Reads a length-prefixed field of the record frame `r`: -1 is null when `nullable`.
bool ReadField(Reader& r, bool nullable, std::optional<std::string_view>* out) {
  int32_t len = 0;
  if (!r.ReadVarint(&len)) {
    return false;
  }
  if (len < 0) {
    if (len == -1 && nullable) {
      out->reset();
      return true;
    }
    return false;
  }
  std::string_view sv;
  if (!r.ReadBytes(static_cast<size_t>(len), &sv)) {
    return false;
  }
  *out = sv;
  return true;
}

// A record over one of `limits`: kInvalidArgument, and *violation names it.
Status OverLimit(size_t index, const char* field, const std::string& what,
                 DecodeViolation* violation) {
  if (violation != nullptr) {
    violation->index = static_cast<int64_t>(index);
    violation->field = field;
  }
  return Status::InvalidArgument("record " + std::to_string(index) + ": " + what);
}

// Stored data: bounded by the framing only.
const DecodeLimits kUnbounded{SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};

// The header of a stored batch whose records are to be walked: parsed, CRC checked when asked,
// uncompressed.
Result<BatchHeader> ParseWalkableHeader(std::string_view bytes, bool verify_crc) {
  Result<BatchHeader> parsed = ParseBatchHeader(bytes, verify_crc);
  if (parsed.ok() && (parsed->attributes & kCompressionMask) != 0) {
    return Status::InvalidArgument("compressed batches are not supported");
  }
  return parsed;
}

// Reads the next record's length and frame from `batch` into `body`, and its timestampDelta and
// offsetDelta; `body` is left at the key. False on any framing error.
bool ReadRecordHead(Reader& batch, Reader* body, int64_t* timestamp_delta,
                    int32_t* offset_delta) {
  int32_t length = 0;
  uint8_t attributes = 0;
  return batch.ReadVarint(&length) && length >= kMinRecordSize - 1 &&
         batch.ReadFrame(static_cast<size_t>(length), body) && body->ReadByte(&attributes) &&
         body->ReadVarlong(timestamp_delta) && body->ReadVarint(offset_delta);
}

Status DecodeRecord(Reader& batch, size_t index, int64_t base_timestamp,
                    const DecodeLimits& limits, DecodeViolation* violation, Record* out) {
  int32_t length = 0;
  if (!batch.ReadVarint(&length)) {
    return RecordError(index, "truncated or invalid length (record count mismatch?)");
  }
  Reader r(nullptr, 0);
  if (length < kMinRecordSize - 1 || !batch.ReadFrame(static_cast<size_t>(length), &r)) {
    return RecordError(index, "length out of bounds");
  }
  uint8_t attributes = 0;
  int64_t timestamp_delta = 0;
  int32_t offset_delta = 0;
  if (!r.ReadByte(&attributes) || !r.ReadVarlong(&timestamp_delta) ||
      !r.ReadVarint(&offset_delta)) {
    return RecordError(index, "invalid attributes, timestampDelta or offsetDelta");
  }
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  if (!ReadField(r, true, &key)) {
    return RecordError(index, "invalid key length");
  }
  if (!ReadField(r, true, &value)) {
    return RecordError(index, "invalid value length");
  }
  if (key && key->size() > limits.max_key_bytes) {
    return OverLimit(index, "key",
                     "key of " + std::to_string(key->size()) + " bytes, more than " +
                         std::to_string(limits.max_key_bytes),
                     violation);
  }
  int32_t header_count = 0;
  // Each header takes at least 2 bytes, which bounds the allocation below by the input size;
  // limits.max_headers bounds it by a constant, checked before anything is allocated.
  if (!r.ReadVarint(&header_count) || header_count < 0 ||
      static_cast<size_t>(header_count) > r.remaining() / 2) {
    return RecordError(index, "invalid header count");
  }
  if (static_cast<size_t>(header_count) > limits.max_headers) {
    return OverLimit(index, "headers",
                     std::to_string(header_count) + " headers, more than " +
                         std::to_string(limits.max_headers),
                     violation);
  }
  out->offset_delta = offset_delta;
  out->timestamp_ms = WrapAdd(base_timestamp, timestamp_delta);
  if (key) {
    out->key.emplace(*key);
  }
  if (value) {
    out->value.emplace(*value);
  }
  out->headers.resize(static_cast<size_t>(header_count));
  for (RecordHeader& h : out->headers) {
    std::optional<std::string_view> hk;
    std::optional<std::string_view> hv;
    if (!ReadField(r, false, &hk) || !ReadField(r, true, &hv)) {
      return RecordError(index, "invalid header");
    }
    if (hk->size() > limits.max_header_key_bytes ||
        (hv && hv->size() > limits.max_header_value_bytes)) {
      return OverLimit(index, "headers",
                       "a header key over " + std::to_string(limits.max_header_key_bytes) +
                           " bytes or value over " +
                           std::to_string(limits.max_header_value_bytes) + " bytes",
                       violation);
    }
    h.key.assign(*hk);
    if (hv) {
      h.value.assign(*hv);
    }
  }
  if (r.remaining() != 0) {
    return RecordError(index, "fields do not fill the record length");
  }
  return Status::Ok();
}

}  // namespace

std::string EncodeBatch(const RecordBatch& batch) {
  std::vector<HeaderView> headers;
  size_t header_count = 0;
  for (const Record& r : batch.records) {
    header_count += r.headers.size();
  }
  headers.reserve(header_count);
  std::vector<RecordView> views(batch.records.size());
  for (size_t i = 0; i < batch.records.size(); ++i) {
    const Record& r = batch.records[i];
    RecordView& v = views[i];
    v.timestamp_ms = r.timestamp_ms;
    if (r.key) {
      v.key = *r.key;
    }
    if (r.value) {
      v.value = *r.value;
    }
    const size_t first = headers.size();
    for (const RecordHeader& h : r.headers) {
      headers.push_back({h.key, h.value});
    }
    v.headers = std::span<const HeaderView>(headers.data() + first, r.headers.size());
  }
  return EncodeBatch(batch, views);
}

std::string EncodeBatch(const RecordBatch& batch, std::span<const RecordView> records) {
  const size_t n = records.size();
  int64_t base_timestamp = kNoTimestamp;
  int64_t max_timestamp = kNoTimestamp;
  if (n > 0) {
    base_timestamp = records.front().timestamp_ms;
    max_timestamp = base_timestamp;
    for (const RecordView& r : records) {
      max_timestamp = std::max(max_timestamp, r.timestamp_ms);
    }
  }

  // Each record's size is computed once and kept for its length prefix below.
  std::vector<uint32_t> bodies(n);
  size_t total = kBatchHeaderSize;
  for (size_t i = 0; i < n; ++i) {
    const RecordView& r = records[i];
    const size_t body =
        RecordBodySize(r, static_cast<int32_t>(i), WrapSub(r.timestamp_ms, base_timestamp));
    bodies[i] = static_cast<uint32_t>(body);
    total += VarintSize(static_cast<int32_t>(body)) + body;
  }

  std::string out(total, '\0');
  char* p = out.data();
  p = PutBig<int64_t>(p, batch.base_offset);
  p = PutBig<int32_t>(p, static_cast<int32_t>(total - kBatchLogOverhead));
  p = PutBig<int32_t>(p, batch.partition_leader_epoch);
  *p++ = static_cast<char>(kMagicV2);
  p += 4;  // CRC, filled in last
  p = PutBig<int16_t>(p, static_cast<int16_t>(batch.attributes & ~kCompressionMask));
  p = PutBig<int32_t>(p, static_cast<int32_t>(n) - 1);
  p = PutBig<int64_t>(p, base_timestamp);
  p = PutBig<int64_t>(p, max_timestamp);
  p = PutBig<int64_t>(p, batch.producer_id);
  p = PutBig<int16_t>(p, batch.producer_epoch);
  p = PutBig<int32_t>(p, batch.base_sequence);
  p = PutBig<int32_t>(p, static_cast<int32_t>(n));

  for (size_t i = 0; i < n; ++i) {
    const RecordView& r = records[i];
    const auto offset_delta = static_cast<int32_t>(i);
    const int64_t timestamp_delta = WrapSub(r.timestamp_ms, base_timestamp);
    p = PutVarint(p, static_cast<int32_t>(bodies[i]));
    *p++ = 0;  // record attributes: unused
    p = PutVarlong(p, timestamp_delta);
    p = PutVarint(p, offset_delta);
    p = PutNullable(p, r.key);
    p = PutNullable(p, r.value);
    p = PutVarint(p, static_cast<int32_t>(r.headers.size()));
    for (const HeaderView& h : r.headers) {
      p = PutVarint(p, static_cast<int32_t>(h.key.size()));
      p = PutBytes(p, h.key);
      p = PutVarint(p, static_cast<int32_t>(h.value.size()));
      p = PutBytes(p, h.value);
    }
  }

  const uint32_t crc = crc32c::Value(out.data() + kAttributesOffset, total - kAttributesOffset);
  PutBig<uint32_t>(out.data() + kCrcOffset, crc);
  return out;
}

Result<BatchHeader> ParseBatchHeader(std::string_view bytes, bool verify_crc) {
  if (bytes.size() < kBatchLogOverhead) {
    return Status::Corruption("record batch: truncated: " + std::to_string(bytes.size()) +
                              " bytes");
  }
  const char* p = bytes.data();
  BatchHeader h;
  h.base_offset = GetBig<int64_t>(p);
  h.batch_length = GetBig<int32_t>(p + 8);
  if (h.batch_length < kMinBatchLength) {
    return Status::Corruption("record batch: invalid batch length " +
                              std::to_string(h.batch_length));
  }
  if (h.total_size() > bytes.size()) {
    return Status::Corruption("record batch: truncated: have " + std::to_string(bytes.size()) +
                              " of " + std::to_string(h.total_size()) + " bytes");
  }
  h.partition_leader_epoch = GetBig<int32_t>(p + 12);
  h.magic = static_cast<int8_t>(p[kMagicOffset]);
  if (h.magic != kMagicV2) {
    return Status::Corruption("record batch: unsupported magic " + std::to_string(h.magic));
  }
  h.crc = GetBig<uint32_t>(p + kCrcOffset);
  h.attributes = GetBig<int16_t>(p + kAttributesOffset);
  h.last_offset_delta = GetBig<int32_t>(p + 23);
  h.base_timestamp = GetBig<int64_t>(p + 27);
  h.max_timestamp = GetBig<int64_t>(p + 35);
  h.producer_id = GetBig<int64_t>(p + 43);
  h.producer_epoch = GetBig<int16_t>(p + 51);
  h.base_sequence = GetBig<int32_t>(p + 53);
  h.record_count = GetBig<int32_t>(p + 57);
  if (h.record_count < 0) {
    return Status::Corruption("record batch: negative record count");
  }
  if (verify_crc) {
    const uint32_t actual =
        crc32c::Value(p + kAttributesOffset, h.total_size() - kAttributesOffset);
    if (actual != h.crc) {
      return Status::Corruption("record batch: CRC mismatch");
    }
  }
  return h;
}

Result<RecordBatch> DecodeBatch(std::string_view bytes, size_t* consumed, const DecodeLimits* limits,
                                DecodeViolation* violation) {
  Result<BatchHeader> parsed = ParseBatchHeader(bytes, /*verify_crc=*/true);
  if (!parsed.ok()) {
    return parsed.status();
  }
  const BatchHeader& h = *parsed;
  if ((h.attributes & kCompressionMask) != 0) {
    if (violation != nullptr) {
      violation->field = "attributes";
    }
    return Status::InvalidArgument("compressed batches are not supported");
  }
  const size_t records_size = h.total_size() - kBatchHeaderSize;
  // Every record takes at least kMinRecordSize bytes: this bounds the reserve() below.
  if (static_cast<size_t>(h.record_count) > records_size / kMinRecordSize) {
    return Status::Corruption("record batch: record count " + std::to_string(h.record_count) +
                              " cannot fit in " + std::to_string(records_size) + " bytes");
  }
  if (h.record_count > 0 && h.last_offset_delta < h.record_count - 1) {
    return Status::Corruption("record batch: lastOffsetDelta smaller than record count");
  }
  // Without limits, stored data: bounded by the framing only.
  const DecodeLimits& bounds = limits != nullptr ? *limits : kUnbounded;
  if (static_cast<size_t>(h.record_count) > bounds.max_records) {
    if (violation != nullptr) {
      violation->index = -1;
      violation->field = "records";
    }
    return Status::InvalidArgument("record batch: " + std::to_string(h.record_count) +
                                   " records, more than " + std::to_string(bounds.max_records));
  }

  RecordBatch batch;
  batch.base_offset = h.base_offset;
  batch.partition_leader_epoch = h.partition_leader_epoch;
  batch.attributes = h.attributes;
  batch.last_offset_delta = h.last_offset_delta;
  batch.base_timestamp = h.base_timestamp;
  batch.max_timestamp = h.max_timestamp;
  batch.producer_id = h.producer_id;
  batch.producer_epoch = h.producer_epoch;
  batch.base_sequence = h.base_sequence;
  batch.records.resize(static_cast<size_t>(h.record_count));

  Reader reader(bytes.data() + kBatchHeaderSize, records_size);
  int64_t prev_offset_delta = -1;
  for (size_t i = 0; i < batch.records.size(); ++i) {
    Record& r = batch.records[i];
    SLUICE_RETURN_IF_ERROR(DecodeRecord(reader, i, h.base_timestamp, bounds, violation, &r));
    // Offsets must increase and stay within the batch (compaction may leave gaps, as in Kafka).
    if (r.offset_delta <= prev_offset_delta || r.offset_delta > h.last_offset_delta) {
      return RecordError(i, "offset delta out of order or past lastOffsetDelta");
    }
    prev_offset_delta = r.offset_delta;
  }
  if (reader.remaining() != 0) {
    return Status::Corruption("record batch: " + std::to_string(reader.remaining()) +
                              " bytes after the last record (record count mismatch)");
  }
  if (consumed != nullptr) {
    *consumed = h.total_size();
  }
  return batch;
}

Result<Record> DecodeRecordAt(std::string_view bytes, int64_t offset, bool verify_crc,
                              RecordPosition* hint) {
  Result<BatchHeader> parsed = ParseWalkableHeader(bytes, verify_crc);
  if (!parsed.ok()) {
    return parsed.status();
  }
  const BatchHeader& h = *parsed;
  if (offset < h.base_offset || offset - h.base_offset > h.last_offset_delta) {
    return Status::NotFound("offset " + std::to_string(offset) + " is outside the batch");
  }
  const int64_t want = offset - h.base_offset;
  int32_t first = 0;
  size_t skip = 0;
  if (hint != nullptr && hint->offset_delta >= 0 && hint->offset_delta <= want &&
      hint->byte_position <= h.total_size() - kBatchHeaderSize) {
    // Resume where an earlier call on this batch stopped (index hits come in rising offsets).
    first = hint->index;
    skip = hint->byte_position;
  }
  Reader reader(bytes.data() + kBatchHeaderSize + skip, h.total_size() - kBatchHeaderSize - skip);
  for (int32_t i = first; i < h.record_count; ++i) {
    // Peek at the record's offsetDelta; skip the record by its length unless it is the one.
    Reader peek = reader;
    Reader r(nullptr, 0);
    int64_t timestamp_delta = 0;
    int32_t offset_delta = 0;
    if (!ReadRecordHead(peek, &r, &timestamp_delta, &offset_delta)) {
      return RecordError(static_cast<size_t>(i), "invalid framing");
    }
    if (offset_delta == want) {
      if (hint != nullptr) {
        hint->index = i;
        hint->offset_delta = offset_delta;
        hint->byte_position = static_cast<size_t>(reader.data() - bytes.data()) - kBatchHeaderSize;
      }
      Record out;
      SLUICE_RETURN_IF_ERROR(DecodeRecord(reader, static_cast<size_t>(i), h.base_timestamp,
                                          kUnbounded, nullptr, &out));
      return out;
    }
    if (offset_delta > want) {
      break;  // deltas increase: compaction left a gap here
    }
    reader = peek;
  }
  return Status::NotFound("the batch holds no record at offset " + std::to_string(offset));
}

Status ForEachRecord(std::string_view bytes,
                     const std::function<void(int64_t offset, const RecordView& record)>& fn) {
  Result<BatchHeader> parsed = ParseWalkableHeader(bytes, /*verify_crc=*/true);
  if (!parsed.ok()) {
    return parsed.status();
  }
  const BatchHeader& h = *parsed;
  Reader reader(bytes.data() + kBatchHeaderSize, h.total_size() - kBatchHeaderSize);
  std::vector<HeaderView> headers;
  int64_t prev_offset_delta = -1;
  for (int32_t i = 0; i < h.record_count; ++i) {
    const size_t index = static_cast<size_t>(i);
    Reader r(nullptr, 0);
    int64_t timestamp_delta = 0;
    int32_t offset_delta = 0;
    if (!ReadRecordHead(reader, &r, &timestamp_delta, &offset_delta)) {
      return RecordError(index, "invalid framing");
    }
    if (offset_delta <= prev_offset_delta || offset_delta > h.last_offset_delta) {
      return RecordError(index, "offset delta out of order or past lastOffsetDelta");
    }
    prev_offset_delta = offset_delta;
    RecordView view;
    view.timestamp_ms = WrapAdd(h.base_timestamp, timestamp_delta);
    int32_t header_count = 0;
    if (!ReadField(r, true, &view.key) || !ReadField(r, true, &view.value) ||
        !r.ReadVarint(&header_count) || header_count < 0 ||
        static_cast<size_t>(header_count) > r.remaining() / 2) {
      return RecordError(index, "invalid key, value or header count");
    }
    headers.resize(static_cast<size_t>(header_count));
    for (HeaderView& hv : headers) {
      std::optional<std::string_view> k;
      std::optional<std::string_view> v;
      if (!ReadField(r, false, &k) || !ReadField(r, true, &v)) {
        return RecordError(index, "invalid header");
      }
      hv.key = *k;
      hv.value = v.value_or(std::string_view());
    }
    if (r.remaining() != 0) {
      return RecordError(index, "fields do not fill the record length");
    }
    view.headers = headers;
    fn(h.base_offset + offset_delta, view);
  }
  if (reader.remaining() != 0) {
    return Status::Corruption("record batch: " + std::to_string(reader.remaining()) +
                              " bytes after the last record (record count mismatch)");
  }
  return Status::Ok();
}

void SetBaseOffset(std::string& encoded, int64_t base_offset) {
  if (encoded.size() >= sizeof(int64_t)) {
    PutBig<int64_t>(encoded.data(), base_offset);
  }
}

}  // namespace sluice
