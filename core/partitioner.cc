// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) and the default partitioner's
// toPositive(murmur2(key)) % numPartitions. Java's int arithmetic wraps and `>>>` is a logical
// shift, so the hash is computed on uint32_t and reinterpreted as int32_t at the end.
#include "core/partitioner.h"

namespace sluice {

int32_t Murmur2(std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const uint32_t length = static_cast<uint32_t>(data.size());
  constexpr uint32_t kSeed = 0x9747b28cu;
  constexpr uint32_t kM = 0x5bd1e995u;
  constexpr int kR = 24;

  uint32_t h = kSeed ^ length;
  const uint32_t length4 = length / 4;
  for (uint32_t i = 0; i < length4; ++i) {
    const uint32_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(p[i4]) | (static_cast<uint32_t>(p[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(p[i4 + 2]) << 16) |
                 (static_cast<uint32_t>(p[i4 + 3]) << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const uint32_t tail = length & ~3u;
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(p[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(p[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(p[tail]);
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t PartitionForKey(std::string_view key, int32_t num_partitions) {
  if (num_partitions <= 0) {
    return 0;
  }
  // Kafka's Utils.toPositive: clear the sign bit (not abs, which would overflow on INT_MIN).
  const int32_t positive = Murmur2(key) & 0x7fffffff;
  return positive % num_partitions;
}

}  // namespace sluice
