// ResidencyPolicy and the query engine (over a real TopicStore in a temp dir).
#include <gtest/gtest.h>

#include <atomic>

#include "cloud-broker/query/query.h"
#include "cloud-broker/query/query_cursor.h"
#include "cloud-broker/residency/residency_policy.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::MakeRecord;

TEST(ResidencyPolicyTest, AllowsRegionCountriesAndRefusesOthers) {
  ResidencyPolicy policy(RegionId("eu-central"), {CountryCode("DE"), CountryCode("FR")});
  EXPECT_TRUE(policy.Allows(CountryCode("DE")));
  EXPECT_FALSE(policy.Allows(CountryCode("US")));
  EXPECT_TRUE(policy.Check(MakeRecord("dev-1", "FR", 1, "{}"), 0).ok());
  Status st = policy.Check(MakeRecord("dev-9", "US", 1, "{}"), 3);
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(), "record 3 (device dev-9) has country US, which region eu-central may "
                          "not store");
  Record no_country = MakeRecord("dev-2", "DE", 1, "{}");
  no_country.headers.clear();
  EXPECT_EQ(policy.Check(no_country, 0).code(), StatusCode::kPermissionDenied);
}

class QueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TopicStoreOptions o;
    o.data_dir = dir_.path();
    o.default_partitions = 2;
    auto store = TopicStore::Open(o);
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
    // 30 records: countries DE, FR, AT in turn; devices d0..d4; ts 1000..1029.
    for (const char* topic : {"a", "b"}) {
      auto t = store_->GetOrCreate(TopicName(topic));
      ASSERT_TRUE(t.ok());
      for (int p = 0; p < 2; ++p) {
        std::vector<Record> recs;
        for (int i = 0; i < 3; ++i) {
          int n = next_++;
          recs.push_back(MakeRecord("d" + std::to_string(n % 5), kCountries[n % 3], 1000 + n,
                                    "{\"n\":" + std::to_string(n) + "}"));
        }
        ASSERT_TRUE((*t)->partition(p)->Append(testing::EncodeRecords(recs)).ok());
        ASSERT_TRUE((*t)->partition(p)->Append(testing::EncodeRecords(recs)).ok());
      }
    }
  }

  QueryResult Run(std::map<std::string, std::string> params) {
    std::string field;
    auto f = ParseQueryFilter(params, 100, 1000, &field);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    auto r = RunQuery(*store_, *f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : QueryResult{};
  }

  static constexpr const char* kCountries[] = {"DE", "FR", "AT"};
  sluice::testing::TempDir dir_;
  std::unique_ptr<TopicStore> store_;
  int next_ = 0;
};

TEST_F(QueryTest, NoFilterMatchesAllInTimestampTopicPartitionOffsetOrder) {
  QueryResult r = Run({{"count", "exact"}});
  ASSERT_TRUE(r.matched.has_value());
  EXPECT_EQ(*r.matched, 24u);
  EXPECT_FALSE(r.next.has_value());
  ASSERT_EQ(r.records.size(), 24u);
  // ts 1000 + n, each record stored twice in its partition: (1000, a, 0, 0), (1000, a, 0, 3).
  EXPECT_EQ(r.records[0].record.timestamp_ms, 1000);
  EXPECT_EQ(r.records[0].topic, "a");
  EXPECT_EQ(r.records[0].offset, 0);
  EXPECT_EQ(r.records[1].record.timestamp_ms, 1000);
  EXPECT_EQ(r.records[1].offset, 3);
  for (size_t i = 1; i < r.records.size(); ++i) {
    const QueryMatch& a = r.records[i - 1];
    const QueryMatch& b = r.records[i];
    EXPECT_TRUE(PositionLess({a.record.timestamp_ms, a.topic, a.partition, a.offset},
                             {b.record.timestamp_ms, b.topic, b.partition, b.offset}))
        << i;
  }
  EXPECT_EQ((std::map<std::string, uint64_t>{{"AT", 8}, {"DE", 8}, {"FR", 8}}),
            r.counts_by_country);
  EXPECT_FALSE(Run({}).matched.has_value()) << "counted only when asked";
}

