// RunQuery with partition indexes (issue 12): on random data and random queries (device, country,
// sensor, time range, topic; random page sizes followed through their cursors) the pages together
// are exactly what a brute-force scan of the logs answers, in (timestamp, topic, partition,
// offset) order, whether the partitions are indexed, partly indexed (an uncovered tail) or not at
// all; exact counts agree; and paging while records keep arriving returns every record that
// matched at the first page exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <random>
#include <set>

#include "cloud-broker/index/store_indexer.h"
#include "cloud-broker/query/aggregate.h"
#include "cloud-broker/query/query.h"
#include "cloud-broker/query/query_cursor.h"
#include "core/partitioner.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::EncodeRecords;
using testing::MakeRecord;

struct Key {
  std::string topic;
  int32_t partition;
  int64_t offset;
  bool operator<(const Key& o) const {
    return std::tie(topic, partition, offset) < std::tie(o.topic, o.partition, o.offset);
  }
  bool operator==(const Key& o) const = default;
};

std::ostream& operator<<(std::ostream& os, const Key& k) {
  return os << k.topic << "-" << k.partition << "@" << k.offset;
}

class IndexedQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TopicStoreOptions o;
    o.data_dir = dir_.Sub("data");
    o.log.segment_bytes = 32 * 1024;
    auto s = TopicStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    for (const auto& [name, n] : {std::pair<std::string, int>{"a", 3}, {"b", 2}}) {
      auto t = store_->Create(TopicName(name), n);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
    }
    indexer_ = std::make_unique<StoreIndexer>(StoreIndexerOptions{dir_.Sub("index")}, *store_);
  }

  // `n` records in batches of 1..40 (kept per partition, as produce places them by key):
  // devices dev-0..dev-19 (a device keeps its country), sensors temp/hum, timestamps in
  // [base, base + 400) with repeats.
  void Produce(std::mt19937_64& rng, int n, int64_t base = 1'000) {
    std::uniform_int_distribution<int> device(0, 19);
    std::uniform_int_distribution<int> sensor(0, 1);
    std::uniform_int_distribution<int64_t> ts(base, base + 399);
    std::uniform_int_distribution<int> batch(1, 40);
    std::uniform_int_distribution<int> topic(0, 1);
    std::uniform_int_distribution<int> value(0, 99);
    while (n > 0) {
      const int k = std::min(n, batch(rng));
      n -= k;
      Topic* t = store_->Find(TopicName(topic(rng) == 0 ? "a" : "b"));
      std::map<int32_t, std::vector<Record>> by_partition;
      for (int i = 0; i < k; ++i) {
        const int d = device(rng);
        const int v = value(rng);
        // Mostly {"v": number}; sometimes v is nested, a string, absent, or the payload is not
        // an object: aggregates of field v count only the numbers at the top level.
        const std::string payload = v % 10 == 0   ? "{\"w\":{\"v\":1},\"v\":\"x\"}"
                                    : v % 10 == 1 ? "[1,2]"
                                    : v % 10 == 2 ? "{\"u\":3}"
                                                  : "{\"a\":[1,{\"v\":9}],\"v\":" +
                                                        std::to_string(v - 50) + ".5}";
        Record r = MakeRecord("dev-" + std::to_string(d), kCountries[d % 3], ts(rng), payload);
        r.headers[0].value = sensor(rng) == 0 ? "temp" : "hum";
        by_partition[PartitionForKey(*r.key, t->partition_count())].push_back(std::move(r));
      }
      for (auto& [p, recs] : by_partition) {
        ASSERT_TRUE(t->partition(p)->Append(EncodeRecords(recs)).ok());
      }
    }
  }

  // Every record of the store matching `f`, by (timestamp, topic, partition, offset).
  std::vector<Key> BruteForce(const QueryFilter& f) {
    std::vector<std::pair<QueryPosition, Key>> all;
    for (Topic* t : store_->Topics()) {
      if (f.topic.has_value() && t->name() != *f.topic) {
        continue;
      }
      for (int32_t p = 0; p < t->partition_count(); ++p) {
        PartitionLog& log = *t->partition(p);
        for (int64_t off = log.start_offset(); off < log.end_offset();) {
          auto read = log.Read(off, 1000, 1 << 20);
          EXPECT_TRUE(read.ok());
          if (!read.ok()) {
            return {};
          }
          for (const LogRecord& r : read->records) {
            if (f.Matches(r.record)) {
              all.push_back({{r.record.timestamp_ms, t->name().value(), p, r.offset},
                             {t->name().value(), p, r.offset}});
            }
          }
          off = read->next_offset;
        }
      }
    }
    std::sort(all.begin(), all.end(),
              [](const auto& x, const auto& y) { return PositionLess(x.first, y.first); });
    std::vector<Key> keys;
    for (auto& [pos, key] : all) {
      keys.push_back(key);
    }
    return keys;
  }

  IndexLookup Lookup() {
    return [this](const std::string& topic, int32_t p) { return indexer_->Find(topic, p); };
  }

  // Every page of the query, followed through `next`.
  std::vector<Key> AllPages(QueryFilter f, const IndexLookup& indexes) {
    std::vector<Key> keys;
    for (int guard = 0; guard < 10000; ++guard) {
      auto r = RunQuery(*store_, f, {}, indexes);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) {
        break;
      }
      EXPECT_LE(r->records.size(), f.limit);
      for (const QueryMatch& m : r->records) {
        keys.push_back({m.topic, m.partition, m.offset});
      }
      if (!r->next.has_value()) {
        break;
      }
      f.cursor = *r->next;
    }
    return keys;
  }

  QueryFilter RandomFilter(std::mt19937_64& rng) {
    std::uniform_int_distribution<int> coin(0, 2);
    std::uniform_int_distribution<int> device(0, 21);  // 20, 21: never written
    std::uniform_int_distribution<int64_t> ts(950, 1450);
    std::uniform_int_distribution<size_t> limit(1, 60);
    QueryFilter f;
    if (coin(rng) == 0) {
      f.device_id = DeviceId("dev-" + std::to_string(device(rng)));
    }
    if (coin(rng) == 0) {
      f.country = CountryCode(kCountries[coin(rng)]);
    }
    if (coin(rng) == 0) {
      f.sensor = coin(rng) == 0 ? "temp" : "hum";
    }
    if (coin(rng) != 0) {
      f.from_ms = ts(rng);
    }
    if (coin(rng) != 0) {
      f.to_ms = ts(rng);
    }
    if (coin(rng) == 0) {
      f.topic = TopicName(coin(rng) == 0 ? "a" : "b");
    }
    f.limit = limit(rng);
    return f;
  }

  static std::string Describe(const QueryFilter& f) {
    std::string s;
    if (f.device_id) s += " device=" + f.device_id->value();
    if (f.country) s += " country=" + f.country->value();
    if (f.sensor) s += " sensor=" + *f.sensor;
    if (f.from_ms) s += " from=" + std::to_string(*f.from_ms);
    if (f.to_ms) s += " to=" + std::to_string(*f.to_ms);
    if (f.topic) s += " topic=" + f.topic->value();
    return s + " limit=" + std::to_string(f.limit);
  }

  void ExpectSameAsBruteForce(std::mt19937_64& rng, int queries) {
    for (int q = 0; q < queries; ++q) {
      QueryFilter f = RandomFilter(rng);
      const std::vector<Key> expected = BruteForce(f);
      EXPECT_EQ(AllPages(f, Lookup()), expected) << "indexed:" << Describe(f);
      EXPECT_EQ(AllPages(f, nullptr), expected) << "scanned:" << Describe(f);
      QueryFilter counted = f;
      counted.count_exact = true;
      counted.limit = 0;
      auto r = RunQuery(*store_, counted, {}, Lookup());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->matched, expected.size()) << "count:" << Describe(f);
      uint64_t by_country = 0;
      for (const auto& [c, n] : r->counts_by_country) {
        by_country += n;
      }
      EXPECT_EQ(by_country, expected.size()) << Describe(f);
    }
  }

  static constexpr const char* kCountries[] = {"DE", "FR", "AT"};
  sluice::testing::TempDir dir_;
  std::unique_ptr<TopicStore> store_;
  std::unique_ptr<StoreIndexer> indexer_;
};

