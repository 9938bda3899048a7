#include "cloud-broker/query/query.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <queue>
#include <tuple>

#include "cloud-broker/query/index_stream.h"
#include "cloud-broker/query/query_cursor.h"
#include "cloud-broker/query/query_scope.h"
#include "core/crc32c.h"
#include "core/partitioner.h"
#include "core/time_util.h"

namespace sluice::broker {
namespace {

constexpr size_t kMaxSensorBytes = 256;
constexpr size_t kMaxCursorBytes = 1024;

bool ParseInt64(const std::string& s, int64_t* v) {
  if (s.empty()) {
    return false;
  }
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) {
    return false;
  }
  *v = x;
  return true;
}

bool ParseTime(const std::string& s, int64_t* ms) {
  return ParseInt64(s, ms) || ParseRfc3339Ms(s, ms);
}


QueryPosition PositionOf(const QueryMatch& m) {
  return {m.record.timestamp_ms, m.topic, m.partition, m.offset};
}

// What a cursor admits in one partition: ts after the cursor's, or equal and then by
// (topic, partition, offset).
std::optional<AfterBound> BoundFor(const QueryScope& s, const std::optional<QueryPosition>& at) {
  if (!at.has_value()) {
    return std::nullopt;
  }
  const auto mine = std::tie(s.topic, s.partition);
  const auto theirs = std::tie(at->topic, at->partition);
  if (mine == theirs) {
    return AfterBound{at->ts_ms, at->offset};
  }
  return AfterBound{at->ts_ms, mine > theirs ? -1 : std::numeric_limits<int64_t>::max()};
}

// The `want` first matches by position, from any number of offers.
class FirstMatches {
 public:
  explicit FirstMatches(size_t want) : want_(want) {}
  void Offer(QueryMatch&& m) {
    if (want_ == 0) {
      dropped_ = true;
      return;
    }
    if (heap_.size() == want_) {
      dropped_ = true;
      if (!PositionLess(PositionOf(m), PositionOf(heap_.front()))) {
        return;
      }
      std::pop_heap(heap_.begin(), heap_.end(), Later);
      heap_.pop_back();
    }
    heap_.push_back(std::move(m));
    std::push_heap(heap_.begin(), heap_.end(), Later);
  }
  std::vector<QueryMatch> Sorted() && {
    std::sort_heap(heap_.begin(), heap_.end(), Later);
    return std::move(heap_);
  }
  // Whether a match was offered past `want` (so matches after the last held one may be missing).
  bool dropped() const { return dropped_; }

 private:
  static bool Later(const QueryMatch& a, const QueryMatch& b) {
    return PositionLess(PositionOf(a), PositionOf(b));  // max-heap: the latest on top
  }
  const size_t want_;
  std::vector<QueryMatch> heap_;
  bool dropped_ = false;
};

// Counts a match of count_exact.
void CountMatch(const std::string& country, QueryResult* out) {
  ++*out->matched;
  ++out->counts_by_country[country];
}

const std::string& CountryOf(const Record& r) {
  static const std::string kNone;
  const std::string* country = r.FindHeader(kHeaderCountry);
  return country != nullptr ? *country : kNone;
}

// The uncovered tail: every record read and checked; matches after the cursor offered to
// `first`; with count_exact every match counted.
Status ScanTail(const QueryScope& s, const QueryFilter& filter,
                const std::optional<AfterBound>& bound, const QueryDeadline& deadline,
                FirstMatches* first, QueryResult* out) {
  return WalkTail(
      s, deadline,
      [&](LogRecord& lr) {
        if (!filter.Matches(lr.record)) {
          return Status::Ok();
        }
        if (filter.count_exact) {
          CountMatch(CountryOf(lr.record), out);
        }
        if (!bound.has_value() || bound->Admits(lr.record.timestamp_ms, lr.offset)) {
          first->Offer(QueryMatch{s.topic, s.partition, lr.offset, std::move(lr.record)});
        }
        return Status::Ok();
      },
      &out->scanned, &out->timed_out);
}

// count_exact over the indexed part: index entries only, unless a sensor filter needs each
// record.
Status CountIndexed(const QueryScope& s, const QueryFilter& filter, const QueryDeadline& deadline,
                    QueryResult* out) {
  if (filter.sensor.has_value()) {
    return WalkIndexedRecords(
        s, filter, deadline,
        [&](const Record& r) {
          CountMatch(CountryOf(r), out);
          return Status::Ok();
        },
        &out->scanned, &out->timed_out);
  }
  return WalkIndexEntries(
      s, filter, deadline,
      [&](const IndexHit& h) {
        CountMatch(h.country, out);
        return Status::Ok();
      },
      &out->index_entries, &out->timed_out);
}

}  // namespace

