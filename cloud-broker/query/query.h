// Query over the topics and partitions of this broker: records filtered by device id, country,
// sensor and device timestamp range, returned in (timestamp, topic, partition, offset) order,
// `limit` per page, with a `next` cursor (query_cursor.h) when more match.
// With an index per partition (cloud-broker/index, kept by StoreIndexer behind the log) a query
// reads the index up to the offset it covered when the query began and scans only the uncovered
// tail; a device query reads only the partition its key maps to (PartitionForKey, as produce
// places it); without an index (or for a partition not indexed yet) the whole partition is the
// tail. Work is proportional to the page, not to the log, unless `count_exact` asks for the exact
// number of matches (and per country), which walks every matching index entry (reading records
// only for a sensor filter) plus the tail.
// Memory: `limit` + 1 records from the tails, one page of index hits and one batch per partition.
// A QueryDeadline bounds the time: past it the query stops with timed_out set (query_pool.h runs
// queries off the HTTP threads).
// Reads stop at each partition's high watermark: what consumers may see.
// Thread-safety: RunQuery is safe concurrently with appends, indexing, retention and truncation.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cloud-broker/index/partition_index.h"
#include "cloud-broker/log/topic_store.h"
#include "core/clock.h"
#include "core/record.h"
#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::broker {

struct QueryFilter {
  std::optional<DeviceId> device_id;   // record key
  std::optional<CountryCode> country;  // `country` header
  std::optional<std::string> sensor;   // `sensor` header
  std::optional<int64_t> from_ms;      // record timestamp >= from (inclusive)
  std::optional<int64_t> to_ms;        // record timestamp < to (exclusive)
  std::optional<TopicName> topic;      // only this topic
  size_t limit = 100;
  bool count_exact = false;            // count=exact: `matched` and counts per country
  std::optional<std::string> cursor;   // a previous page's `next`

  bool Matches(const Record& r) const;
  // Identifies the records the filter selects (not limit, count or cursor): a cursor is only
  // valid with the filter it came from.
  uint32_t Fingerprint() const;
};

struct QueryMatch {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  Record record;
};

// The time budget of one query.
struct QueryDeadline {
  const Clock* clock = nullptr;  // nullptr: no budget
  int64_t at_us = 0;             // clock->MonotonicUs() from which the query gives up
  bool Passed() const { return clock != nullptr && clock->MonotonicUs() >= at_us; }
};

struct QueryResult {
  bool timed_out = false;  // stopped at the deadline: nothing else is meaningful
  uint64_t scanned = 0;    // records read from the logs (tail scans and index hits)
  uint64_t index_entries = 0;  // index entries counted (count_exact)
  std::vector<QueryMatch> records;  // the first `limit` matches after the cursor, in order
  uint64_t returned = 0;            // matches returned (in records, or passed to a sink)
  std::optional<std::string> next;  // set when more matches follow the last record
  // count_exact only: every match of the filter (ignoring cursor and limit), and per country.
  std::optional<uint64_t> matched;
  std::map<std::string, uint64_t> counts_by_country;
};

// Where RunQuery finds a partition's index; nullptr (or no lookup): the partition is scanned.
// The index must stay valid while the query runs (StoreIndexer keeps them until it stops).
using IndexLookup = std::function<const PartitionIndex*(const std::string& topic, int32_t p)>;

// A time parameter: epoch milliseconds or RFC 3339 ("2026-12-06T10:00:00Z").
bool ParseTimeParam(const std::string& s, int64_t* ms);

// Builds a filter from HTTP query parameters (device_id, country, sensor, from, to, limit, topic,
// count=exact, cursor). `from`/`to` are epoch milliseconds or RFC 3339. On a bad value returns
// kInvalidArgument and sets *bad_field to the parameter's name (the cursor's validity is checked
// by RunQuery, which answers kInvalidArgument for it).
Result<QueryFilter> ParseQueryFilter(const std::map<std::string, std::string>& params,
                                     int64_t default_limit, int64_t max_limit,
                                     std::string* bad_field);

// Where a streamed query's matches go, in order, as they are found (instead of
// QueryResult::records); an error stops the query and is returned by RunQuery.
using QuerySink = std::function<Status(QueryMatch&&)>;

struct QueryStreaming {
  QuerySink sink;
  // Matches of the uncovered tails held at most (they are found out of order and must be sorted
  // before any is passed on): past it the answer ends at the last held one, with `next`.
  size_t max_held = 100001;
};

// Runs the query. kNotFound if filter.topic names no topic; kInvalidArgument for a cursor that is
// not one of this filter's; kCorruption on an unreadable batch. Past `deadline` it returns with
// timed_out set. With `streaming`, matches go to its sink and `returned` counts them; a query
// that timed out after passing some on sets `next` where it may resume.
Result<QueryResult> RunQuery(const TopicStore& store, const QueryFilter& filter,
                             const QueryDeadline& deadline = {},
                             const IndexLookup& indexes = nullptr,
                             const QueryStreaming* streaming = nullptr);

}  // namespace sluice::broker
