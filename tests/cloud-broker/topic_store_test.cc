#include "cloud-broker/log/topic_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <vector>

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

// Run in a child process with every descriptor taken but `spare`: a create that fails for want
// of descriptors must leave no directory behind, and the clean-up itself must not need one
// (rm -r opens the directory, which fails with EMFILE exactly then). Exit codes name the failure.
int CreateWithSpareFds(const std::string& dir, int spare) {
  auto store = TopicStore::Open(Options(dir));
  if (!store.ok()) {
    return 10;
  }
  std::vector<int> held;
  for (int fd; (fd = ::dup(STDIN_FILENO)) >= 0;) {
    held.push_back(fd);
  }
  if (errno != EMFILE) {
    return 11;
  }
  for (int i = 0; i < spare && !held.empty(); ++i) {
    ::close(held.back());
    held.pop_back();
  }
  auto t = (*store)->Create(TopicName("fresh"), 2);
  struct stat st;
  const bool left = ::stat((dir + "/logs/fresh-0").c_str(), &st) == 0 ||
                    ::stat((dir + "/logs/fresh-1").c_str(), &st) == 0 ||
                    ::stat((dir + "/topics/fresh.json").c_str(), &st) == 0;
  if (t.ok()) {
    return left ? 0 : 12;  // enough descriptors after all: a complete topic
  }
  if (t.status().code() == StatusCode::kNotFound) {
    return 13;
  }
  return left ? 14 : 0;
}

TEST(TopicStoreTest, CreateOutOfDescriptorsLeavesNothingBehind) {
  for (int spare = 0; spare <= 8; ++spare) {
    sluice::testing::TempDir dir;
    ::fflush(nullptr);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::_exit(CreateWithSpareFds(dir.path(), spare));
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "spare=" << spare;
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "spare=" << spare << " (14: a failed create left files behind)";
  }
}

}  // namespace
}  // namespace sluice::broker