TEST_F(IndexedQueryTest, PagesMatchABruteForceScanIndexedPartlyIndexedAndNot) {
  std::mt19937_64 rng(12);
  Produce(rng, 1500);
  ExpectSameAsBruteForce(rng, 40);  // no index yet: every partition is scanned
  ASSERT_TRUE(indexer_->CatchUp().ok());
  ExpectSameAsBruteForce(rng, 40);  // fully indexed
  Produce(rng, 500);
  ExpectSameAsBruteForce(rng, 40);  // indexed, with an uncovered tail in every partition
  ASSERT_TRUE(indexer_->CatchUp().ok());
  ExpectSameAsBruteForce(rng, 20);
}

// Runs `fn` at its first reading, then reads 0: a query's first deadline check comes after it
// took each partition's index coverage, so `fn` (the indexer catching up) runs mid-query.
class HookClock final : public Clock {
 public:
  explicit HookClock(std::function<void()> fn) : fn_(std::move(fn)) {}
  int64_t NowMs() const override { return 0; }
  int64_t MonotonicUs() const override {
    if (fn_) {
      auto fn = std::move(fn_);
      fn_ = nullptr;
      fn();
    }
    return 0;
  }

 private:
  mutable std::function<void()> fn_;
};

TEST_F(IndexedQueryTest, AnIndexThatAdvancesDuringAQueryAddsNothingTwice) {
  std::mt19937_64 rng(3);
  Produce(rng, 1000);
  ASSERT_TRUE(indexer_->CatchUp().ok());
  Produce(rng, 400);  // the tail this query scans
  for (int q = 0; q < 20; ++q) {
    QueryFilter f = RandomFilter(rng);
    f.limit = 100000;
    const std::vector<Key> expected = BruteForce(f);
    HookClock clock([this] { ASSERT_TRUE(indexer_->CatchUp().ok()); });
    auto r = RunQuery(*store_, f, QueryDeadline{&clock, INT64_MAX}, Lookup());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<Key> got;
    for (const QueryMatch& m : r->records) {
      got.push_back({m.topic, m.partition, m.offset});
    }
    EXPECT_EQ(got, expected) << Describe(f);
    Produce(rng, 50);
  }
}

