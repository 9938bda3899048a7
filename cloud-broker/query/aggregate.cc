#include "cloud-broker/query/aggregate.h"

#include <rapidjson/reader.h>

#include <algorithm>
#include <limits>
#include <tuple>

#include "cloud-broker/query/query_scope.h"

namespace sluice::broker {
namespace {

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
  // Adds `n` records of timestamp ts (n > 1 only without a value: rollup counts).
  Status Add(int64_t ts, const std::string& group, const std::optional<double>& value,
             uint64_t n = 1) {
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
    r.count += n;
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

// Counts per bucket (and country) of s's indexed records from the index's per-minute rollups:
// every whole minute of [from, to) from one rollup row per country, the partial minutes at
// either end from index entries. Applies when the counts need neither records (no sensor, no
// field, grouped by country or not at all) nor a device (its entries are few anyway). Sets
// *covered_end to the offset the rollups counted up to (the tail scan starts there), or leaves
// it when they cannot be used: retention deleted records the index has not dropped yet (their
// counts would still be in), the index covers past the log's end (the log was cut), or no
// whole minute is asked for.
Status AddFromRollups(const QueryScope& s, const AggregateSpec& spec,
                      const QueryDeadline& deadline, Rows* rows, AggregateResult* out,
                      int64_t* covered_end) {
  Result<std::unique_ptr<RollupView>> view = s.index->Rollups();
  if (!view.ok()) {
    return view.status();
  }
  const int64_t start = s.log->start_offset();
  if ((*view)->dropped_below() < start || (*view)->covered() <= start ||
      (*view)->covered() > s.end) {  // past the log's end: a cut the indexer has not seen yet
    return Status::Ok();
  }
  constexpr int64_t kMinute = PartitionIndex::kRollupMs;
  const QueryFilter& filter = spec.filter;
  const int64_t lo = filter.from_ms.value_or(std::numeric_limits<int64_t>::min());
  const int64_t hi = filter.to_ms.value_or(std::numeric_limits<int64_t>::max());
  const int64_t lo_minute = PartitionIndex::RollupMinuteOf(lo);
  const int64_t whole_from = lo_minute == lo ? lo
                             : lo_minute <= std::numeric_limits<int64_t>::max() - kMinute
                                 ? lo_minute + kMinute
                                 : std::numeric_limits<int64_t>::max();
  const int64_t whole_to = PartitionIndex::RollupMinuteOf(hi);
  if (whole_from >= whole_to) {
    return Status::Ok();
  }
  static const std::string kNone;
  Status added = Status::Ok();
  SLUICE_RETURN_IF_ERROR((*view)->ForEach(
      whole_from, whole_to, [&](int64_t minute, const std::string& country, uint64_t count) {
        if (filter.country.has_value() && country != filter.country->value()) {
          return true;
        }
        if (++out->rollups % 1024 == 0 && deadline.Passed()) {
          out->timed_out = true;
          return false;
        }
        added = rows->Add(minute, spec.group_by == "country" ? country : kNone, std::nullopt,
                          count);
        return added.ok();
      }));
  SLUICE_RETURN_IF_ERROR(added);
  if (out->timed_out) {
    return Status::Ok();
  }
  // The partial minutes, from the entries the rollups counted (offsets below their covered).
  QueryScope counted = s;
  counted.covered_end = (*view)->covered();
  const auto add_hit = [&](const IndexHit& h) {
    return rows->Add(h.ts_ms, spec.group_by == "country" ? h.country : kNone, std::nullopt);
  };
  if (lo < whole_from) {
    QueryFilter left = filter;
    left.to_ms = whole_from;
    SLUICE_RETURN_IF_ERROR(
        WalkIndexEntries(counted, left, deadline, add_hit, &out->index_entries, &out->timed_out));
  }
  if (!out->timed_out) {
    QueryFilter right = filter;
    right.from_ms = whole_to;
    SLUICE_RETURN_IF_ERROR(WalkIndexEntries(counted, right, deadline, add_hit,
                                            &out->index_entries, &out->timed_out));
  }
  *covered_end = counted.covered_end;
  return Status::Ok();
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
  const auto add_record = [&](const Record& r) { return AddRecord(spec, r, &rows); };
  const bool rollups_apply = !needs_records && !filter.device_id.has_value();
  for (const QueryScope& s : *scopes) {
    QueryScope tail = s;  // from where the index's answer ends
    bool from_rollups = false;
    if (s.index != nullptr && rollups_apply) {
      int64_t counted_to = -1;
      SLUICE_RETURN_IF_ERROR(AddFromRollups(s, spec, deadline, &rows, &out, &counted_to));
      if (counted_to >= 0) {
        from_rollups = true;
        tail.covered_end = counted_to;
      }
    }
    if (from_rollups || out.timed_out) {
      // counted above
    } else if (s.index != nullptr && needs_records) {
      SLUICE_RETURN_IF_ERROR(
          WalkIndexedRecords(s, filter, deadline, add_record, &out.records_read, &out.timed_out));
    } else if (s.index != nullptr) {
      static const std::string kNone;
      SLUICE_RETURN_IF_ERROR(WalkIndexEntries(
          s, filter, deadline,
          [&](const IndexHit& h) {
            return rows.Add(h.ts_ms, spec.group_by == "country" ? h.country : kNone,
                            std::nullopt);
          },
          &out.index_entries, &out.timed_out));
    }
    if (!out.timed_out) {
      SLUICE_RETURN_IF_ERROR(WalkTail(
          tail, deadline,
          [&](LogRecord& lr) {
            return filter.Matches(lr.record) ? add_record(lr.record) : Status::Ok();
          },
          &out.records_read, &out.timed_out));
    }
    if (out.timed_out) {
      return out;
    }
  }
  out.rows = rows.Take();
  return out;
}

}  // namespace sluice::broker