bool ParseTimeParam(const std::string& s, int64_t* ms) { return ParseTime(s, ms); }

bool QueryFilter::Matches(const Record& r) const {
  if (device_id.has_value() && (!r.key.has_value() || *r.key != device_id->value())) {
    return false;
  }
  if (country.has_value()) {
    const std::string* c = r.FindHeader(kHeaderCountry);
    if (c == nullptr || *c != country->value()) {
      return false;
    }
  }
  if (sensor.has_value()) {
    const std::string* v = r.FindHeader(kHeaderSensor);
    if (v == nullptr || *v != *sensor) {
      return false;
    }
  }
  if (from_ms.has_value() && r.timestamp_ms < *from_ms) {
    return false;
  }
  if (to_ms.has_value() && r.timestamp_ms >= *to_ms) {
    return false;
  }
  return true;
}

uint32_t QueryFilter::Fingerprint() const {
  std::string canon;
  auto field = [&](char tag, const std::optional<std::string>& v) {
    canon.push_back(tag);
    if (v.has_value()) {
      canon += std::to_string(v->size()) + ":" + *v;
    }
    canon.push_back(';');
  };
  field('d', device_id ? std::optional<std::string>(device_id->value()) : std::nullopt);
  field('c', country ? std::optional<std::string>(country->value()) : std::nullopt);
  field('s', sensor);
  field('f', from_ms ? std::optional<std::string>(std::to_string(*from_ms)) : std::nullopt);
  field('t', to_ms ? std::optional<std::string>(std::to_string(*to_ms)) : std::nullopt);
  field('p', topic ? std::optional<std::string>(topic->value()) : std::nullopt);
  return crc32c::Value(canon);
}

Result<QueryFilter> ParseQueryFilter(const std::map<std::string, std::string>& params,
                                     int64_t default_limit, int64_t max_limit,
                                     std::string* bad_field) {
  QueryFilter f;
  f.limit = static_cast<size_t>(default_limit);
  auto fail = [&](const std::string& field, const std::string& reason) {
    *bad_field = field;
    return Status::InvalidArgument(reason);
  };
  for (const auto& [key, value] : params) {
    if (key == "device_id") {
      f.device_id = DeviceId(value);
    } else if (key == "country") {
      if (!IsCountryCodeShape(value)) {
        return fail(key, "country must be an ISO 3166-1 alpha-2 code such as DE");
      }
      f.country = CountryCode(value);
    } else if (key == "from" || key == "to") {
      int64_t ms;
      if (!ParseTime(value, &ms)) {
        return fail(key, key + " must be epoch milliseconds or an RFC 3339 time");
      }
      (key == "from" ? f.from_ms : f.to_ms) = ms;
    } else if (key == "limit") {
      int64_t n;
      if (!ParseInt64(value, &n) || n < 0 || n > max_limit) {
        return fail(key, "limit must be an integer in 0.." + std::to_string(max_limit));
      }
      f.limit = static_cast<size_t>(n);
    } else if (key == "topic") {
      f.topic = TopicName(value);
    } else if (key == "sensor") {
      if (value.empty() || value.size() > kMaxSensorBytes) {
        return fail(key, "sensor must be 1.." + std::to_string(kMaxSensorBytes) + " bytes");
      }
      f.sensor = value;
    } else if (key == "count") {
      if (value != "exact" && value != "none") {
        return fail(key, "count must be exact or none");
      }
      f.count_exact = value == "exact";
    } else if (key == "cursor") {
      if (value.empty() || value.size() > kMaxCursorBytes) {
        return fail(key, "cursor must be a `next` value of an earlier page");
      }
      f.cursor = value;
    } else {
      return fail(key, "unknown query parameter " + key);
    }
  }
  return f;
}

