#include "cloud-broker/query/query_scope.h"

#include <algorithm>
#include <limits>

#include "cloud-broker/query/index_stream.h"
#include "core/partitioner.h"

namespace sluice::broker {
namespace {

constexpr size_t kChunkRecords = 1000;
constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kEntryPage = 4096;

}  // namespace

Result<std::vector<QueryScope>> QueryScopes(const TopicStore& store, const QueryFilter& filter,
                                            const IndexLookup& indexes) {
  std::vector<Topic*> topics;
  if (filter.topic.has_value()) {
    Topic* t = store.Find(*filter.topic);
    if (t == nullptr) {
      return Status::NotFound("unknown topic " + filter.topic->value());
    }
    topics.push_back(t);
  } else {
    for (Topic* t : store.Topics()) {
      if (!IsInternalTopic(t->name().value())) {
        topics.push_back(t);  // not consumer-group offsets: not events
      }
    }
  }
  std::vector<QueryScope> scopes;
  for (Topic* t : topics) {
    const int32_t n = t->partition_count();
    for (int32_t p = 0; p < n; ++p) {
      if (filter.device_id.has_value() && p != PartitionForKey(filter.device_id->value(), n)) {
        continue;
      }
      QueryScope s;
      s.topic = t->name().value();
      s.partition = p;
      s.log = t->partition(p);
      s.index = indexes ? indexes(s.topic, p) : nullptr;
      // The index's coverage first: it only grows towards the high watermark read next.
      const int64_t covered = s.index != nullptr ? s.index->covered() : 0;
      s.end = s.log->end_offset();
      s.covered_end = std::min(covered, s.end);
      if (s.covered_end <= s.log->start_offset()) {
        s.index = nullptr;  // nothing indexed that the log still holds
      }
      scopes.push_back(std::move(s));
    }
  }
  return scopes;
}

namespace {

// Every record of [max(from, start), to) in offset order.
Status WalkOffsets(const QueryScope& s, int64_t from, int64_t to, const QueryDeadline& deadline,
                   const std::function<Status(LogRecord&)>& fn, uint64_t* read,
                   bool* timed_out) {
  int64_t offset = std::max(from, s.log->start_offset());
  while (offset < to) {
    if (deadline.Passed()) {
      *timed_out = true;
      return Status::Ok();
    }
    Result<LogReadResult> chunk = s.log->Read(offset, kChunkRecords, kChunkBytes);
    if (!chunk.ok()) {
      if (chunk.status().code() == StatusCode::kInvalidArgument &&
          offset < s.log->start_offset()) {
        offset = s.log->start_offset();  // retention raced the scan
        continue;
      }
      return chunk.status();
    }
    for (LogRecord& lr : chunk->records) {
      if (lr.offset >= to) {
        return Status::Ok();
      }
      ++*read;
      SLUICE_RETURN_IF_ERROR(fn(lr));
    }
    if (chunk->next_offset <= offset) {
      break;  // no progress: nothing more to read
    }
    offset = chunk->next_offset;
  }
  return Status::Ok();
}

// Hits a walk in no particular order sorts by offset and reads at once: 16 bytes each.
constexpr size_t kRoundHits = 256 * 1024;

}  // namespace

Status WalkTail(const QueryScope& s, const QueryDeadline& deadline,
                const std::function<Status(LogRecord&)>& fn, uint64_t* read, bool* timed_out) {
  return WalkOffsets(s, s.covered_end, s.end, deadline, fn, read, timed_out);
}

Status WalkIndexEntries(const QueryScope& s, const QueryFilter& filter,
                        const QueryDeadline& deadline,
                        const std::function<Status(const IndexHit&)>& fn, uint64_t* entries,
                        bool* timed_out) {
  const int64_t from = filter.from_ms.value_or(std::numeric_limits<int64_t>::min());
  const int64_t to = filter.to_ms.value_or(std::numeric_limits<int64_t>::max());
  const int64_t start = s.log->start_offset();
  std::optional<IndexCursor> cursor;
  while (true) {
    if (deadline.Passed()) {
      *timed_out = true;
      return Status::Ok();
    }
    Result<std::vector<IndexHit>> hits =
        IndexFamilyHits(*s.index, filter, from, to, cursor, kEntryPage);
    if (!hits.ok()) {
      return hits.status();
    }
    *entries += hits->size();
    for (const IndexHit& h : *hits) {
      if (h.offset >= start && h.offset < s.covered_end &&
          (!filter.country.has_value() || h.country == filter.country->value())) {
        SLUICE_RETURN_IF_ERROR(fn(h));
      }
    }
    if (hits->size() < kEntryPage) {
      return Status::Ok();
    }
    cursor = IndexCursor{hits->back().ts_ms, hits->back().offset};
  }
}

Status WalkIndexedRecords(const QueryScope& s, const QueryFilter& filter,
                          const QueryDeadline& deadline,
                          const std::function<Status(const Record&)>& fn, uint64_t* read,
                          bool* timed_out) {
  const int64_t from = filter.from_ms.value_or(std::numeric_limits<int64_t>::min());
  const int64_t to = filter.to_ms.value_or(std::numeric_limits<int64_t>::max());
  const int64_t start = s.log->start_offset();
  std::optional<IndexCursor> cursor;
  std::vector<IndexHit> round;
  LogPointReader reader(*s.log);
  bool exhausted = false;
  Status st = Status::Ok();
  while (!exhausted && st.ok()) {
    round.clear();
    while (!exhausted && round.size() < kRoundHits) {
      if (deadline.Passed()) {
        *timed_out = true;
        break;
      }
      Result<std::vector<IndexHit>> hits =
          IndexFamilyHits(*s.index, filter, from, to, cursor, kEntryPage);
      if (!hits.ok()) {
        return hits.status();
      }
      exhausted = hits->size() < kEntryPage;
      if (!hits->empty()) {
        cursor = IndexCursor{hits->back().ts_ms, hits->back().offset};
      }
      for (const IndexHit& h : *hits) {
        if (h.offset >= start && h.offset < s.covered_end) {
          round.push_back(h);
        }
      }
    }
    if (*timed_out) {
      break;
    }
    // In offset order each batch is read once however the timestamps are spread over it.
    std::sort(round.begin(), round.end(),
              [](const IndexHit& a, const IndexHit& b) { return a.offset < b.offset; });
    for (size_t i = 0; i < round.size() && st.ok(); ++i) {
      if (i % 256 == 0 && deadline.Passed()) {
        *timed_out = true;
        break;
      }
      Result<std::optional<Record>> r = reader.Read(round[i].offset);
      if (!r.ok()) {
        st = r.status();
      } else if (r->has_value() && (*r)->timestamp_ms == round[i].ts_ms &&
                 filter.Matches(**r)) {
        st = fn(**r);  // else gone, or not the record indexed (the indexer catches up)
      }
    }
    if (*timed_out) {
      break;
    }
  }
  *read += reader.records_read();
  return st;
}

}  // namespace sluice::broker