// What RunAggregate must answer, from every record of the store.
std::vector<AggregateRow> BruteAggregate(TopicStore& store, const AggregateSpec& spec) {
  std::map<std::pair<int64_t, std::string>, AggregateRow> rows;
  for (Topic* t : store.Topics()) {
    if (spec.filter.topic.has_value() && t->name() != *spec.filter.topic) continue;
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      PartitionLog& log = *t->partition(p);
      for (int64_t off = log.start_offset(); off < log.end_offset();) {
        auto read = log.Read(off, 1000, 1 << 20);
        if (!read.ok()) return {};
        for (const LogRecord& r : read->records) {
          if (!spec.filter.Matches(r.record)) continue;
          const int64_t b = spec.bucket_ms.value_or(0);
          const int64_t start = b == 0 ? 0 : (r.record.timestamp_ms / b) * b;  // ts > 0 here
          std::string group;
          if (spec.group_by == "country") group = *r.record.FindHeader(kHeaderCountry);
          if (spec.group_by == "sensor") group = *r.record.FindHeader(kHeaderSensor);
          if (spec.group_by == "device") group = *r.record.key;
          AggregateRow& row = rows[{start, group}];
          row.bucket_start = start;
          row.group = group;
          ++row.count;
          if (spec.field.has_value()) {
            if (auto v = TopLevelNumber(*r.record.value, *spec.field)) {
              row.min = row.values == 0 ? *v : std::min(row.min, *v);
              row.max = row.values == 0 ? *v : std::max(row.max, *v);
              row.sum += *v;
              ++row.values;
            }
          }
        }
        off = read->next_offset;
      }
    }
  }
  std::vector<AggregateRow> out;
  for (auto& [k, row] : rows) out.push_back(row);
  return out;
}

bool SameRows(const std::vector<AggregateRow>& a, const std::vector<AggregateRow>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].bucket_start != b[i].bucket_start || a[i].group != b[i].group ||
        a[i].count != b[i].count || a[i].values != b[i].values || a[i].min != b[i].min ||
        a[i].max != b[i].max || a[i].sum != b[i].sum) {
      return false;
    }
  }
  return true;
}