Result<QueryResult> RunQuery(const TopicStore& store, const QueryFilter& filter,
                             const QueryDeadline& deadline, const IndexLookup& indexes,
                             const QueryStreaming* streaming) {
  std::optional<QueryPosition> at;
  if (filter.cursor.has_value()) {
    Result<QueryPosition> decoded = DecodeCursor(*filter.cursor, filter.Fingerprint());
    if (!decoded.ok()) {
      return decoded.status();
    }
    at = std::move(decoded).value();
  }
  Result<std::vector<QueryScope>> scopes = QueryScopes(store, filter, indexes);
  if (!scopes.ok()) {
    return scopes.status();
  }
  QueryResult out;
  if (deadline.Passed()) {  // it waited for a query thread past its budget
    out.timed_out = true;
    return out;
  }
  if (filter.count_exact) {
    out.matched = 0;
  }
  // One more than the page: whether another page follows (the tail's part of it, at most
  // max_held when streaming).
  const size_t want = filter.limit == std::numeric_limits<size_t>::max() ? filter.limit
                                                                         : filter.limit + 1;
  FirstMatches first(streaming != nullptr ? std::min(want, streaming->max_held) : want);
  for (const QueryScope& s : *scopes) {
    SLUICE_RETURN_IF_ERROR(ScanTail(s, filter, BoundFor(s, at), deadline, &first, &out));
    if (filter.count_exact && s.index != nullptr && !out.timed_out) {
      SLUICE_RETURN_IF_ERROR(CountIndexed(s, filter, deadline, &out));
    }
    if (out.timed_out) {
      return out;
    }
  }
  const bool tail_cut = first.dropped();
  std::vector<QueryMatch> tail = std::move(first).Sorted();

  // Merge the tails' first matches with every partition's index stream, by position.
  struct Head {
    QueryPosition pos;
    size_t stream;
  };
  auto later = [](const Head& a, const Head& b) { return PositionLess(b.pos, a.pos); };
  std::priority_queue<Head, std::vector<Head>, decltype(later)> heads(later);
  std::vector<std::unique_ptr<IndexStream>> streams;
  std::vector<const QueryScope*> stream_scope;
  bool stream_timed_out = false;  // a stream stopped at the deadline: its part is unfinished
  auto push_head = [&](size_t i) -> Status {
    Result<LogRecord*> r = streams[i]->Peek();
    if (!r.ok()) {
      return r.status();
    }
    if (*r != nullptr) {
      heads.push({{(*r)->record.timestamp_ms, stream_scope[i]->topic, stream_scope[i]->partition,
                   (*r)->offset},
                  i});
    }
    stream_timed_out = stream_timed_out || streams[i]->timed_out();
    return Status::Ok();
  };
  for (const QueryScope& s : *scopes) {
    if (s.index == nullptr) {
      continue;
    }
    streams.push_back(std::make_unique<IndexStream>(*s.log, *s.index, filter, BoundFor(s, at),
                                                    s.covered_end, &deadline));
    stream_scope.push_back(&s);
    SLUICE_RETURN_IF_ERROR(push_head(streams.size() - 1));
  }
  std::optional<QueryPosition> last;  // of the last match returned
  bool more = false;                  // matches follow the last one returned
  auto emit = [&](QueryMatch&& m) -> Status {
    last = PositionOf(m);
    ++out.returned;
    if (streaming != nullptr) {
      return streaming->sink(std::move(m));
    }
    out.records.push_back(std::move(m));
    return Status::Ok();
  };
  size_t next_tail = 0;
  while (!heads.empty() || next_tail < tail.size()) {
    if (out.returned == filter.limit) {
      more = true;  // a match past the page
      break;
    }
    if (tail_cut && next_tail == tail.size()) {
      more = true;  // tail matches after the last held one were not kept: end the page here
      break;
    }
    if (out.returned % 64 == 63 && deadline.Passed()) {
      out.timed_out = true;
      break;
    }
    if (stream_timed_out) {
      out.timed_out = true;
      break;
    }
    if (heads.empty() || (next_tail < tail.size() &&
                          PositionLess(PositionOf(tail[next_tail]), heads.top().pos))) {
      SLUICE_RETURN_IF_ERROR(emit(std::move(tail[next_tail++])));
      continue;
    }
    const size_t i = heads.top().stream;
    heads.pop();
    Result<LogRecord*> r = streams[i]->Peek();
    if (!r.ok()) {
      return r.status();
    }
    SLUICE_RETURN_IF_ERROR(emit(QueryMatch{stream_scope[i]->topic, stream_scope[i]->partition,
                                           (*r)->offset, std::move((*r)->record)}));
    streams[i]->Pop();
    SLUICE_RETURN_IF_ERROR(push_head(i));
  }
  if (tail_cut && next_tail == tail.size()) {
    more = true;  // every held tail match was returned: the ones not held follow
  }
  for (const auto& s : streams) {
    out.scanned += s->records_read();
  }
  // A stream that stopped at the deadline ended early: the merge is not the whole answer.
  out.timed_out = out.timed_out || stream_timed_out;
  if ((more || (out.timed_out && streaming != nullptr)) && last.has_value()) {
    out.next = EncodeCursor(*last, filter.Fingerprint());
  }
  return out;
}

}  // namespace sluice::broker
