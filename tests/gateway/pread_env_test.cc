// PreadTableEnv: table files are read with pread() (never mapped into the process, so a backlog
// does not show up as resident memory), and an EventBuffer on a real directory reads its tables
// back through it after a reopen.
#include "gateway/buffer/pread_env.h"

#include <gtest/gtest.h>
#include <leveldb/env.h>

#include <fstream>
#include <memory>
#include <string>

#include "gateway/buffer/event_buffer.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

// Lines of /proc/self/maps naming a file under `dir`.
int MappingsUnder(const std::string& dir) {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(dir + "/") != std::string::npos) {
      ++n;
    }
  }
  return n;
}

TEST(PreadEnvTest, ReadsAtOffsetsShortAtEndAndReportsMissingFiles) {
  testing::TempDir dir;
  std::string data;
  for (int i = 0; i < 1000; ++i) {
    data += static_cast<char>('a' + i % 26);
  }
  ASSERT_TRUE(testing::WriteFile(dir.Sub("f"), data));
  leveldb::RandomAccessFile* raw = nullptr;
  ASSERT_TRUE(PreadTableEnv()->NewRandomAccessFile(dir.Sub("f"), &raw).ok());
  std::unique_ptr<leveldb::RandomAccessFile> f(raw);
  char scratch[64];
  leveldb::Slice got;
  ASSERT_TRUE(f->Read(100, 30, &got, scratch).ok());
  EXPECT_EQ(got.ToString(), data.substr(100, 30));
  ASSERT_TRUE(f->Read(990, 30, &got, scratch).ok());
  EXPECT_EQ(got.ToString(), data.substr(990));  // short read at the end of the file
  EXPECT_EQ(MappingsUnder(dir.path()), 0);

  leveldb::RandomAccessFile* missing = nullptr;
  leveldb::Status st = PreadTableEnv()->NewRandomAccessFile(dir.Sub("nope"), &missing);
  EXPECT_TRUE(st.IsNotFound()) << st.ToString();
  EXPECT_EQ(missing, nullptr);
}

TEST(PreadEnvTest, BufferReadsTablesBackWithoutMappingThem) {
  testing::TempDir dir;
  BufferOptions o;
  o.path = dir.Sub("buffer");
  o.write_buffer_bytes = 64 << 10;  // the smallest: several tables from a few thousand events
  const RegionId region("eu-central");
  {
    auto b = EventBuffer::Open(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    for (int r = 0; r < 10; ++r) {
      std::vector<PendingEvent> events;
      for (int i = 0; i < 500; ++i) {
        SensorEvent e;
        e.device_id = DeviceId("dev-" + std::to_string(i));
        e.sensor = "temp";
        e.country = CountryCode("DE");
        e.ts_ms = 1'700'000'000'000 + r * 500 + i;
        e.ingest_ms = e.ts_ms;
        e.gateway_id = GatewayId("gw-1");
        e.source = "http";
        e.payload = "{\"i\":" + std::to_string(r * 500 + i) + ",\"pad\":\"" +
                    std::string(100, 'x') + "\"}";
        events.push_back({region, std::move(e)});
      }
      ASSERT_TRUE((*b)->Append(std::move(events)).get().ok());
    }
  }
  auto b = EventBuffer::Open(o);  // verify scan at open reads every table
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*b)->buffered_records(region), 5000u);
  uint64_t cursor = 0;
  uint64_t n = 0;
  while (true) {
    auto batch = (*b)->ReadBatch(region, cursor, 1000, 1 << 20);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    for (const BufferedRecord& rec : batch->records) {
      EXPECT_EQ(rec.event.payload.substr(0, 6 + std::to_string(n).size()),
                "{\"i\":" + std::to_string(n) + ",");
      ++n;
    }
    cursor = batch->next_cursor;
    if (batch->records.empty() || !batch->full) {
      break;
    }
  }
  EXPECT_EQ(n, 5000u);
  EXPECT_EQ(MappingsUnder(o.path), 0);  // leveldb's default Env maps .ldb files
}

}  // namespace
}  // namespace sluice::gateway
