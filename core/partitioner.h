// Kafka's default partitioner for keyed records: murmur2 of the key bytes, made positive, mod N.
// Using it means a Kafka client producing with the same key picks the same partition.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice {

int32_t Murmur2(std::string_view data);
int32_t PartitionForKey(std::string_view key, int32_t num_partitions);

}  // namespace sluice
