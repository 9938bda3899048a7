// PartitionIndex: every query answers exactly what a brute-force scan of the same records
// answers (random records, random queries, paged through with cursors), across reopen, after
// DropBelow (retention) and after TruncateFrom (a cut log) followed by re-indexing.
#include "cloud-broker/index/partition_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

struct Rec {
  int64_t offset;
  int64_t ts;
  std::string device;
  std::string country;
};

// Which family a query reads: every record, a device's, or a country's.
struct Selector {
  enum Kind { kTime, kDevice, kCountry } kind = kTime;
  std::string value;
};

// What a scan of `recs` answers: the selected records in [from, to), by (ts, offset), offsets
// >= min_offset only.
std::vector<IndexHit> BruteForce(const std::vector<Rec>& recs, const Selector& sel,
                                 int64_t from, int64_t to, int64_t min_offset = 0) {
  std::vector<IndexHit> out;
  for (const Rec& r : recs) {
    if (r.offset >= min_offset && r.ts >= from && r.ts < to &&
        (sel.kind != Selector::kDevice || r.device == sel.value) &&
        (sel.kind != Selector::kCountry || r.country == sel.value)) {
      out.push_back({r.ts, r.offset, r.country});
    }
  }
  std::sort(out.begin(), out.end(), [](const IndexHit& a, const IndexHit& b) {
    return a.ts_ms != b.ts_ms ? a.ts_ms < b.ts_ms : a.offset < b.offset;
  });
  return out;
}

// Every page of a query, followed through its cursor.
std::vector<IndexHit> AllPages(const PartitionIndex& index, const Selector& sel, int64_t from,
                               int64_t to, size_t page) {
  std::vector<IndexHit> all;
  std::optional<IndexCursor> after;
  for (int guard = 0; guard < 100000; ++guard) {
    Result<std::vector<IndexHit>> hits =
        sel.kind == Selector::kTime     ? index.Time(from, to, after, page)
        : sel.kind == Selector::kDevice ? index.Device(sel.value, from, to, after, page)
                                        : index.Country(sel.value, from, to, after, page);
    EXPECT_TRUE(hits.ok()) << hits.status().ToString();
    if (!hits.ok() || hits->empty()) {
      break;
    }
    all.insert(all.end(), hits->begin(), hits->end());
    after = IndexCursor{hits->back().ts_ms, hits->back().offset};
  }
  return all;
}

class PartitionIndexTest : public ::testing::Test {
 protected:
  // "" : a record without a country header; "D" prefixes "DE".
  const std::vector<std::string> kCountries = {"DE", "FR", "AT", "", "D"};
  // Records with devices that prefix each other ("dev-1", "dev-12") and timestamps that go
  // backwards, repeat and are negative, added in batches of random size.
  std::vector<Rec> RandomRecords(std::mt19937_64& rng, int64_t first, int n) {
    std::vector<Rec> recs;
    std::uniform_int_distribution<int> device(0, 14);
    std::uniform_int_distribution<int64_t> ts(-50, 400);
    std::uniform_int_distribution<size_t> country(0, kCountries.size() - 1);
    for (int i = 0; i < n; ++i) {
      const int d = device(rng);
      recs.push_back({first + i, ts(rng), d == 0 ? "" : "dev-" + std::to_string(d),
                      kCountries[country(rng)]});
    }
    return recs;
  }
  void AddAll(PartitionIndex& index, const std::vector<Rec>& recs, std::mt19937_64& rng) {
    std::uniform_int_distribution<size_t> size(1, 40);
    for (size_t i = 0; i < recs.size();) {
      const size_t n = std::min(size(rng), recs.size() - i);
      std::vector<IndexEntry> entries;
      for (size_t k = i; k < i + n; ++k) {
        entries.push_back({recs[k].offset, recs[k].ts, recs[k].device, recs[k].country});
      }
      std::shuffle(entries.begin(), entries.end(), rng);  // any order within a batch
      ASSERT_TRUE(index.Add(entries, recs[i + n - 1].offset + 1).ok());
      i += n;
    }
  }
  void ExpectSameAnswers(const PartitionIndex& index, const std::vector<Rec>& recs,
                         std::mt19937_64& rng, int64_t min_offset = 0) {
    std::uniform_int_distribution<int> device(1, 16);  // 15, 16: devices never written
    std::uniform_int_distribution<int> kind(0, 2);
    std::uniform_int_distribution<size_t> country(0, kCountries.size());  // last: "US", unused
    std::uniform_int_distribution<int64_t> ts(-60, 410);
    std::uniform_int_distribution<size_t> page(1, 30);
    for (int q = 0; q < 90; ++q) {
      int64_t from = ts(rng);
      int64_t to = ts(rng);
      if (from > to) std::swap(from, to);
      Selector sel;
      sel.kind = static_cast<Selector::Kind>(kind(rng));
      if (sel.kind == Selector::kDevice) {
        sel.value = "dev-" + std::to_string(device(rng));
      } else if (sel.kind == Selector::kCountry) {
        const size_t c = country(rng);
        sel.value = c < kCountries.size() ? kCountries[c] : "US";
      }
      EXPECT_EQ(AllPages(index, sel, from, to, page(rng)),
                BruteForce(recs, sel, from, to, min_offset))
          << "selector " << sel.kind << " '" << sel.value << "' [" << from << ", " << to << ")";
    }
  }

