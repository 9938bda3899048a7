// EventBuffer bounds (max_bytes under reject / drop_oldest, TTL), counters kept exact when an
// evicted record is later removed by a forwarder, and MqttSource's QoS 0 loss bound (a stalled
// fsync never lets more than qos0_max_pending QoS 0 messages wait uncommitted).
#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>

#include "core/clock.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/ingest/mqtt_source.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

SensorEvent MakeEvent(int i, int64_t ingest_ms) {
  SensorEvent e;
  e.device_id = DeviceId("dev-" + std::to_string(i));
  e.sensor = "temp";
  e.country = CountryCode("DE");
  e.ts_ms = ingest_ms;
  e.ingest_ms = ingest_ms;
  e.gateway_id = GatewayId("gw-1");
  e.source = "http";
  e.payload = std::string(100, 'x');
  return e;
}

std::vector<PendingEvent> One(const std::string& region, int i, int64_t ingest_ms = 1000) {
  std::vector<PendingEvent> v;
  v.push_back(PendingEvent{RegionId(region), MakeEvent(i, ingest_ms)});
  return v;
}

Status AppendSync(EventBuffer& b, std::vector<PendingEvent> ev, OverflowPolicy p) {
  auto pr = std::make_shared<std::promise<Status>>();
  auto f = pr->get_future();
  b.Append(std::move(ev), [pr](const Status& st, uint64_t) { pr->set_value(st); }, p);
  return f.get();
}

class BufferBoundsTest : public ::testing::Test {
 protected:
  BufferBoundsTest() : env_(leveldb::NewMemEnv(leveldb::Env::Default())) {}

  std::unique_ptr<EventBuffer> Open(int64_t max_bytes) {
    BufferOptions o;
    o.path = "/buf";
    o.env = env_.get();
    o.max_bytes = max_bytes;
    o.metrics = &metrics_;
    Result<std::unique_ptr<EventBuffer>> b = EventBuffer::Open(o);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b.value()) : nullptr;
  }
  // Bytes one record of MakeEvent takes in region `r`.
  int64_t RecordBytes(const std::string& r) {
    auto b = Open(0);
    EXPECT_TRUE(b->Append(One(r, 0)).get().ok());
    int64_t n = static_cast<int64_t>(b->buffered_bytes(RegionId(r)));
    std::vector<BufferedRecord> recs = b->ReadBatch(RegionId(r), 0, 10, 1 << 20)->records;
    EXPECT_TRUE(b->Remove(RegionId(r), recs).ok());
    return n;
  }

  std::unique_ptr<leveldb::Env> env_;
  MetricsRegistry metrics_;
};

TEST_F(BufferBoundsTest, RejectRefusesPastMaxBytesAndStoresNothing) {
  const int64_t rec = RecordBytes("eu");
  auto b = Open(rec * 3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(AppendSync(*b, One("eu", i), OverflowPolicy::kReject).ok());
  }
  Status st = AppendSync(*b, One("eu", 3), OverflowPolicy::kReject);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsBufferFull(st)) << st.ToString();
  EXPECT_EQ(b->buffered_records(RegionId("eu")), 3u);
  EXPECT_EQ(b->total_buffered_bytes(), static_cast<uint64_t>(rec * 3));
  EXPECT_EQ(b->dropped_oldest(), 0u);
  // Room again once the forwarder removed one.
  auto recs = b->ReadBatch(RegionId("eu"), 0, 1, 1 << 20)->records;
  ASSERT_TRUE(b->Remove(RegionId("eu"), recs).ok());
  EXPECT_TRUE(AppendSync(*b, One("eu", 4), OverflowPolicy::kReject).ok());
}

TEST_F(BufferBoundsTest, DropOldestEvictsOldestOfLargestRegionAndCountsIt) {
  const int64_t rec = RecordBytes("eu");  // "eu" and "us" have equal key sizes
  auto b = Open(rec * 5);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(AppendSync(*b, One("eu", i), OverflowPolicy::kDropOldest).ok());
  }
  ASSERT_TRUE(AppendSync(*b, One("us", 4), OverflowPolicy::kDropOldest).ok());
  std::vector<uint64_t> eu_before = b->ListKeys('q', RegionId("eu"));
  ASSERT_EQ(eu_before.size(), 4u);
  // A forwarder holds the oldest eu record while it is evicted.
  auto held = b->ReadBatch(RegionId("eu"), 0, 1, 1 << 20)->records;
  ASSERT_EQ(held.size(), 1u);

  ASSERT_TRUE(AppendSync(*b, One("us", 5), OverflowPolicy::kDropOldest).ok());
  ASSERT_TRUE(AppendSync(*b, One("us", 6), OverflowPolicy::kDropOldest).ok());
  EXPECT_EQ(b->dropped_oldest(), 2u);
  std::vector<uint64_t> eu_after = b->ListKeys('q', RegionId("eu"));
  EXPECT_EQ(eu_after, std::vector<uint64_t>(eu_before.begin() + 2, eu_before.end()));
  EXPECT_EQ(b->ListKeys('q', RegionId("us")).size(), 3u);
  EXPECT_LE(b->total_buffered_bytes(), static_cast<uint64_t>(rec * 5));
  // Removing the evicted record it held must not count it twice.
  ASSERT_TRUE(b->Remove(RegionId("eu"), held).ok());
  EXPECT_EQ(b->buffered_records(RegionId("eu")), 2u);
  EXPECT_EQ(b->total_buffered_bytes(), static_cast<uint64_t>(rec * 5));
  std::string text = metrics_.RenderPrometheus();
  EXPECT_NE(text.find("sluice_gateway_dropped_total{reason=\"drop_oldest\",source=\"buffer\"} 2"),
            std::string::npos)
      << text;
  // The counters are exact: a reopen recomputes the same.
  b.reset();
  b = Open(rec * 5);
  EXPECT_EQ(b->total_buffered_bytes(), static_cast<uint64_t>(rec * 5));
}

