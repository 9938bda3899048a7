#include "cloud-broker/query/aggregate.h"

#include <rapidjson/reader.h>

#include <algorithm>
#include <limits>
#include <tuple>

#include "cloud-broker/query/index_stream.h"
#include "cloud-broker/query/query_scope.h"

namespace sluice::broker {
namespace {

constexpr size_t kIndexPage = 4096;
constexpr size_t kChunkRecords = 1000;
constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kMaxFieldBytes = 256;

// SAX handler: the number under `field` at the top level of an object; stops there.
class TopLevelField : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TopLevelField> {
 public:
  explicit TopLevelField(const std::string& field) : field_(field) {}
  bool Default() { return Leaf(); }
  bool Null() { return Leaf(); }
  bool Bool(bool) { return Leaf(); }
  bool Int(int v) { return Number(v); }
  bool Uint(unsigned v) { return Number(v); }
  bool Int64(int64_t v) { return Number(static_cast<double>(v)); }
  bool Uint64(uint64_t v) { return Number(static_cast<double>(v)); }
  bool Double(double v) { return Number(v); }
  bool String(const char*, rapidjson::SizeType, bool) { return Leaf(); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    wanted_ = depth_ == 1 && std::string_view(s, n) == field_;
    return true;
  }
  bool StartObject() {
    if (depth_ == 0) {
      object_ = true;
    }
    return Open();
  }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool StartArray() { return Open(); }
  bool EndArray(rapidjson::SizeType) { return Close(); }
  std::optional<double> value() const { return value_; }

 private:
  bool Number(double v) {
    if (object_ && depth_ == 1 && wanted_) {
      value_ = v;
      return false;  // found: stop parsing
    }
    return Leaf();
  }
  bool Leaf() {
    wanted_ = false;
    return object_ || depth_ > 0;  // a top-level scalar is not an object
  }
  bool Open() {
    const bool was_wanted = wanted_ && depth_ == 1;
    wanted_ = false;
    ++depth_;
    return object_ && !was_wanted;  // the field is an object or array: not a number
  }
  bool Close() {
    --depth_;
    wanted_ = false;
    return depth_ > 0;  // the top-level value ended: nothing more to read
  }