TEST_F(IndexedQueryTest, AggregatesMatchABruteForceScanIndexedPartlyIndexedAndNot) {
  EXPECT_EQ(TopLevelNumber(R"({"v":2.5})", "v"), 2.5);
  EXPECT_EQ(TopLevelNumber(R"({"w":{"v":1},"v":"x"})", "v"), std::nullopt);
  EXPECT_EQ(TopLevelNumber(R"({"v":{"x":1}})", "v"), std::nullopt);
  EXPECT_EQ(TopLevelNumber("[1]", "v"), std::nullopt);
  EXPECT_EQ(TopLevelNumber(std::string(100000, '[') + std::string(100000, ']'), "v"),
            std::nullopt);  // deep: iterative, no stack exhaustion
  std::mt19937_64 rng(5);
  Produce(rng, 1200);
  auto check = [&](const char* when) {
    std::uniform_int_distribution<int> pick(0, 3);
    for (int q = 0; q < 25; ++q) {
      AggregateSpec spec;
      spec.filter = RandomFilter(rng);
      spec.filter.from_ms = spec.filter.from_ms.value_or(900);
      spec.filter.to_ms = std::max(*spec.filter.from_ms + 1, spec.filter.to_ms.value_or(1500));
      const int b = pick(rng);
      if (b > 0) spec.bucket_ms = b == 1 ? 7 : b == 2 ? 60 : 1000;  // odd sizes: alignment
      const char* const groups[] = {"", "country", "sensor", "device"};
      spec.group_by = groups[pick(rng)];
      if (pick(rng) < 2) spec.field = "v";
      const std::vector<AggregateRow> want = BruteAggregate(*store_, spec);
      for (const IndexLookup& lookup : {Lookup(), IndexLookup()}) {
        auto got = RunAggregate(*store_, spec, {}, lookup);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        EXPECT_TRUE(SameRows(got->rows, want))
            << when << (lookup ? " indexed" : " scanned") << ": " << Describe(spec.filter)
            << " bucket " << spec.bucket_ms.value_or(0) << " group_by '" << spec.group_by
            << "' field " << spec.field.value_or("-") << ": " << got->rows.size() << " rows, want "
            << want.size();
      }
    }
  };
  check("not indexed");
  ASSERT_TRUE(indexer_->CatchUp().ok());
  Produce(rng, 300);
  check("partly indexed");
  // Bounded: more rows than allowed is an error, not unbounded memory.
  AggregateSpec wide;
  wide.filter.from_ms = 0;
  wide.filter.to_ms = 2000;
  wide.bucket_ms = 1;
  wide.group_by = "device";
  wide.max_rows = 50;
  EXPECT_EQ(RunAggregate(*store_, wide, {}, Lookup()).status().code(),
            StatusCode::kResourceExhausted);
}

