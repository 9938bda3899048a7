// The partitions a query reads (query.h), each with what the query saw when it began: the index
// coverage first, then the high watermark, so [start, covered_end) is read through the index and
// [covered_end, end) scanned. Internal to cloud-broker/query.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud-broker/query/query.h"

namespace sluice::broker {

// One partition a query reads, with what it saw when the query began.
struct QueryScope {
  std::string topic;
  int32_t partition = 0;
  const PartitionLog* log = nullptr;
  const PartitionIndex* index = nullptr;  // nullptr: scanned whole
  int64_t covered_end = 0;                // index up to here, the tail scan from here
  int64_t end = 0;                        // the high watermark
};

// The partitions a query reads: every partition of the topics in scope, or for a device only
// the partition its key maps to.
Result<std::vector<QueryScope>> QueryScopes(const TopicStore& store, const QueryFilter& filter,
                                            const IndexLookup& indexes);

}  // namespace sluice::broker
