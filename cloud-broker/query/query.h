// Query over every topic and partition of this broker: filter records by device id, country and
// device timestamp range, count all matches (and per country), and return the first `limit`
// matches in (topic, partition, offset) order.
// The scan is linear but streamed: partitions are read in bounded chunks, so memory stays at
// one chunk plus the `limit` records kept. (A later issue can add time and key indexes.)
// A QueryDeadline bounds the time: it is checked before every chunk (and partition), and a query
// past it stops with timed_out set (query_pool.h runs queries off the HTTP threads).
// Thread-safety: RunQuery is safe concurrently with appends; it reads each partition up to the
// end offset it saw when it reached that partition.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cloud-broker/log/topic_store.h"
#include "core/clock.h"
#include "core/record.h"
#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::broker {

struct QueryFilter {
  std::optional<DeviceId> device_id;   // record key
  std::optional<CountryCode> country;  // `country` header
  std::optional<int64_t> from_ms;      // record timestamp >= from (inclusive)
  std::optional<int64_t> to_ms;        // record timestamp < to (exclusive)
  std::optional<TopicName> topic;      // only this topic
  size_t limit = 100;

  bool Matches(const Record& r) const;
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
  bool timed_out = false;  // stopped at the deadline: the counts cover only what was scanned
  uint64_t scanned = 0;    // records read
  uint64_t matched = 0;    // all matches, not only those returned
  bool truncated = false;
  std::map<std::string, uint64_t> counts_by_country;  // over all matches
  std::vector<QueryMatch> records;                     // the first `limit` matches
};

// Builds a filter from HTTP query parameters (device_id, country, from, to, limit, topic).
// `from`/`to` are epoch milliseconds or RFC 3339. On a bad value returns kInvalidArgument and
// sets *bad_field to the parameter's name.
Result<QueryFilter> ParseQueryFilter(const std::map<std::string, std::string>& params,
                                     int64_t default_limit, int64_t max_limit,
                                     std::string* bad_field);

// Runs the query. kNotFound if filter.topic names no topic; kCorruption on an unreadable batch.
// Past `deadline` it returns what it has with timed_out set.
Result<QueryResult> RunQuery(const TopicStore& store, const QueryFilter& filter,
                             const QueryDeadline& deadline = {});

}  // namespace sluice::broker
