// AuditLog (issue 13): concurrent refusals are all recorded, whole and in one piece each (group
// commit); reads filter by time and country and page with `more`; a line torn by a crash is cut
// at reopen and the entries before it survive; a full log refuses (never drops) and a log that
// cannot be written fails every later append.
#include "cloud-broker/residency/audit_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <thread>

#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

AuditEntry Entry(int64_t t, const std::string& country, const std::string& id) {
  AuditEntry e;
  e.time_ms = t;
  e.region = "eu-central";
  e.principal = "CN=gw-de-1";
  e.gateway_id = "gw-de-1";
  e.country = country;
  e.topic = "sensors";
  e.records = 3;
  e.reason = "record 0 (device d) has country " + country + ", which region eu-central may not "
             "store; \"quoted\" \\ and \n newline";
  e.request_id = id;
  return e;
}

TEST(AuditLogTest, ConcurrentRefusalsAreAllRecordedAndReadBackFiltered) {
  sluice::testing::TempDir dir;
  auto log = AuditLog::Open(dir.Sub("audit"), 1 << 30);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const Status st = (*log)->Append(
            Entry(1000 + i, t % 2 ? "US" : "BR", "req-" + std::to_string(t) + "-" + std::to_string(i)));
        ASSERT_TRUE(st.ok()) << st.ToString();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ((*log)->entries_appended(), 1600u);

  AuditQuery all;
  all.limit = 10000;
  bool more = true;
  auto read = (*log)->Read(all, &more);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_FALSE(more);
  ASSERT_EQ(read->size(), 1600u);
  std::set<std::string> ids;
  for (const AuditEntry& e : *read) {
    ids.insert(e.request_id);
    EXPECT_EQ(e.reason, Entry(0, e.country, "").reason);
    EXPECT_EQ(e.principal, "CN=gw-de-1");
    EXPECT_EQ(e.records, 3u);
  }
  EXPECT_EQ(ids.size(), 1600u) << "every refusal once";

  AuditQuery us;
  us.country = "US";
  us.from_ms = 1100;
  us.to_ms = 1150;
  us.limit = 10000;
  read = (*log)->Read(us, &more);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 4u * 50u);  // 4 threads send US, 50 timestamps each in [1100, 1150)
  for (const AuditEntry& e : *read) {
    EXPECT_EQ(e.country, "US");
    EXPECT_GE(e.time_ms, 1100);
    EXPECT_LT(e.time_ms, 1150);
  }
  us.limit = 7;
  read = (*log)->Read(us, &more);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 7u);
  EXPECT_TRUE(more);
}

TEST(AuditLogTest, ATornLineIsCutAtReopenAndAFullLogRefuses) {
  sluice::testing::TempDir dir;
  {
    auto log = AuditLog::Open(dir.Sub("audit"), 1 << 20);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Entry(1, "US", "a")).ok());
    ASSERT_TRUE((*log)->Append(Entry(2, "US", "b")).ok());
  }
  {  // a crash mid-write: half a line at the end
    std::ofstream out(dir.Sub("audit/refusals.jsonl"), std::ios::app | std::ios::binary);
    out << "{\"time_ms\":3,\"region\":\"eu-ce";
  }
  auto log = AuditLog::Open(dir.Sub("audit"), 1 << 20);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->Append(Entry(4, "BR", "c")).ok());
  bool more = false;
  auto read = (*log)->Read(AuditQuery{}, &more);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->size(), 3u);
  EXPECT_EQ((*read)[0].request_id, "a");
  EXPECT_EQ((*read)[1].request_id, "b");
  EXPECT_EQ((*read)[2].request_id, "c");

  // Full: refused, nothing dropped.
  Status st = Status::Ok();
  int appended = 0;
  while ((st = (*log)->Append(Entry(5, "US", std::string(400, 'x')))).ok() && appended < 100000) {
    ++appended;
  }
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  read = (*log)->Read(AuditQuery{.limit = 1000000}, &more);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 3u + static_cast<size_t>(appended));
}

TEST(AuditLogTest, ALogThatCannotBeOpenedIsAnError) {
  sluice::testing::TempDir dir;
  ASSERT_TRUE(sluice::testing::WriteFile(dir.Sub("file"), "not a directory"));
  EXPECT_FALSE(AuditLog::Open(dir.Sub("file"), 1 << 20).ok());
}

// An auditor's page of one recent hour does not read the whole log: the read starts near
// `from` (a binary search over the lines), finds exactly what a full scan finds (also across a
// clock that stepped back 30 s), and pages through every match with `next` cursors; a cursor that
// is not an entry's start is refused.
TEST(AuditLogTest, ATimeRangeIsFoundWithoutReadingTheWholeLogAndPagesByCursor) {
  sluice::testing::TempDir dir;
  auto log = AuditLog::Open(dir.Sub("audit"), int64_t{1} << 30);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  const int64_t t0 = 1'700'000'000'000;
  constexpr int kEntries = 20000;  // one a second: 5.5 hours
  for (int i = 0; i < kEntries; ++i) {
    // After entry 15,110 the clock steps back 30 s for ten entries (into the range below).
    const int64_t t = t0 + int64_t{i} * 1000 - (i >= 15110 && i < 15120 ? 30'000 : 0);
    ASSERT_TRUE((*log)->Append(Entry(t, i % 3 ? "US" : "BR", "req-" + std::to_string(i))).ok());
  }
  AuditQuery q;
  q.from_ms = t0 + 15'000'000;
  q.to_ms = t0 + 15'100'000;
  q.limit = 10000;
  bool more = true;
  int64_t next = 0;
  int64_t scanned = 0;
  auto page = (*log)->Read(q, &more, &next, &scanned);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_FALSE(more);
  EXPECT_EQ(next, -1);
  // What a scan of everything finds.
  AuditQuery all;
  all.limit = 100000;
  int64_t scanned_all = 0;
  auto every = (*log)->Read(all, &more, nullptr, &scanned_all);
  ASSERT_TRUE(every.ok());
  std::vector<std::string> expected;
  for (const AuditEntry& e : *every) {
    if (e.time_ms >= *q.from_ms && e.time_ms < *q.to_ms) expected.push_back(e.request_id);
  }
  std::vector<std::string> got;
  for (const AuditEntry& e : *page) got.push_back(e.request_id);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(got.size(), 110u);  // 100 seconds, and 10 stepped back into them from 15,110..15,119
  EXPECT_LT(scanned * 20, scanned_all) << scanned << " of " << scanned_all << " bytes read";

  // Pages of 7 US refusals, each from the previous one's next.
  q.country = "US";
  q.limit = 7;
  q.start_offset = -1;
  std::vector<std::string> paged;
  int64_t an_entry = -1;  // the start of an entry (a page's next)
  for (int pages = 0; pages < 100; ++pages) {
    auto p = (*log)->Read(q, &more, &next);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    for (const AuditEntry& e : *p) paged.push_back(e.request_id);
    if (!more) break;
    ASSERT_GT(next, q.start_offset);
    q.start_offset = an_entry = next;
  }
  std::vector<std::string> us;
  for (const AuditEntry& e : *page) {
    if (e.country == "US") us.push_back(e.request_id);
  }
  EXPECT_EQ(paged, us);

  ASSERT_GT(an_entry, 0);
  q.start_offset = an_entry + 1;  // inside an entry
  EXPECT_EQ((*log)->Read(q, &more).status().code(), StatusCode::kInvalidArgument);
  q.start_offset = int64_t{1} << 40;  // past the end
  EXPECT_EQ((*log)->Read(q, &more).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::broker