TEST_F(BufferBoundsTest, TtlExpiresOnlyOlderRecords) {
  auto b = Open(0);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(b->Append(One("eu", i, 1000 + i)).get().ok());
  }
  for (int i = 3; i < 5; ++i) {
    ASSERT_TRUE(b->Append(One("eu", i, 9000 + i)).get().ok());
  }
  EXPECT_EQ(b->ExpireOlderThan(5000), 3u);
  EXPECT_EQ(b->expired(), 3u);
  EXPECT_EQ(b->ListKeys('q', RegionId("eu")), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(b->buffered_records(RegionId("eu")), 2u);
  EXPECT_EQ(b->ExpireOlderThan(5000), 0u);  // idempotent
  std::string text = metrics_.RenderPrometheus();
  EXPECT_NE(text.find("sluice_gateway_dropped_total{reason=\"ttl\",source=\"buffer\"} 3"),
            std::string::npos)
      << text;
}

TEST_F(BufferBoundsTest, CompactRemovedKeepsQueueReadableAndEvictionSkipsDelivered) {
  auto b = Open(0);
  std::vector<PendingEvent> old_ones;
  for (int i = 0; i < 2500; ++i) {
    old_ones.push_back(PendingEvent{RegionId("eu"), MakeEvent(i, 1000 + i)});
  }
  ASSERT_TRUE(b->Append(std::move(old_ones)).get().ok());
  std::vector<PendingEvent> young;  // a later commit: chunks never mix commits
  for (int i = 2500; i < 3000; ++i) {
    young.push_back(PendingEvent{RegionId("eu"), MakeEvent(i, 9000 + i)});
  }
  ASSERT_TRUE(b->Append(std::move(young)).get().ok());
  uint64_t cursor = 0;
  for (int i = 0; i < 2; ++i) {  // a forwarder delivers the first 2,000
    auto rb = b->ReadBatch(RegionId("eu"), cursor, 1000, 1 << 30);
    ASSERT_TRUE(rb.ok());
    ASSERT_EQ(rb->records.size(), 1000u);
    ASSERT_TRUE(b->Remove(RegionId("eu"), rb->records).ok());
    cursor = rb->next_cursor;
  }
  b->CompactRemoved(1000);
  auto rb = b->ReadBatch(RegionId("eu"), 0, 10, 1 << 30);
  ASSERT_TRUE(rb.ok());
  ASSERT_FALSE(rb->records.empty());
  EXPECT_EQ(rb->records[0].seq, 2000u);
  // TTL: 2,000..2,499 are older than 3,500 (the chunk holding 2,000 is partly delivered); the
  // delivered ones are not counted again.
  EXPECT_EQ(b->ExpireOlderThan(3500), 500u);
  EXPECT_EQ(b->buffered_records(RegionId("eu")), 500u);
  EXPECT_EQ(b->ListKeys('q', RegionId("eu")).front(), 2500u);
}

TEST_F(BufferBoundsTest, TtlExpiresAChunkWithItsYoungestRecord) {
  // Records of one commit share a chunk, which is deleted whole: it expires when its youngest
  // record does (records of one commit arrive within milliseconds of each other).
  auto b = Open(0);
  std::vector<PendingEvent> one_commit;
  one_commit.push_back(PendingEvent{RegionId("eu"), MakeEvent(0, 1000)});
  one_commit.push_back(PendingEvent{RegionId("eu"), MakeEvent(1, 9000)});
  ASSERT_TRUE(b->Append(std::move(one_commit)).get().ok());
  EXPECT_EQ(b->ExpireOlderThan(5000), 0u);
  EXPECT_EQ(b->buffered_records(RegionId("eu")), 2u);
  EXPECT_EQ(b->ExpireOlderThan(9001), 2u);
  EXPECT_EQ(b->buffered_records(RegionId("eu")), 0u);
  EXPECT_TRUE(b->ListKeys('q', RegionId("eu")).empty());
}

