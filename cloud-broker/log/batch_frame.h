// Reads the framing fields of an encoded RecordBatch v2 (baseOffset, batchLength,
// partitionLeaderEpoch, magic, lastOffsetDelta, maxTimestamp) from its first kBatchHeaderSize
// bytes, without the rest of the batch and without a CRC check: what the log needs to walk a
// segment and to build its indexes.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::broker {

struct BatchFrame {
  int64_t base_offset = 0;
  int32_t batch_length = 0;  // bytes after the batchLength field
  int32_t leader_epoch = -1;  // partitionLeaderEpoch; -1: none assigned
  int8_t magic = 0;
  int32_t last_offset_delta = 0;
  int64_t max_timestamp = 0;
  uint64_t total_size() const { return 12 + static_cast<uint64_t>(batch_length); }
};

// False if `header` is shorter than kBatchHeaderSize, the magic is not 2, or batchLength is too
// small to hold a batch header or lastOffsetDelta is negative.
bool PeekBatchFrame(std::string_view header, BatchFrame* frame);

// Overwrites partitionLeaderEpoch in an encoded batch (at least 16 bytes). Like baseOffset it is
// outside the CRC, so a leader stamps its epoch without re-encoding (Kafka does the same).
void SetLeaderEpoch(std::string& encoded, int32_t epoch);

}  // namespace sluice::broker
