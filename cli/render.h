// Renders broker API answers (docs/API.md) for people: the /v1/query summary, the /v1/topics
// table, and a record's one-line summary. Input is the JSON body as received; a body that is not
// the documented shape gives kInvalidArgument naming what is missing.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::cli {

inline constexpr size_t kPayloadPreviewChars = 60;

// A page of GET /v1/query: with `header`, the region, the matched count and a table of counts
// per country (when the answer has them: count=exact) or the page's record count, and the next
// cursor when more follow; then the page's records (device, sensor, country, ts RFC 3339,
// gateway, seq, topic/partition/offset, payload truncated). --all renders later pages without
// the header.
Status RenderQuery(const std::string& json, std::ostream& out, bool header = true);

// region, then one row per topic partition: start/end offsets, records, size in bytes.
Status RenderTopics(const std::string& json, std::ostream& out);
// GET /v1/query/aggregate: the region, then one table row per (bucket, group): the bucket's start
// as RFC 3339, the group, the count, and with a field its values, min, max, avg and sum.
Status RenderAggregate(const std::string& json, std::ostream& out);

// GET /v1/audit: the region and how many, then one row per refusal: time (RFC 3339), principal,
// gateway, country, topic, records, request id, reason.
Status RenderAudit(const std::string& json, std::ostream& out);

// One page of GET /v1/topics/{t}/partitions/{p}/records: each record's text as the broker sent
// it (values byte-exact) on one line, and the offsets to continue from.
struct FetchPage {
  std::vector<std::string> records;
  int64_t next_offset = 0;
  int64_t end_offset = 0;
};
Result<FetchPage> ParseFetchPage(const std::string& json);

// Left-aligned text table; the first row is the header. Columns in `right_align` are
// right-aligned (numbers).
std::string FormatTable(const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right_align = {});

// Cuts `s` to `max_chars`, ending in "..." when cut.
std::string Truncate(const std::string& s, size_t max_chars);

}  // namespace sluice::cli