  sluice::testing::TempDir dir_;
};

TEST_F(PartitionIndexTest, QueriesMatchABruteForceScanAcrossReopenRetentionAndTruncation) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(seed);
    const std::string path = dir_.Sub("index-" + std::to_string(seed));
    std::vector<Rec> recs = RandomRecords(rng, 0, 600);
    {
      auto index = PartitionIndex::Open(path);
      ASSERT_TRUE(index.ok()) << index.status().ToString();
      EXPECT_EQ((*index)->covered(), 0);
      AddAll(**index, recs, rng);
      EXPECT_EQ((*index)->covered(), 600);
      ExpectSameAnswers(**index, recs, rng);
    }
    auto index = PartitionIndex::Open(path);  // reopened: the same answers, the same coverage
    ASSERT_TRUE(index.ok());
    EXPECT_EQ((*index)->covered(), 600);
    ExpectSameAnswers(**index, recs, rng);

    // Retention removed the segments below offset 150.
    ASSERT_TRUE((*index)->DropBelow(150).ok());
    ExpectSameAnswers(**index, recs, rng, 150);

    // The log was cut at 420 and other records written from there: re-indexed.
    ASSERT_TRUE((*index)->TruncateFrom(420).ok());
    EXPECT_EQ((*index)->covered(), 420);
    recs.resize(420);
    std::vector<Rec> more = RandomRecords(rng, 420, 200);
    AddAll(**index, more, rng);
    recs.insert(recs.end(), more.begin(), more.end());
    EXPECT_EQ((*index)->covered(), 620);
    ExpectSameAnswers(**index, recs, rng, 150);
  }
}

TEST_F(PartitionIndexTest, RefusesEntriesItAlreadyCoversOrCannotKey) {
  auto index = PartitionIndex::Open(dir_.Sub("idx"));
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE((*index)->Add({{0, 10, "a", "DE"}, {1, 11, "b", "FR"}}, 2).ok());
  EXPECT_EQ((*index)->Add({{1, 12, "a"}}, 3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add({{5, 12, "a"}}, 5).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add({{2, 12, std::string(PartitionIndex::kMaxDeviceIdBytes + 1, 'x')}}, 3)
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add({{2, 12, "a", std::string(PartitionIndex::kMaxCountryBytes + 1, 'X')}},
                            3)
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->covered(), 2);  // nothing written by the refused calls
  auto a = (*index)->Device("a", 0, 100, std::nullopt, 10);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<IndexHit>{{10, 0, "DE"}}));
  auto fr = (*index)->Country("FR", 0, 100, std::nullopt, 10);
  ASSERT_TRUE(fr.ok());
  EXPECT_EQ(*fr, (std::vector<IndexHit>{{11, 1, "FR"}}));
}

}  // namespace
}  // namespace sluice::broker
