// Aggregates of a region's records for dashboards (issue 12): counts of the records a filter
// selects (the filter of query.h: device, country, sensor, time range, topic), per time bucket
// (1m, 1h, 1d) and/or per country, device or sensor, with min/max/sum/avg of one numeric
// top-level field of JSON payloads (`field=v`).
// Counts per country (or none) come from the index's per-minute rollups for whole minutes and
// from index entries (each carries its record's timestamp and country) for the partial minutes
// at the ends of the range and for device filters; per device, per sensor, a sensor filter or a field read each record
// (one record decoded per hit); the uncovered tail is scanned. Payloads are read with a
// non-recursive parser that stops at the field, so no payload can exhaust the stack.
// Bounded: at most kMaxBuckets buckets (checked before reading) and max_rows result rows
// (checked while reading: kResourceExhausted); the QueryDeadline stops it (timed_out).
// Thread-safety: as RunQuery.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cloud-broker/query/query.h"

namespace sluice::broker {

struct AggregateSpec {
  QueryFilter filter;                // limit, cursor and count are not used
  std::optional<int64_t> bucket_ms;  // 60,000, 3,600,000 or 86,400,000; none: one bucket
  std::string group_by;              // "", "country", "device" or "sensor"
  std::optional<std::string> field;  // a top-level numeric field of JSON payloads
  size_t max_rows = 100000;
};

struct AggregateRow {
  int64_t bucket_start = 0;  // with a bucket: its start (epoch ms, aligned to the bucket)
  std::string group;         // with group_by: the country, device or sensor ("" if none)
  uint64_t count = 0;        // records
  // With a field: over the records whose payload has it as a number.
  uint64_t values = 0;
  double min = 0;
  double max = 0;
  double sum = 0;
};

struct AggregateResult {
  bool timed_out = false;
  uint64_t index_entries = 0;  // index entries read
  uint64_t rollups = 0;        // per-minute rollup counts read
  uint64_t records_read = 0;   // records read from the logs
  std::vector<AggregateRow> rows;  // by (bucket_start, group)
};

inline constexpr int64_t kMaxBuckets = 10000;

// From HTTP parameters: the filter's (device_id, country, sensor, from, to, topic) and bucket,
// group_by, field. kInvalidArgument naming *bad_field for a bad one, for a bucket other than
// 1m|1h|1d, or when from/to span more than kMaxBuckets buckets (or are missing with a bucket).
Result<AggregateSpec> ParseAggregateSpec(const std::map<std::string, std::string>& params,
                                         size_t max_rows, std::string* bad_field);

// kNotFound for an unknown topic; kResourceExhausted past max_rows rows; kCorruption as RunQuery.
Result<AggregateResult> RunAggregate(const TopicStore& store, const AggregateSpec& spec,
                                     const QueryDeadline& deadline = {},
                                     const IndexLookup& indexes = nullptr);

// The numeric value of top-level `field` in a JSON object payload; nullopt if the payload is not
// a JSON object, has no such field, or it is not a number. Iterative (no recursion).
std::optional<double> TopLevelNumber(std::string_view payload, const std::string& field);

}  // namespace sluice::broker
