// OffsetStore: commits survive reopen; a torn or corrupt tail is cut, earlier commits kept;
// compaction on open leaves one entry and stray tmp files are ignored.
#include "cloud-broker/groups/offset_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

CommittedOffset C(const std::string& t, int32_t p, int64_t o) {
  return {{TopicName(t), PartitionId(p)}, Offset(o)};
}

TEST(OffsetStoreTest, CommitsSurviveReopen) {
  sluice::testing::TempDir dir;
  {
    auto s = OffsetStore::Open(dir.Sub("groups"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->Commit(GroupId("g1"), {C("t", 0, 5), C("t", 1, 7)}).ok());
    ASSERT_TRUE((*s)->Commit(GroupId("g1"), {C("t", 0, 9)}).ok());
    ASSERT_TRUE((*s)->Commit(GroupId("g2"), {C("u", 3, 1)}).ok());
    EXPECT_EQ((*s)->Get(GroupId("g1")), (std::vector<CommittedOffset>{C("t", 0, 9), C("t", 1, 7)}));
  }
  auto s = OffsetStore::Open(dir.Sub("groups"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Get(GroupId("g1")), (std::vector<CommittedOffset>{C("t", 0, 9), C("t", 1, 7)}));
  EXPECT_EQ((*s)->Get(GroupId("g1"), TopicName("u")), std::vector<CommittedOffset>{});
  EXPECT_EQ((*s)->Get(GroupId("g2"), TopicName("u")), (std::vector<CommittedOffset>{C("u", 3, 1)}));
  EXPECT_EQ((*s)->Groups().size(), 2u);
  EXPECT_EQ((*s)->truncated_bytes(), 0);
  // Compacted on open: one entry holding the latest offsets.
  size_t good = 0;
  auto entries = OffsetStore::DecodeEntries(
      sluice::testing::ReadFileOrEmpty(dir.Sub("groups/g1.offsets")), &good);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0], (std::vector<CommittedOffset>{C("t", 0, 9), C("t", 1, 7)}));
}

size_t OpenFds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

// A group's file is open only while it is written: a client cycling through group ids must not
// hold one descriptor per group it ever committed for (at the process's open-file limit the
// broker could accept no connection and open no segment).
TEST(OffsetStoreTest, HoldsNoDescriptorPerGroup) {
  sluice::testing::TempDir dir;
  auto s = OffsetStore::Open(dir.Sub("groups"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const size_t before = OpenFds();
  for (int g = 0; g < 300; ++g) {
    std::string name = "g";  // not "g" + to_string: GCC 12 warns falsely (-Wrestrict)
    name += std::to_string(g);
    ASSERT_TRUE((*s)->Commit(GroupId(name), {C("t", 0, g)}).ok());
  }
  EXPECT_LT(OpenFds(), before + 10);
  // Still correct: appends go to the right file, and survive a reopen.
  ASSERT_TRUE((*s)->Commit(GroupId("g7"), {C("t", 1, 70)}).ok());
  EXPECT_EQ((*s)->Get(GroupId("g7")), (std::vector<CommittedOffset>{C("t", 0, 7), C("t", 1, 70)}));
  s = OffsetStore::Open(dir.Sub("groups"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Get(GroupId("g7")), (std::vector<CommittedOffset>{C("t", 0, 7), C("t", 1, 70)}));
  EXPECT_EQ((*s)->Groups().size(), 300u);
  EXPECT_LT(OpenFds(), before + 10);
}

// Every cut point inside the last entry (a torn write) keeps exactly the earlier commits.
TEST(OffsetStoreTest, TornTailIsCutAtEveryByte) {
  const std::string first = OffsetStore::EncodeEntry({C("t", 0, 5)});
  const std::string second = OffsetStore::EncodeEntry({C("t", 0, 8), C("t", 1, 2)});
  for (size_t cut = 1; cut < second.size(); ++cut) {
    sluice::testing::TempDir dir;
    std::filesystem::create_directories(dir.Sub("groups"));
    ASSERT_TRUE(
        sluice::testing::WriteFile(dir.Sub("groups/g.offsets"), first + second.substr(0, cut)));
    auto s = OffsetStore::Open(dir.Sub("groups"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ((*s)->Get(GroupId("g")), (std::vector<CommittedOffset>{C("t", 0, 5)})) << cut;
    EXPECT_EQ((*s)->truncated_bytes(), static_cast<int64_t>(cut));
    // New commits after the cut are readable after the next reopen.
    ASSERT_TRUE((*s)->Commit(GroupId("g"), {C("t", 1, 4)}).ok());
    s = OffsetStore::Open(dir.Sub("groups"));
    ASSERT_TRUE(s.ok());
    EXPECT_EQ((*s)->Get(GroupId("g")), (std::vector<CommittedOffset>{C("t", 0, 5), C("t", 1, 4)}));
  }
}

TEST(OffsetStoreTest, CorruptByteStopsAtThatEntry) {
  sluice::testing::TempDir dir;
  std::filesystem::create_directories(dir.Sub("groups"));
  const std::string a = OffsetStore::EncodeEntry({C("t", 0, 5)});
  std::string b = OffsetStore::EncodeEntry({C("t", 0, 6)});
  const std::string c = OffsetStore::EncodeEntry({C("t", 0, 7)});
  b[b.size() - 1] ^= 0x40;  // flip a bit of the offset: CRC mismatch
  ASSERT_TRUE(sluice::testing::WriteFile(dir.Sub("groups/g.offsets"), a + b + c));
  ASSERT_TRUE(sluice::testing::WriteFile(dir.Sub("groups/g.offsets.tmp"), "garbage"));
  auto s = OffsetStore::Open(dir.Sub("groups"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Get(GroupId("g")), (std::vector<CommittedOffset>{C("t", 0, 5)}));
  EXPECT_EQ((*s)->truncated_bytes(), static_cast<int64_t>(b.size() + c.size()));
  EXPECT_EQ((*s)->Groups(), std::vector<GroupId>{GroupId("g")});
}

TEST(OffsetStoreTest, RefusesInvalidGroupId) {
  sluice::testing::TempDir dir;
  auto s = OffsetStore::Open(dir.Sub("groups"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Commit(GroupId("../x"), {C("t", 0, 1)}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::broker
