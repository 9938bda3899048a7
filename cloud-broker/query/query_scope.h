// The partitions a query reads (query.h), each with what the query saw when it began: the index
// coverage first, then the high watermark, so [start, covered_end) is read through the index and
// [covered_end, end) scanned; and the ways queries and aggregates walk them. Each walk checks
// the deadline as it goes: past it, it sets *timed_out and returns Ok with the walk unfinished.
// Internal to cloud-broker/query.
#pragma once

#include <cstdint>
#include <functional>
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

// Every record of the uncovered tail [max(covered_end, start), end) in offset order (fn may move
// it), filter unapplied; *read counts them.
Status WalkTail(const QueryScope& s, const QueryDeadline& deadline,
                const std::function<Status(LogRecord&)>& fn, uint64_t* read, bool* timed_out);

// Every entry of the index's family for `filter` (index_stream.h) in its time range and country,
// for offsets in [start, covered_end), in (timestamp, offset) order; *entries counts those read.
// No record is read: the sensor filter is not applied.
Status WalkIndexEntries(const QueryScope& s, const QueryFilter& filter,
                        const QueryDeadline& deadline,
                        const std::function<Status(const IndexHit&)>& fn, uint64_t* entries,
                        bool* timed_out);

// Every record of [start, covered_end) that the index gives for `filter` and that matches the
// whole filter, in no particular order: the index's hits are taken in rounds of up to 256 K,
// each sorted by offset and read in that order, so each batch is read once per round however
// the timestamps are spread (read in time order, each hit of an out-of-order partition cost a
// batch read: 5 us a record instead of 0.4 us); *read counts the records read.
Status WalkIndexedRecords(const QueryScope& s, const QueryFilter& filter,
                          const QueryDeadline& deadline,
                          const std::function<Status(const Record&)>& fn, uint64_t* read,
                          bool* timed_out);

}  // namespace sluice::broker