// Counts per bucket and country come from the index's per-minute rollups (whole minutes) and
// entries (the partial minutes at the ends): on records spread over three hours, random ranges
// (on and off minute boundaries), buckets, country groups and filters answer what a brute-force
// scan answers, with the index caught up, with an uncovered tail, right after retention deleted
// segments the index still counts (the rollups must not be used then), once the index dropped
// them, and after a cut log was indexed again.
TEST_F(IndexedQueryTest, CountsFromMinuteRollupsMatchABruteForceScan) {
  TopicConfig config;
  config.partitions = 2;
  config.retention_bytes = 64 * 1024;  // segments are 32 KiB (SetUp)
  auto created = store_->Create(TopicName("r"), config);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  Topic& topic = **created;
  std::mt19937_64 rng(31);
  constexpr int64_t kBase = 1'000;
  constexpr int64_t kSpan = 3 * 3'600'000;
  auto produce = [&](int n) {
    std::uniform_int_distribution<int> device(0, 29);
    std::uniform_int_distribution<int64_t> ts(kBase, kBase + kSpan - 1);
    for (int done = 0; done < n; done += 50) {
      std::map<int32_t, std::vector<Record>> by_partition;
      for (int i = 0; i < 50; ++i) {
        const int d = device(rng);
        Record r = MakeRecord("dev-" + std::to_string(d), kCountries[d % 3], ts(rng), "{}");
        by_partition[PartitionForKey(*r.key, 2)].push_back(std::move(r));
      }
      for (auto& [p, recs] : by_partition) {
        ASSERT_TRUE(topic.partition(p)->Append(EncodeRecords(recs)).ok());
      }
    }
  };
  uint64_t rollups_read = 0;
  auto check = [&](const char* when) {
    std::uniform_int_distribution<int64_t> ts(0, kBase + kSpan + 60'000);
    std::uniform_int_distribution<int> pick(0, 3);
    for (int q = 0; q < 30; ++q) {
      AggregateSpec spec;
      spec.filter.topic = TopicName("r");
      int64_t from = ts(rng), to = ts(rng);
      if (from > to) std::swap(from, to);
      if (pick(rng) == 0) from = from / 60'000 * 60'000;  // on a minute boundary
      if (pick(rng) == 0) to = to / 60'000 * 60'000;
      spec.filter.from_ms = from;
      spec.filter.to_ms = std::max(to, from + 1);
      const int b = pick(rng);
      if (b == 1) spec.bucket_ms = 60'000;
      if (b == 2) spec.bucket_ms = 3'600'000;
      if (b == 3) spec.bucket_ms = 86'400'000;
      if (pick(rng) < 2) spec.group_by = "country";
      if (pick(rng) == 0) spec.filter.country = CountryCode(kCountries[pick(rng) % 3]);
      auto got = RunAggregate(*store_, spec, {}, Lookup());
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      rollups_read += got->rollups;
      EXPECT_TRUE(SameRows(got->rows, BruteAggregate(*store_, spec)))
          << when << ": " << Describe(spec.filter) << " bucket " << spec.bucket_ms.value_or(0)
          << " group_by '" << spec.group_by << "': " << got->rows.size() << " rows";
    }
  };
  produce(2000);
  ASSERT_TRUE(indexer_->CatchUp().ok());
  produce(300);
  check("indexed, with a tail");
  EXPECT_GT(rollups_read, 0u) << "the rollups were never read";

  ASSERT_GT(topic.partition(0)->ApplyRetention(), 0u);
  ASSERT_GT(topic.partition(1)->ApplyRetention(), 0u);
  rollups_read = 0;
  check("retention ran, the index not yet");
  EXPECT_EQ(rollups_read, 0u) << "rollups that still count deleted records were read";
  ASSERT_TRUE(indexer_->CatchUp().ok());
  check("the index dropped what retention deleted");
  EXPECT_GT(rollups_read, 0u);

  PartitionLog& p0 = *topic.partition(0);
  ASSERT_TRUE(p0.TruncateTo(p0.end_offset() - 400).ok());
  produce(200);
  ASSERT_TRUE(indexer_->CatchUp().ok());
  check("a cut log indexed again");
}

// Passed from the n-th reading on.
class CountingClock final : public Clock {
 public:
  explicit CountingClock(int n) : n_(n) {}
  int64_t NowMs() const override { return 0; }
  int64_t MonotonicUs() const override { return ++reads_ >= n_ ? 1000 : 0; }

 private:
  const int n_;
  mutable int reads_ = 0;
};

// A deadline that passes while an index stream reads is a timed-out answer, never a shorter
// answer that looks complete; one passed before the query starts stops it at once.
TEST_F(IndexedQueryTest, ADeadlineInsideAnIndexStreamTimesTheQueryOut) {
  std::mt19937_64 rng(9);
  Produce(rng, 3000);
  ASSERT_TRUE(indexer_->CatchUp().ok());
  QueryFilter f;
  f.limit = 100000;
  auto whole = RunQuery(*store_, f, {}, Lookup());
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->timed_out);
  EXPECT_EQ(whole->records.size(), 3000u);
  for (int n : {1, 4, 8}) {
    CountingClock clock(n);
    auto cut = RunQuery(*store_, f, QueryDeadline{&clock, 500}, Lookup());
    ASSERT_TRUE(cut.ok());
    EXPECT_TRUE(cut->timed_out) << n << ": " << cut->records.size() << " records";
    CountingClock again(n);
    AggregateSpec spec;
    spec.filter = f;
    spec.field = "v";
    auto agg = RunAggregate(*store_, spec, QueryDeadline{&again, 500}, Lookup());
    ASSERT_TRUE(agg.ok());
    EXPECT_TRUE(agg->timed_out) << n;
  }
  // A filter the index cannot narrow (sensor): the stream reads every hit and keeps none, so
  // only its own check can stop it.
  f.sensor = "none-has-this";
  CountingClock late(2);
  auto none = RunQuery(*store_, f, QueryDeadline{&late, 500}, Lookup());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->timed_out) << "a stream that yields nothing never checked its deadline";
}

