// The EventBuffer on a real, nearly full filesystem (a small tmpfs, tests/common/small_disk.h):
// the free-space floor refuses commits before LevelDB meets ENOSPC and lifts by itself when
// space returns; a write that fails anyway stops every later write, so that nothing is
// acknowledged after a possibly torn log record, and a reopen keeps everything acknowledged.
#include <gtest/gtest.h>

#include <filesystem>

#include "gateway/buffer/event_buffer.h"
#include "tests/gateway/sample_events.h"
#include "tests/common/small_disk.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

std::vector<PendingEvent> Events(int n, int start) {
  return SampleEvents(RegionId("eu-central"), n, start, 200);
}

class BufferDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    disk_ = testing::SmallDisk::Mount(dir_.Sub("disk"), int64_t{24} << 20, &why);
    if (disk_ == nullptr) {
      GTEST_SKIP() << why;
    }
  }
  std::unique_ptr<EventBuffer> Open(int64_t min_free_bytes) {
    BufferOptions o;
    o.path = disk_->Sub("buffer");
    o.write_buffer_bytes = size_t{1} << 20;
    o.min_free_bytes = min_free_bytes;
    Result<std::unique_ptr<EventBuffer>> b = EventBuffer::Open(o);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b.value()) : nullptr;
  }
  // Appends batches of 50 events until one fails; returns the events acknowledged.
  int64_t AppendUntilRefused(EventBuffer& buf, Status* refusal) {
    int64_t acked = 0;
    for (int i = 0; i < 100000; ++i) {
      Status st = buf.Append(Events(50, next_)).get();
      if (!st.ok()) {
        *refusal = st;
        return acked;
      }
      next_ += 50;
      acked += 50;
    }
    ADD_FAILURE() << "the disk never filled";
    return acked;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::SmallDisk> disk_;
  int next_ = 0;
};

TEST_F(BufferDiskFullTest, FreeSpaceFloorRefusesBeforeEnospcAndLiftsWhenSpaceReturns) {
  ASSERT_TRUE(disk_->Fill("other-app.log", int64_t{12} << 20));
  const int64_t kFloor = int64_t{4} << 20;
  auto buf = Open(kFloor);
  ASSERT_NE(buf, nullptr);
  Status refused;
  const int64_t acked = AppendUntilRefused(*buf, &refused);
  EXPECT_TRUE(IsDiskFull(refused)) << refused.ToString();
  EXPECT_NE(refused.message().find("buffer.min_free_bytes is 4194304"), std::string::npos)
      << refused.ToString();
  EXPECT_GT(acked, 10000);
  EXPECT_TRUE(buf->write_failure().ok()) << "LevelDB met ENOSPC: " << buf->write_failure().ToString();
  EXPECT_EQ(buf->total_buffered_records(), static_cast<uint64_t>(acked));
  // Refused whole and left the floor in place, so LevelDB could still flush and compact: once a
  // compaction running now has deleted its inputs (it writes its outputs first, briefly taking
  // more: this read 1.5 MiB free once, 1 run in 5 under load), the free space is above it.
  EXPECT_TRUE(testing::WaitFor([&] { return disk_->FreeBytes() > kFloor / 2; }, 10000))
      << disk_->FreeBytes() << " bytes free";

  // The other application's file goes away: appends are accepted again, no restart.
  std::filesystem::remove(disk_->Sub("other-app.log"));
  ASSERT_TRUE(buf->Append(Events(50, next_)).get().ok());
  buf.reset();
  auto again = Open(kFloor);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->total_buffered_records(), static_cast<uint64_t>(acked + 50));
}

TEST_F(BufferDiskFullTest, AFailedWriteStopsEveryWriteAndAReopenKeepsAllAcknowledged) {
  ASSERT_TRUE(disk_->Fill("other-app.log", int64_t{16} << 20));
  auto buf = Open(0);  // no floor: LevelDB meets ENOSPC itself
  ASSERT_NE(buf, nullptr);
  Status refused;
  const int64_t acked = AppendUntilRefused(*buf, &refused);
  ASSERT_GT(acked, 0);
  EXPECT_EQ(refused.code(), StatusCode::kIOError) << refused.ToString();
  EXPECT_NE(refused.message().find("No space left on device"), std::string::npos)
      << refused.ToString();
  ASSERT_FALSE(buf->write_failure().ok());

  // Space comes back, but this DB handle stays stopped: LevelDB would append after the torn
  // record, and what it acknowledged next could vanish at the next open.
  std::filesystem::remove(disk_->Sub("other-app.log"));
  Status after = buf->Append(Events(50, next_)).get();
  EXPECT_EQ(after.code(), StatusCode::kUnavailable) << after.ToString();
  EXPECT_NE(after.message().find("restart"), std::string::npos) << after.ToString();
  Result<ReadBatchResult> read = buf->ReadBatch(RegionId("eu-central"), 0, 10, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status().ToString();  // reading still works
  Status remove = buf->Remove(RegionId("eu-central"), read->records);
  EXPECT_NE(remove.message().find("restart the gateway"), std::string::npos) << remove.ToString();

  // The restart: everything acknowledged is there, and the buffer takes writes again.
  buf.reset();
  auto reopened = Open(0);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->total_buffered_records(), static_cast<uint64_t>(acked));
  EXPECT_TRUE(reopened->Append(Events(50, next_)).get().ok());
  EXPECT_EQ(reopened->total_buffered_records(), static_cast<uint64_t>(acked + 50));
}

}  // namespace
}  // namespace sluice::gateway
