// The log's open files: a TopicStore with many more partitions than log.max_open_files keeps
// appending and reading every one (files closed least recently used first, fsynced if written,
// reopened on demand), and a topic create that fails to open a file (EMFILE through the FileOps
// seam, at every open it makes) answers kUnavailable and leaves nothing behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cloud-broker/log/file_cache.h"
#include "cloud-broker/log/topic_store.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

namespace fs = std::filesystem;
using sluice::testing::TempDir;

std::string OneRecord(const std::string& payload) {
  return testing::EncodeRecords({testing::MakeRecord("d", "DE", 1'700'000'000'000, payload)});
}

// Names under logs/ and topics/ that start with `topic` followed by '-' or '.'.
std::vector<std::string> Leftovers(const std::string& data_dir, const std::string& topic) {
  std::vector<std::string> out;
  for (const char* sub : {"/logs", "/topics"}) {
    for (const auto& e : fs::directory_iterator(data_dir + sub)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(topic + "-", 0) == 0 || name.rfind(topic + ".", 0) == 0) {
        out.push_back(name);
      }
    }
  }
  return out;
}

TEST(OpenFilesTest, FailedOpenAtEveryStepOfCreateLeavesNothingAndRetrySucceeds) {
  TempDir dir;
  FaultInjectingFileOps ops;
  TopicStoreOptions o;
  o.data_dir = dir.path();
  o.default_partitions = 3;
  o.log.file_ops = &ops;
  auto store = TopicStore::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const uint64_t before = ops.opens();
  ASSERT_TRUE((*store)->Create(TopicName("probe"), 3).ok());
  const int64_t opens_per_create = static_cast<int64_t>(ops.opens() - before);
  ASSERT_GE(opens_per_create, 9);  // 3 partitions x (.log, .index, .timeindex), dir, metadata
  for (int64_t k = 0; k < opens_per_create; ++k) {
    ops.FailOpensAfter(k);
    const bool by_produce = k % 2 == 1;  // auto-create (produce) and explicit create alike
    Result<Topic*> t = by_produce ? (*store)->GetOrCreate(TopicName("fresh"))
                                  : (*store)->Create(TopicName("fresh"), 3);
    ops.FailOpensAfter(-1);
    ASSERT_FALSE(t.ok()) << "open " << k << " did not fail the create";
    EXPECT_EQ(t.status().code(), StatusCode::kUnavailable) << t.status().ToString();
    EXPECT_NE(t.status().message().find("Too many open files"), std::string::npos)
        << t.status().ToString();
    EXPECT_TRUE(Leftovers(dir.path(), "fresh").empty())
        << "open " << k << " left " << Leftovers(dir.path(), "fresh").front();
    EXPECT_EQ((*store)->Find(TopicName("fresh")), nullptr);
  }
  Result<Topic*> t = (*store)->Create(TopicName("fresh"), 3);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_TRUE((*t)->partition(2)->Append(OneRecord("x")).ok());
  store->reset();
  auto reopened = TopicStore::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->Topics().size(), 2u);
  EXPECT_EQ((*reopened)->Find(TopicName("fresh"))->partition(2)->end_offset(), 1);
}

TEST(OpenFilesTest, ManyMorePartitionsThanOpenFilesAllAppendAndRead) {
  TempDir dir;
  TopicStoreOptions o;
  o.data_dir = dir.path();
  o.default_partitions = 1;
  o.max_open_files = 4;
  o.log.segment_bytes = 1024;  // one batch per segment: old segments are read too
  o.log.flush = FlushPolicy::kInterval;  // unsynced bytes until a roll or an eviction fsyncs
  o.log.flush_ms = -1;
  constexpr int kTopics = 24;
  constexpr int kRounds = 4;
  for (int pass = 0; pass < 2; ++pass) {  // the second pass recovers every partition
    auto store = TopicStore::Open(o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (int round = 0; round < kRounds / 2; ++round) {
      for (int t = 0; t < kTopics; ++t) {
        auto topic = (*store)->GetOrCreate(TopicName("t" + std::to_string(t)));
        ASSERT_TRUE(topic.ok()) << topic.status().ToString();
        auto base = (*topic)->partition(0)->Append(OneRecord(std::string(600, 'a' + t % 26)));
        ASSERT_TRUE(base.ok()) << base.status().ToString();
        EXPECT_EQ(*base, pass * kRounds / 2 + round);
      }
    }
    for (int t = 0; t < kTopics; ++t) {
      PartitionLog* log = (*store)->Find(TopicName("t" + std::to_string(t)))->partition(0);
      auto r = log->Read(0, 1000, 1 << 20);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->records.size(), static_cast<size_t>((pass + 1) * kRounds / 2)) << t;
      EXPECT_EQ(*r->records.back().record.value, std::string(600, 'a' + t % 26));
      EXPECT_GT(log->segment_count(), 1u);
    }
    EXPECT_LE((*store)->file_cache().open_files(), 4u);
    EXPECT_GT((*store)->file_cache().evictions(), 0u);
  }
}

// flush: interval leaves appended bytes unsynced; the cache must fsync a written file before it
// closes it, and a failure of that fsync stops the partition like any failed fsync.
TEST(OpenFilesTest, EvictedFileIsFsyncedFirstAndAFailedFsyncStopsItsPartition) {
  TempDir dir;
  FaultInjectingFileOps ops;
  FileCache cache(2);
  LogOptions lo;
  lo.flush = FlushPolicy::kInterval;
  lo.flush_ms = -1;
  lo.file_ops = &ops;
  lo.file_cache = &cache;
  auto a = PartitionLog::Open(dir.Sub("a-0"), lo);
  auto b = PartitionLog::Open(dir.Sub("b-0"), lo);
  auto c = PartitionLog::Open(dir.Sub("c-0"), lo);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE((*a)->Append(OneRecord("a")).ok());
  ops.FailSyncs(true);
  ASSERT_TRUE((*b)->Append(OneRecord("b")).ok());
  ASSERT_TRUE((*c)->Append(OneRecord("c")).ok());  // evicts a's file: its fsync fails
  EXPECT_LE(cache.open_files(), 2u);
  ops.FailSyncs(false);
  auto stopped = (*a)->Append(OneRecord("a2"));
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kUnavailable) << stopped.status().ToString();
  EXPECT_NE(stopped.status().message().find("failed fsync"), std::string::npos);
  // b and c are fine, and a's record is still readable (reopened on demand).
  EXPECT_TRUE((*b)->Append(OneRecord("b2")).ok());
  auto r = (*a)->Read(0, 10, 1 << 20);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->records.size(), 1u);
}

}  // namespace
}  // namespace sluice::broker