// Passed once `passed` is set.
class SwitchedClock final : public Clock {
 public:
  int64_t NowMs() const override { return 0; }
  int64_t MonotonicUs() const override { return passed ? 1000 : 0; }
  bool passed = false;
};

// A streamed query (a sink instead of a page) passes every match on in order; one stopped by its
// deadline part-way sets `next` where it stopped, and resuming there gives exactly the rest.
TEST_F(IndexedQueryTest, AStreamStoppedByItsDeadlineResumesExactlyFromNext) {
  std::mt19937_64 rng(13);
  Produce(rng, 3000);
  ASSERT_TRUE(indexer_->CatchUp().ok());
  Produce(rng, 400);  // and a tail
  int stopped_part_way = 0;
  int streams = 0;
  for (int tries = 0; tries < 500 && streams < 12; ++tries) {
    QueryFilter f = RandomFilter(rng);
    f.cursor.reset();
    f.limit = std::numeric_limits<size_t>::max() / 2;
    f.count_exact = false;
    const std::vector<Key> want = BruteForce(f);
    if (want.size() < 600) {
      continue;  // too few to stop part-way (the merge checks its deadline every 64 records)
    }
    ++streams;
    std::vector<Key> got;
    // The deadline passes once the sink has taken `stop_after` matches (the query notices
    // within its next check).
    const size_t stop_after = want.size() / 3;
    SwitchedClock clock;
    QueryStreaming streaming;
    streaming.sink = [&](QueryMatch&& m) {
      got.push_back({m.topic, m.partition, m.offset});
      if (got.size() == stop_after) clock.passed = true;
      return Status::Ok();
    };
    auto first = RunQuery(*store_, f, QueryDeadline{&clock, 500}, Lookup(), &streaming);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_EQ(first->returned, got.size());
    if (first->timed_out && !got.empty()) {
      ASSERT_TRUE(first->next.has_value()) << "a stopped stream must say where to resume";
      f.cursor = *first->next;
      ++stopped_part_way;
    }
    if (first->timed_out) {
      auto rest = RunQuery(*store_, f, {}, Lookup(), &streaming);
      ASSERT_TRUE(rest.ok()) << rest.status().ToString();
      EXPECT_FALSE(rest->timed_out);
    }
    EXPECT_EQ(got, want) << Describe(f);
  }
  EXPECT_EQ(streams, 12);
  EXPECT_EQ(stopped_part_way, streams);
}

TEST_F(IndexedQueryTest, PagingWhileProducingReturnsEveryEarlierMatchExactlyOnce) {
  std::mt19937_64 rng(7);
  Produce(rng, 1200);
  ASSERT_TRUE(indexer_->CatchUp().ok());
  for (const char* country : {"DE", "FR"}) {
    QueryFilter f;
    f.country = CountryCode(country);
    f.from_ms = 1'100;
    f.limit = 9;
    const std::vector<Key> before = BruteForce(f);
    ASSERT_GT(before.size(), 50u);
    std::vector<Key> seen;
    for (int page = 0; page < 1000; ++page) {
      auto r = RunQuery(*store_, f, {}, Lookup());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      for (const QueryMatch& m : r->records) {
        seen.push_back({m.topic, m.partition, m.offset});
      }
      if (!r->next.has_value()) {
        break;
      }
      f.cursor = *r->next;
      // Between pages: records before and after the cursor's timestamp, indexed or not.
      Produce(rng, 40, page % 2 == 0 ? 1'000 : 1'200);
      if (page % 3 == 0) {
        ASSERT_TRUE(indexer_->CatchUp().ok());
      }
    }
    const std::set<Key> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), seen.size()) << country << ": a record was returned twice";
    for (const Key& k : before) {
      EXPECT_EQ(unique.count(k), 1u) << country << ": " << k << " was never returned";
    }
  }
}

}  // namespace
}  // namespace sluice::broker
