#include "cloud-broker/query/query.h"

#include <cerrno>
#include <cstdlib>

#include "core/time_util.h"

namespace sluice::broker {
namespace {

constexpr size_t kChunkRecords = 1000;
constexpr size_t kChunkBytes = 1 << 20;

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

Status ScanPartition(const std::string& topic, int32_t p, const PartitionLog& log,
                     const QueryFilter& filter, const QueryDeadline& deadline, QueryResult* out) {
  int64_t offset = log.start_offset();
  const int64_t end = log.next_offset();
  while (offset < end) {
    if (deadline.Passed()) {
      out->timed_out = true;
      return Status::Ok();
    }
    Result<LogReadResult> chunk = log.Read(offset, kChunkRecords, kChunkBytes);
    if (!chunk.ok()) {
      return chunk.status();
    }
    for (LogRecord& lr : chunk->records) {
      if (lr.offset >= end) {
        return Status::Ok();
      }
      ++out->scanned;
      if (!filter.Matches(lr.record)) {
        continue;
      }
      ++out->matched;
      const std::string* country = lr.record.FindHeader(kHeaderCountry);
      ++out->counts_by_country[country != nullptr ? *country : ""];
      if (out->records.size() < filter.limit) {
        out->records.push_back(QueryMatch{topic, p, lr.offset, std::move(lr.record)});
      }
    }
    if (chunk->next_offset <= offset) {
      break;  // no progress: nothing more to read
    }
    offset = chunk->next_offset;
  }
  return Status::Ok();
}

}  // namespace

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
  if (from_ms.has_value() && r.timestamp_ms < *from_ms) {
    return false;
  }
  if (to_ms.has_value() && r.timestamp_ms >= *to_ms) {
    return false;
  }
  return true;
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
    } else {
      return fail(key, "unknown query parameter " + key);
    }
  }
  return f;
}

Result<QueryResult> RunQuery(const TopicStore& store, const QueryFilter& filter,
                             const QueryDeadline& deadline) {
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
  QueryResult out;
  for (Topic* t : topics) {
    for (int32_t p = 0; p < t->partition_count() && !out.timed_out; ++p) {
      SLUICE_RETURN_IF_ERROR(
          ScanPartition(t->name().value(), p, *t->partition(p), filter, deadline, &out));
    }
  }
  out.truncated = out.matched > out.records.size();
  return out;
}

}  // namespace sluice::broker