TEST_F(QueryTest, FiltersLimitPagesAndCountsWhenAsked) {
  QueryResult r = Run({{"country", "FR"}, {"limit", "3"}, {"count", "exact"}});
  EXPECT_EQ(r.matched, 8u);
  EXPECT_TRUE(r.next.has_value());
  ASSERT_EQ(r.records.size(), 3u);
  for (const QueryMatch& m : r.records) {
    EXPECT_EQ(*m.record.FindHeader(kHeaderCountry), "FR");
  }
  EXPECT_EQ((std::map<std::string, uint64_t>{{"FR", 8}}), r.counts_by_country);

  r = Run({{"device_id", "d1"}});
  for (const QueryMatch& m : r.records) {
    EXPECT_EQ(*m.record.key, "d1");
  }
  EXPECT_GT(r.records.size(), 0u);
  EXPECT_FALSE(r.next.has_value());

  r = Run({{"sensor", "temp"}});
  EXPECT_EQ(r.records.size(), 24u);
  EXPECT_TRUE(Run({{"sensor", "humidity"}}).records.empty());

  // ts 1000+n for n = 0..11, each stored twice; [1003, 1006) holds n = 3, 4, 5.
  r = Run({{"from", "1003"}, {"to", "1970-01-01T00:00:01.006Z"}, {"count", "exact"}});
  EXPECT_EQ(r.matched, 6u);
  for (const QueryMatch& m : r.records) {
    EXPECT_GE(m.record.timestamp_ms, 1003);
    EXPECT_LT(m.record.timestamp_ms, 1006);
  }
  r = Run({{"topic", "b"}, {"limit", "0"}, {"count", "exact"}});
  EXPECT_EQ(r.matched, 12u);
  EXPECT_TRUE(r.records.empty());

  // Paging by cursor: the pages together are the whole answer, in order, once.
  std::vector<int64_t> offsets_seen;
  std::map<std::string, std::string> params = {{"country", "DE"}, {"limit", "3"}};
  std::vector<QueryMatch> pages;
  for (int guard = 0; guard < 10; ++guard) {
    QueryResult page = Run(params);
    pages.insert(pages.end(), page.records.begin(), page.records.end());
    if (!page.next.has_value()) {
      break;
    }
    params["cursor"] = *page.next;
  }
  QueryResult whole = Run({{"country", "DE"}});
  ASSERT_EQ(pages.size(), whole.records.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    EXPECT_EQ(pages[i].topic, whole.records[i].topic);
    EXPECT_EQ(pages[i].partition, whole.records[i].partition);
    EXPECT_EQ(pages[i].offset, whole.records[i].offset);
  }
  // A cursor is refused with another filter.
  std::string field;
  auto other = ParseQueryFilter({{"country", "FR"}, {"cursor", params["cursor"]}}, 100, 1000,
                                &field);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(RunQuery(*store_, *other).status().code(), StatusCode::kInvalidArgument);
  auto garbage = ParseQueryFilter({{"cursor", "not-a-cursor"}}, 100, 1000, &field);
  ASSERT_TRUE(garbage.ok());
  EXPECT_EQ(RunQuery(*store_, *garbage).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(QueryTest, BadParametersNameTheField) {
  std::string field;
  EXPECT_FALSE(ParseQueryFilter({{"from", "yesterday"}}, 100, 1000, &field).ok());
  EXPECT_EQ(field, "from");
  EXPECT_FALSE(ParseQueryFilter({{"limit", "1001"}}, 100, 1000, &field).ok());
  EXPECT_EQ(field, "limit");
  EXPECT_FALSE(ParseQueryFilter({{"country", "de"}}, 100, 1000, &field).ok());
  EXPECT_EQ(field, "country");
  EXPECT_FALSE(ParseQueryFilter({{"count", "approximately"}}, 100, 1000, &field).ok());
  EXPECT_EQ(field, "count");
  EXPECT_FALSE(ParseQueryFilter({{"sensor", ""}}, 100, 1000, &field).ok());
  EXPECT_EQ(field, "sensor");
  QueryFilter f;
  f.topic = TopicName("nope");
  EXPECT_EQ(RunQuery(*store_, f).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sluice::broker

namespace sluice::broker {
namespace {

// Each MonotonicUs() call returns the time, then advances it 1 ms: one scan step per ms.
class SteppingClock final : public Clock {
 public:
  int64_t NowMs() const override { return 0; }
  int64_t MonotonicUs() const override { return now_us_.fetch_add(1000); }

 private:
  mutable std::atomic<int64_t> now_us_{0};
};

TEST_F(QueryTest, DeadlineIsCheckedInsideTheScan) {
  std::string field;
  auto f = ParseQueryFilter({}, 100, 1000, &field);
  ASSERT_TRUE(f.ok());
  auto all = RunQuery(*store_, *f);
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->timed_out);
  EXPECT_EQ(all->scanned, 24u);  // 2 topics x 2 partitions x 6 records

  // Checked when the query starts (0 ms) and before each chunk (here: each partition, 6
  // records): at 1 and 2 ms it scans, at 3 ms it is past the 2.5 ms budget and stops.
  SteppingClock clock;
  QueryDeadline d{&clock, 2500};
  auto cut = RunQuery(*store_, *f, d);
  ASSERT_TRUE(cut.ok());
  EXPECT_TRUE(cut->timed_out);
  EXPECT_EQ(cut->scanned, 12u);

  SteppingClock late;
  auto none = RunQuery(*store_, *f, QueryDeadline{&late, 0});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->timed_out);
  EXPECT_EQ(none->scanned, 0u);
}

}  // namespace
}  // namespace sluice::broker
