// Kafka RecordBatch v2 (magic 2) codec: the one batch format Sluice uses on the wire from gateway
// to broker and on the broker's disk, so Kafka's tools can read what Sluice stores.
//
// Layout (big-endian), per the Kafka protocol documentation:
//   baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 (=2) |
//   crc uint32 (CRC-32C over attributes..end) | attributes int16 | lastOffsetDelta int32 |
//   baseTimestamp int64 | maxTimestamp int64 | producerId int64 | producerEpoch int16 |
//   baseSequence int32 | recordCount int32 | records...
// Each record: length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
//   keyLength varint | key | valueLength varint | value | headerCount varint |
//   (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*
// Sluice writes uncompressed batches (attributes compression bits = 0) and rejects others.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <functional>
#include <vector>

#include "core/record.h"
#include "core/status.h"

namespace sluice {

inline constexpr size_t kBatchHeaderSize = 61;  // bytes before the first record
inline constexpr size_t kBatchLogOverhead = 12;  // baseOffset + batchLength

// Batch attribute bits (Kafka's DefaultRecordBatch).
inline constexpr int16_t kAttrCompressionMask = 0x7;
inline constexpr int16_t kAttrTimestampType = 0x8;  // LogAppendTime
inline constexpr int16_t kAttrTransactional = 0x10;
inline constexpr int16_t kAttrControl = 0x20;

// What a producer may send (the broker's produce path; docs/API.md "Produce"). A Sluice gateway's
// records are far below: a key of at most 128 bytes, six headers.
inline constexpr size_t kMaxRecordsPerBatch = 100'000;
inline constexpr size_t kMaxHeadersPerRecord = 64;
inline constexpr size_t kMaxRecordKeyBytes = 1024;
inline constexpr size_t kMaxHeaderKeyBytes = 256;
inline constexpr size_t kMaxHeaderValueBytes = 4096;

// Bounds DecodeBatch checks while decoding, before it allocates for what they bound.
struct DecodeLimits {
  size_t max_records = kMaxRecordsPerBatch;
  size_t max_headers = kMaxHeadersPerRecord;
  size_t max_key_bytes = kMaxRecordKeyBytes;
  size_t max_header_key_bytes = kMaxHeaderKeyBytes;
  size_t max_header_value_bytes = kMaxHeaderValueBytes;
};

// Which record and field broke a DecodeLimits bound (field "records", "key" or "headers").
struct DecodeViolation {
  int64_t index = -1;  // the record, or -1 for the batch
  std::string field;
};

struct RecordBatch {
  int64_t base_offset = 0;
  int32_t partition_leader_epoch = -1;
  int16_t attributes = 0;
  int32_t last_offset_delta = -1;  // recomputed by Encode from records
  int64_t base_timestamp = 0;      // recomputed by Encode (first record's timestamp, as Kafka)
  int64_t max_timestamp = 0;       // recomputed by Encode
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  std::vector<Record> records;
};

// Fixed-size header fields, readable without decoding records.
struct BatchHeader {
  int64_t base_offset = 0;
  int32_t batch_length = 0;  // bytes after the batchLength field
  int32_t partition_leader_epoch = 0;
  int8_t magic = 0;
  uint32_t crc = 0;
  int16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = 0;
  int16_t producer_epoch = 0;
  int32_t base_sequence = 0;
  int32_t record_count = 0;
  size_t total_size() const { return kBatchLogOverhead + static_cast<size_t>(batch_length); }
};

// Encodes the batch. Record offset deltas are set to their index; timestamps, lastOffsetDelta
// and the CRC are computed.
std::string EncodeBatch(const RecordBatch& batch);
// The same for records given as views (batch.records is ignored; its header fields are used).
std::string EncodeBatch(const RecordBatch& batch, std::span<const RecordView> records);

// Parses and validates the header of the batch at the start of `bytes`: magic, length bounds
// (kCorruption if `bytes` holds less than the whole batch: a truncated or torn batch), CRC.
Result<BatchHeader> ParseBatchHeader(std::string_view bytes, bool verify_crc = true);

// Decodes one whole batch (header + records), verifying the CRC and every record's framing.
// `consumed`, if given, receives the batch's total size. Errors: kCorruption (CRC, framing),
// kInvalidArgument for a compressed batch, and, with `limits`, kInvalidArgument for a record
// over a bound (then *violation, if given, names it). Without `limits` (stored data, read
// back) only the framing bounds sizes.
Result<RecordBatch> DecodeBatch(std::string_view bytes, size_t* consumed = nullptr,
                                const DecodeLimits* limits = nullptr,
                                DecodeViolation* violation = nullptr);

// Where DecodeRecordAt found a record in a batch, so the next call on the same batch for a later
// offset starts there instead of at the first record. A default one means "from the start".
struct RecordPosition {
  int32_t index = 0;
  int64_t offset_delta = -1;
  size_t byte_position = 0;  // from the first record
};

// The record at `offset` of the (stored, base offset set) batch at the start of `bytes`, decoding
// only that record: the ones before it (from `hint`'s position when given and not past it) are
// skipped by their length, so a point read of an index hit costs one record, not the batch.
// The CRC is verified when asked (once per batch is enough: pass false for later calls on bytes
// already verified). kNotFound if the batch holds no record at `offset`; kCorruption and
// kInvalidArgument as DecodeBatch. `hint` (may be null) is updated to the record found.
Result<Record> DecodeRecordAt(std::string_view bytes, int64_t offset, bool verify_crc = true,
                              RecordPosition* hint = nullptr);

// Calls fn(offset, record) for every record of the batch at the start of `bytes`, in order, with
// views into `bytes` (valid during the call): nothing is copied or allocated per record (an
// indexer reads keys, timestamps and headers only). Verifies the CRC and framing as DecodeBatch;
// on an error, records before it were visited.
Status ForEachRecord(std::string_view bytes,
                     const std::function<void(int64_t offset, const RecordView& record)>& fn);

// Overwrites baseOffset in an encoded batch. baseOffset is outside the CRC, as in Kafka, so the
// broker can assign offsets without re-encoding.
void SetBaseOffset(std::string& encoded, int64_t base_offset);

}  // namespace sluice
