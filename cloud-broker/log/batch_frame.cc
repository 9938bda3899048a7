#include "cloud-broker/log/batch_frame.h"

#include "core/record_batch.h"

namespace sluice::broker {
namespace {

uint64_t ReadBe(std::string_view b, size_t pos, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  }
  return v;
}

// Field positions in a RecordBatch v2 (see core/record_batch.h).
constexpr size_t kBatchLengthPos = 8;
constexpr size_t kLeaderEpochPos = 12;
constexpr size_t kMagicPos = 16;
constexpr size_t kLastOffsetDeltaPos = 23;
constexpr size_t kMaxTimestampPos = 35;

}  // namespace

bool PeekBatchFrame(std::string_view header, BatchFrame* frame) {
  if (header.size() < kBatchHeaderSize) {
    return false;
  }
  frame->base_offset = static_cast<int64_t>(ReadBe(header, 0, 8));
  frame->batch_length = static_cast<int32_t>(ReadBe(header, kBatchLengthPos, 4));
  frame->leader_epoch = static_cast<int32_t>(ReadBe(header, kLeaderEpochPos, 4));
  frame->magic = static_cast<int8_t>(header[kMagicPos]);
  frame->last_offset_delta = static_cast<int32_t>(ReadBe(header, kLastOffsetDeltaPos, 4));
  frame->max_timestamp = static_cast<int64_t>(ReadBe(header, kMaxTimestampPos, 8));
  return frame->magic == 2 &&
         frame->batch_length >= static_cast<int32_t>(kBatchHeaderSize - kBatchLogOverhead) &&
         frame->last_offset_delta >= 0 && frame->base_offset >= 0;
}

void SetLeaderEpoch(std::string& encoded, int32_t epoch) {
  const uint32_t v = static_cast<uint32_t>(epoch);
  for (size_t i = 0; i < 4; ++i) {
    encoded[kLeaderEpochPos + i] = static_cast<char>(v >> (8 * (3 - i)));
  }
}

}  // namespace sluice::broker