// A WritableFile whose Sync() blocks while the gate is closed: a stalled disk.
class Gate {
 public:
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = false;
    cv_.notify_all();
  }
  void Pass() {
    ++syncs;
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !closed_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;

 public:
  std::atomic<int> syncs{0};
};

class GatedFile : public leveldb::WritableFile {
 public:
  GatedFile(leveldb::WritableFile* f, Gate* g) : f_(f), g_(g) {}
  leveldb::Status Append(const leveldb::Slice& d) override { return f_->Append(d); }
  leveldb::Status Close() override { return f_->Close(); }
  leveldb::Status Flush() override { return f_->Flush(); }
  leveldb::Status Sync() override {
    g_->Pass();
    return f_->Sync();
  }

 private:
  std::unique_ptr<leveldb::WritableFile> f_;
  Gate* g_;
};

class GatedEnv : public leveldb::EnvWrapper {
 public:
  GatedEnv(leveldb::Env* base, Gate* g) : leveldb::EnvWrapper(base), g_(g) {}
  leveldb::Status NewWritableFile(const std::string& f, leveldb::WritableFile** r) override {
    leveldb::Status s = target()->NewWritableFile(f, r);
    if (s.ok()) {
      *r = new GatedFile(*r, g_);
    }
    return s;
  }

 private:
  Gate* g_;
};

// sync: always acknowledges nothing before its fsync, and requests queued meanwhile share one.
TEST(GroupCommitTest, ManyRequestsShareOneSyncAndNoneIsAckedBeforeIt) {
  std::unique_ptr<leveldb::Env> mem(leveldb::NewMemEnv(leveldb::Env::Default()));
  Gate gate;
  GatedEnv env(mem.get(), &gate);
  BufferOptions o;
  o.path = "/buf";
  o.env = &env;
  auto opened = EventBuffer::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<EventBuffer> buf = std::move(opened.value());
  gate.Close();
  const int syncs_before = gate.syncs.load();
  std::atomic<int> acked{0};
  for (int i = 0; i < 200; ++i) {
    buf->Append(One("eu", i), [&](const Status& st, uint64_t) {
      EXPECT_TRUE(st.ok());
      ++acked;
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return gate.syncs.load() > syncs_before; }, 10000));
  EXPECT_EQ(acked.load(), 0);  // the first commit is stuck in its fsync: nothing acknowledged
  gate.Open();
  ASSERT_TRUE(testing::WaitFor([&] { return acked.load() == 200; }, 10000));
  // The stalled commit took the first request(s); the others queued behind it share one write.
  EXPECT_LE(gate.syncs.load() - syncs_before, 3);
  buf.reset();
}

TEST(MqttQos0BoundTest, StalledCommitNeverHoldsMoreThanMaxPending) {
  std::unique_ptr<leveldb::Env> mem(leveldb::NewMemEnv(leveldb::Env::Default()));
  Gate gate;
  GatedEnv env(mem.get(), &gate);
  MetricsRegistry metrics;
  BufferOptions o;
  o.path = "/buf";
  o.env = &env;
  auto opened = EventBuffer::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<EventBuffer> buf = std::move(opened.value());
  RegionConfig rc;
  rc.name = RegionId("eu");
  rc.url = "http://127.0.0.1:1";
  rc.countries = {CountryCode("DE")};
  Result<RegionRouter> router = RegionRouter::Create({rc});
  ASSERT_TRUE(router.ok());
  ManualClock clock;
  MqttSourceOptions mo;
  mo.gateway_id = GatewayId("gw-1");
  mo.country = CountryCode("DE");
  mo.qos0_max_pending = 50;
  MqttSource src(*buf, router.value(), clock, mo, metrics);

  gate.Close();  // the disk stalls: nothing commits
  for (int i = 0; i < 200; ++i) {
    src.OnMessage("sensors/dev-" + std::to_string(i) + "/temp", "{\"v\":1}", 0);  // never blocks
    ASSERT_LE(src.qos0_pending(), 50);
  }
  EXPECT_EQ(src.qos0_pending(), 50);
  std::string text = metrics.RenderPrometheus();
  EXPECT_NE(text.find("sluice_gateway_dropped_total{reason=\"qos0_backlog\",source=\"mqtt\"} 150"),
            std::string::npos)
      << text;
  gate.Open();
  ASSERT_TRUE(testing::WaitFor([&] { return src.qos0_pending() == 0; }, 10000));
  EXPECT_EQ(buf->buffered_records(RegionId("eu")), 50u);
  src.Stop();
  buf.reset();
}

}  // namespace
}  // namespace sluice::gateway