  const std::string& field_;
  int depth_ = 0;
  bool object_ = false;
  bool wanted_ = false;
  std::optional<double> value_;
};

// Rows by (bucket_start, group), bounded.
class Rows {
 public:
  Rows(const AggregateSpec& spec) : spec_(spec) {}
  Status Add(int64_t ts, const std::string& group, const std::optional<double>& value) {
    int64_t start = 0;
    if (spec_.bucket_ms.has_value()) {
      const int64_t b = *spec_.bucket_ms;
      start = ts >= 0 ? ts / b * b : -((-ts + b - 1) / b) * b;  // floor
    }
    auto it = rows_.find({start, group});
    if (it == rows_.end()) {
      if (rows_.size() >= spec_.max_rows) {
        return Status::ResourceExhausted(
            "more than " + std::to_string(spec_.max_rows) +
            " rows (buckets x groups): narrow from/to or the filter, or use a larger bucket");
      }
      it = rows_.emplace(std::make_pair(start, group), AggregateRow{start, group}).first;
    }
    AggregateRow& r = it->second;
    ++r.count;
    if (value.has_value()) {
      if (r.values == 0 || *value < r.min) r.min = *value;
      if (r.values == 0 || *value > r.max) r.max = *value;
      r.sum += *value;
      ++r.values;
    }
    return Status::Ok();
  }
  std::vector<AggregateRow> Take() {
    std::vector<AggregateRow> out;
    out.reserve(rows_.size());
    for (auto& [key, row] : rows_) {
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  const AggregateSpec& spec_;
  std::map<std::pair<int64_t, std::string>, AggregateRow> rows_;
};

const std::string& HeaderOr(const Record& r, const char* name, const std::string& none) {
  const std::string* v = r.FindHeader(name);
  return v != nullptr ? *v : none;
}

// Adds one record read from the log.
Status AddRecord(const AggregateSpec& spec, const Record& r, Rows* rows) {
  static const std::string kNone;
  const std::string& group = spec.group_by == "country"  ? HeaderOr(r, kHeaderCountry, kNone)
                             : spec.group_by == "sensor" ? HeaderOr(r, kHeaderSensor, kNone)
                             : spec.group_by == "device" ? r.key.has_value() ? *r.key : kNone
                                                         : kNone;
  std::optional<double> value;
  if (spec.field.has_value() && r.value.has_value()) {
    value = TopLevelNumber(*r.value, *spec.field);
  }
  return rows->Add(r.timestamp_ms, group, value);
}

}  // namespace

std::optional<double> TopLevelNumber(std::string_view payload, const std::string& field) {
  TopLevelField handler(field);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(payload.data(), payload.size());
  reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseStopWhenDoneFlag>(ms, handler);
  return handler.value();
}

Result<AggregateSpec> ParseAggregateSpec(const std::map<std::string, std::string>& params,
                                         size_t max_rows, std::string* bad_field) {
  std::map<std::string, std::string> filter_params;
  AggregateSpec spec;
  spec.max_rows = max_rows;
  for (const auto& [key, value] : params) {
    if (key == "bucket") {
      if (value == "1m") {
        spec.bucket_ms = 60'000;
      } else if (value == "1h") {
        spec.bucket_ms = 3'600'000;
      } else if (value == "1d") {
        spec.bucket_ms = 86'400'000;
      } else {
        *bad_field = key;
        return Status::InvalidArgument("bucket must be 1m, 1h or 1d");
      }
    } else if (key == "group_by") {
      if (value != "country" && value != "device" && value != "sensor") {
        *bad_field = key;
        return Status::InvalidArgument("group_by must be country, device or sensor");
      }
      spec.group_by = value;
    } else if (key == "field") {
      if (value.empty() || value.size() > kMaxFieldBytes) {
        *bad_field = key;
        return Status::InvalidArgument("field must be 1.." + std::to_string(kMaxFieldBytes) +
                                       " bytes");
      }
      spec.field = value;
    } else if (key == "limit" || key == "cursor" || key == "count") {
      *bad_field = key;
      return Status::InvalidArgument(key + " does not apply to aggregates");
    } else {
      filter_params.emplace(key, value);
    }
  }
  Result<QueryFilter> filter = ParseQueryFilter(filter_params, 0, 0, bad_field);
  if (!filter.ok()) {
    return filter.status();
  }
  spec.filter = std::move(filter).value();
  if (spec.bucket_ms.has_value()) {
    if (!spec.filter.from_ms.has_value() || !spec.filter.to_ms.has_value()) {
      *bad_field = spec.filter.from_ms.has_value() ? "to" : "from";
      return Status::InvalidArgument("a bucketed aggregate needs from and to");
    }
    const int64_t span = *spec.filter.to_ms - *spec.filter.from_ms;
    if (span <= 0 || span / *spec.bucket_ms >= kMaxBuckets) {
      *bad_field = "bucket";
      return Status::InvalidArgument("from/to must span 1.." + std::to_string(kMaxBuckets) +
                                     " buckets");
    }
  }
  return spec;
}

Result<AggregateResult> RunAggregate(const TopicStore& store, const AggregateSpec& spec,
                                     const QueryDeadline& deadline, const IndexLookup& indexes) {
  const QueryFilter& filter = spec.filter;
  Result<std::vector<QueryScope>> scopes = QueryScopes(store, filter, indexes);
  if (!scopes.ok()) {
    return scopes.status();
  }
  // Index entries carry timestamp and country: enough unless a record must be read.
  const bool needs_records = filter.sensor.has_value() || spec.field.has_value() ||
                             spec.group_by == "device" || spec.group_by == "sensor";
  AggregateResult out;
  if (deadline.Passed()) {  // it waited for a query thread past its budget
    out.timed_out = true;
    return out;
  }
  Rows rows(spec);
  for (const QueryScope& s : *scopes) {
    if (s.index != nullptr && needs_records) {
      IndexStream stream(*s.log, *s.index, filter, std::nullopt, s.covered_end, &deadline);
      for (size_t n = 0;; ++n) {
        if (n % 64 == 0 && deadline.Passed()) {
          out.timed_out = true;
          return out;
        }
        Result<LogRecord*> r = stream.Peek();
        if (!r.ok()) {
          return r.status();
        }
        if (*r == nullptr) {
          if (stream.timed_out()) {
            out.timed_out = true;
            return out;
          }
          break;
        }
        SLUICE_RETURN_IF_ERROR(AddRecord(spec, (*r)->record, &rows));
        stream.Pop();
      }
      out.records_read += stream.records_read();
    } else if (s.index != nullptr) {
      const int64_t from = filter.from_ms.value_or(std::numeric_limits<int64_t>::min());
      const int64_t to = filter.to_ms.value_or(std::numeric_limits<int64_t>::max());
      const int64_t start = s.log->start_offset();
      std::optional<IndexCursor> cursor;
      static const std::string kNone;
      while (true) {
        if (deadline.Passed()) {
          out.timed_out = true;
          return out;
        }
        Result<std::vector<IndexHit>> hits =
            IndexFamilyHits(*s.index, filter, from, to, cursor, kIndexPage);
        if (!hits.ok()) {
          return hits.status();
        }
        out.index_entries += hits->size();
        for (const IndexHit& h : *hits) {
          if (h.offset < start || h.offset >= s.covered_end ||
              (filter.country.has_value() && h.country != filter.country->value())) {
            continue;
          }
          SLUICE_RETURN_IF_ERROR(
              rows.Add(h.ts_ms, spec.group_by == "country" ? h.country : kNone, std::nullopt));
        }
        if (hits->size() < kIndexPage) {
          break;
        }
        cursor = IndexCursor{hits->back().ts_ms, hits->back().offset};
      }
    }
    // The tail (everything, without an index).
    int64_t offset = std::max(s.index != nullptr ? s.covered_end : 0, s.log->start_offset());
    while (offset < s.end) {
      if (deadline.Passed()) {
        out.timed_out = true;
        return out;
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
      for (const LogRecord& lr : chunk->records) {
        if (lr.offset >= s.end) {
          break;
        }
        ++out.records_read;
        if (filter.Matches(lr.record)) {
          SLUICE_RETURN_IF_ERROR(AddRecord(spec, lr.record, &rows));
        }
      }
      if (chunk->next_offset <= offset) {
        break;
      }
      offset = chunk->next_offset;
    }
  }
  out.rows = rows.Take();
  return out;
}

}  // namespace sluice::broker
