#include "cloud-broker/log/topic_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

TopicStoreOptions Options(const std::string& dir) {
  TopicStoreOptions o;
  o.data_dir = dir;
  o.default_partitions = 3;
  return o;
}

TEST(TopicStoreTest, AutoCreatesPersistsAndReloads) {
  sluice::testing::TempDir dir;
  {
    auto store = TopicStore::Open(Options(dir.path()));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    bool created = false;
    auto t = (*store)->GetOrCreate(TopicName("sensor.readings"), &created);
    ASSERT_TRUE(t.ok());
    EXPECT_TRUE(created);
    EXPECT_EQ((*t)->partition_count(), 3);
    EXPECT_EQ((*t)->partition(3), nullptr);
    auto again = (*store)->GetOrCreate(TopicName("sensor.readings"), &created);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(created);
    EXPECT_EQ(*again, *t);
    ASSERT_TRUE((*store)->Create(TopicName("alerts"), 2).ok());
    EXPECT_EQ((*store)->Create(TopicName("alerts"), 2).status().code(),
              StatusCode::kFailedPrecondition);
    auto base = (*t)->partition(1)->Append(
        testing::EncodeRecords({testing::MakeRecord("d", "DE", 1, "x")}));
    ASSERT_TRUE(base.ok());
  }
  std::ifstream meta(dir.Sub("topics/sensor.readings.json"));
  std::string text(std::istreambuf_iterator<char>(meta), {});
  EXPECT_EQ(text, "{\"name\":\"sensor.readings\",\"partitions\":3}\n");
  EXPECT_TRUE(std::filesystem::is_directory(dir.Sub("logs/sensor.readings-2")));

  auto store = TopicStore::Open(Options(dir.path()));
  ASSERT_TRUE(store.ok());
  std::vector<Topic*> topics = (*store)->Topics();
  ASSERT_EQ(topics.size(), 2u);
  EXPECT_EQ(topics[0]->name().value(), "alerts");
  EXPECT_EQ(topics[0]->partition_count(), 2);
  EXPECT_EQ(topics[1]->partition(1)->next_offset(), 1);
  EXPECT_EQ(topics[1]->partition(0)->next_offset(), 0);
}

TEST(TopicStoreTest, WithoutAutoCreateUnknownTopicIsNotFound) {
  sluice::testing::TempDir dir;
  TopicStoreOptions o = Options(dir.path());
  o.auto_create = false;
  auto store = TopicStore::Open(o);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->GetOrCreate(TopicName("x")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*store)->Find(TopicName("x")), nullptr);
}

TEST(TopicStoreTest, ValidatesNamesAndPartitionCounts) {
  EXPECT_TRUE(TopicStore::ValidateTopicName("a-b_c.D9").ok());
  EXPECT_FALSE(TopicStore::ValidateTopicName("").ok());
  EXPECT_FALSE(TopicStore::ValidateTopicName("..").ok());
  EXPECT_FALSE(TopicStore::ValidateTopicName("a/b").ok());
  EXPECT_FALSE(TopicStore::ValidateTopicName(std::string(250, 'a')).ok());
  sluice::testing::TempDir dir;
  auto store = TopicStore::Open(Options(dir.path()));
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE((*store)->Create(TopicName("t"), 0).ok());
  EXPECT_FALSE((*store)->Create(TopicName("t"), 1025).ok());
  EXPECT_FALSE((*store)->Create(TopicName("../x"), 1).ok());
}

}  // namespace
}  // namespace sluice::broker
