// Reads the broker's segment files with a generic Kafka log reader written here from the
// protocol documentation (not with Sluice's codec): the bytes on disk are plain RecordBatch v2.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cloud-broker/log/topic_store.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::Be;
namespace fs = std::filesystem;

struct KafkaBatch {
  int64_t base_offset;
  int32_t last_offset_delta;
  int32_t record_count;
  int64_t producer_id;
};

// Walks one .log file: baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
// magic int8 | crc uint32 (CRC-32C of attributes..end) | attributes int16 | lastOffsetDelta
// int32 | baseTimestamp | maxTimestamp | producerId int64 | producerEpoch | baseSequence |
// recordCount int32 | records.
std::vector<KafkaBatch> ReadKafkaLog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(std::istreambuf_iterator<char>(in), {});
  std::vector<KafkaBatch> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    EXPECT_GE(bytes.size() - pos, 61u) << path;
    if (bytes.size() - pos < 61) {
      break;
    }
    int32_t length = static_cast<int32_t>(Be(bytes, pos + 8, 4));
    std::string batch = bytes.substr(pos, 12 + static_cast<size_t>(length));
    EXPECT_EQ(batch.size(), 12u + length) << "batch runs past the end of " << path;
    EXPECT_EQ(batch[16], 2) << "magic";
    EXPECT_EQ(static_cast<uint32_t>(Be(batch, 17, 4)), testing::SlowCrc32c(batch, 21)) << "crc";
    EXPECT_EQ(Be(batch, 21, 2) & 0x7, 0u) << "uncompressed";
    out.push_back(KafkaBatch{static_cast<int64_t>(Be(batch, 0, 8)),
                             static_cast<int32_t>(Be(batch, 23, 4)),
                             static_cast<int32_t>(Be(batch, 57, 4)),
                             static_cast<int64_t>(Be(batch, 43, 8))});
    pos += batch.size();
  }
  return out;
}

TEST(KafkaFormatTest, SegmentsArePlainRecordBatchV2WithContiguousOffsets) {
  sluice::testing::TempDir dir;
  TopicStoreOptions o;
  o.data_dir = dir.path();
  o.log.segment_bytes = 2048;
  o.default_partitions = 1;
  auto store = TopicStore::Open(o);
  ASSERT_TRUE(store.ok());
  auto topic = (*store)->GetOrCreate(TopicName("readings"));
  ASSERT_TRUE(topic.ok());
  int64_t total = 0;
  for (int b = 0; b < 25; ++b) {
    std::vector<Record> recs;
    for (int i = 0; i <= b % 4; ++i) {
      recs.push_back(testing::MakeRecord("d" + std::to_string(i), "FR", 1000 + b, "v" + std::to_string(b)));
    }
    ASSERT_TRUE((*topic)->partition(0)->Append(testing::EncodeRecords(recs, 42)).ok());
    total += static_cast<int64_t>(recs.size());
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir.Sub("logs/readings-0"))) {
    if (e.path().extension() == ".log") {  // the .index/.timeindex have their own test
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 1u);
  int64_t expect = 0;
  for (const std::string& f : files) {
    std::vector<KafkaBatch> batches = ReadKafkaLog(f);
    ASSERT_FALSE(batches.empty()) << f;
    EXPECT_EQ(fs::path(f).filename().string(),
              std::string(20 - std::to_string(batches[0].base_offset).size(), '0') +
                  std::to_string(batches[0].base_offset) + ".log");
    for (const KafkaBatch& b : batches) {
      EXPECT_EQ(b.base_offset, expect);
      EXPECT_EQ(b.record_count, b.last_offset_delta + 1);
      EXPECT_EQ(b.producer_id, 42);
      expect = b.base_offset + b.last_offset_delta + 1;
    }
  }
  EXPECT_EQ(expect, total);
}

}  // namespace
}  // namespace sluice::broker
