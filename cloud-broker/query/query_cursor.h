// The `next` cursor of GET /v1/query: where a page ended, in the query's order (record timestamp,
// then topic name, partition and offset). The next page holds the matches strictly after it.
// No snapshot is kept: a record visible when the first page was asked stays at its place in the
// order, so paging returns each of them exactly once; records that arrive meanwhile are returned
// when they sort after the cursor (and never twice).
// The cursor also carries a fingerprint of the filter (device, country, sensor, from, to, topic),
// so a cursor used with another filter is refused instead of silently skipping records.
// Text form: base64url without padding (safe in a query string), ~40 bytes plus the topic name.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace sluice::broker {

struct QueryPosition {
  int64_t ts_ms = 0;
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};

// Strict order of positions (the order records are returned in).
bool PositionLess(const QueryPosition& a, const QueryPosition& b);

std::string EncodeCursor(const QueryPosition& at, uint32_t filter_fingerprint);
// kInvalidArgument if `text` is not a cursor, or one of another filter ("cursor belongs to
// another query").
Result<QueryPosition> DecodeCursor(const std::string& text, uint32_t filter_fingerprint);

}  // namespace sluice::broker
