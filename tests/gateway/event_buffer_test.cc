#include "gateway/buffer/event_buffer.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <future>
#include <thread>

#include "gateway/buffer/event_codec.h"
#include "tests/common/buffer_corruption.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

SensorEvent MakeEvent(const std::string& device, int i) {
  SensorEvent e;
  e.device_id = DeviceId(device);
  e.sensor = "temp";
  e.country = CountryCode("DE");
  e.ts_ms = 1'700'000'000'000 + i;
  e.ingest_ms = 1'700'000'000'500 + i;
  e.gateway_id = GatewayId("gw-1");
  e.source = "http";
  e.payload = "{\"i\":" + std::to_string(i) + "}";
  return e;
}

std::vector<PendingEvent> Events(const std::string& region, int n, int start = 0) {
  std::vector<PendingEvent> v;
  for (int i = start; i < start + n; ++i) {
    v.push_back(PendingEvent{RegionId(region), MakeEvent("dev-" + std::to_string(i), i)});
  }
  return v;
}

class EventBufferTest : public ::testing::Test {
 protected:
  EventBufferTest() : env_(leveldb::NewMemEnv(leveldb::Env::Default())) {}

  std::unique_ptr<EventBuffer> Open(SyncMode sync = SyncMode::kAlways) {
    BufferOptions o;
    o.path = "/buf";
    o.env = env_.get();
    o.sync = sync;
    o.sync_interval_ms = 10;
    Result<std::unique_ptr<EventBuffer>> b = EventBuffer::Open(o);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b.value()) : nullptr;
  }

  std::unique_ptr<leveldb::Env> env_;
  const RegionId eu_{"eu-central"};
  const RegionId us_{"us-east"};
};

TEST_F(EventBufferTest, CodecRoundTripAndCrcDetectsFlip) {
  SensorEvent e = MakeEvent("d", 1);
  std::string entry;
  EncodeEntry(e, &entry);
  SensorEvent out;
  ASSERT_TRUE(DecodeEntry(entry, 77, &out).ok());
  e.gateway_seq = GatewaySeq(77);
  EXPECT_EQ(out, e);
  entry[3] ^= 0x10;
  EXPECT_EQ(DecodeEntry(entry, 77, &out).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeEntry("abc", 1, &out).code(), StatusCode::kCorruption);
}

TEST_F(EventBufferTest, AppendReadRemove) {
  auto buf = Open();
  ASSERT_TRUE(buf->Append(Events("eu-central", 5)).get().ok());
  ASSERT_TRUE(buf->Append(Events("us-east", 2, 5)).get().ok());
  EXPECT_EQ(buf->buffered_records(eu_), 5u);
  EXPECT_EQ(buf->buffered_records(us_), 2u);
  EXPECT_GT(buf->buffered_bytes(eu_), 0u);

  Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 3, 1 << 20);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 3u);
  EXPECT_TRUE(r->full);
  EXPECT_EQ(r->records[0].seq, 0u);
  EXPECT_EQ(r->records[2].seq, 2u);
  EXPECT_EQ(r->records[1].event.device_id.value(), "dev-1");
  EXPECT_EQ(r->records[1].event.gateway_seq.value(), 1u);
  EXPECT_EQ(r->next_cursor, 3u);

  ASSERT_TRUE(buf->Remove(eu_, r->records).ok());
  EXPECT_EQ(buf->buffered_records(eu_), 2u);
  Result<ReadBatchResult> rest = buf->ReadBatch(eu_, r->next_cursor, 100, 1 << 20);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->records.size(), 2u);
  EXPECT_FALSE(rest->full);
  EXPECT_EQ(rest->records[0].seq, 3u);
  // Reading from 0 after the removal finds the same remaining records.
  Result<ReadBatchResult> again = buf->ReadBatch(eu_, 0, 100, 1 << 20);
  ASSERT_EQ(again->records.size(), 2u);
  EXPECT_EQ(again->records[0].seq, 3u);

  Result<ReadBatchResult> us = buf->ReadBatch(us_, 0, 100, 1 << 20);
  ASSERT_EQ(us->records.size(), 2u);
  EXPECT_EQ(us->records[0].seq, 5u);
}

TEST_F(EventBufferTest, MaxBytesLimitsBatchButReturnsAtLeastOne) {
  auto buf = Open();
  ASSERT_TRUE(buf->Append(Events("eu-central", 10)).get().ok());
  Result<ReadBatchResult> one = buf->ReadBatch(eu_, 0, 100, 1);
  ASSERT_EQ(one->records.size(), 1u);
  EXPECT_TRUE(one->full);
  size_t per = one->records[0].bytes;
  Result<ReadBatchResult> three = buf->ReadBatch(eu_, 0, 100, per * 3 + per / 2);
  EXPECT_EQ(three->records.size(), 3u);
}

TEST_F(EventBufferTest, SequencesAndCountersSurviveReopen) {
  {
    auto buf = Open();
    ASSERT_TRUE(buf->Append(Events("eu-central", 4)).get().ok());
    Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 4, 1 << 20);
    ASSERT_TRUE(buf->Remove(eu_, r->records).ok());  // all removed: seq must still not reuse
    ASSERT_TRUE(buf->Append(Events("eu-central", 2)).get().ok());
    EXPECT_EQ(buf->next_seq(), 6u);
  }
  auto buf = Open();
  EXPECT_EQ(buf->next_seq(), 6u);
  EXPECT_EQ(buf->buffered_records(eu_), 2u);
  std::promise<uint64_t> first;
  buf->Append(Events("eu-central", 1), [&](const Status& st, uint64_t seq) {
    EXPECT_TRUE(st.ok());
    first.set_value(seq);
  });
  EXPECT_EQ(first.get_future().get(), 6u);
  EXPECT_EQ(buf->ListKeys('q', eu_), (std::vector<uint64_t>{4, 5, 6}));
}

TEST_F(EventBufferTest, GroupCommitOfConcurrentAppendersIsDenseAndOrdered) {
  auto buf = Open();
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<std::pair<uint64_t, int>> firsts;  // (first seq, thread)
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::promise<void> done;
        buf->Append(Events("eu-central", 2, t * 1000 + i * 2),
                    [&, t](const Status& st, uint64_t seq) {
                      EXPECT_TRUE(st.ok());
                      std::lock_guard<std::mutex> lock(mu);
                      firsts.emplace_back(seq, t);
                      done.set_value();
                    });
        done.get_future().wait();
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  const uint64_t total = kThreads * kPerThread * 2;
  EXPECT_EQ(buf->next_seq(), total);
  std::vector<uint64_t> keys = buf->ListKeys('q', eu_);
  ASSERT_EQ(keys.size(), total);
  for (uint64_t i = 0; i < total; ++i) {
    ASSERT_EQ(keys[i], i);  // dense, and key order == sequence order
  }
  // Each Append got two consecutive sequences, so every first seq is even and distinct.
  std::set<uint64_t> distinct;
  for (auto& [seq, t] : firsts) {
    EXPECT_EQ(seq % 2, 0u);
    distinct.insert(seq);
  }
  EXPECT_EQ(distinct.size(), firsts.size());
  // The two events of one Append carry consecutive sequences and the same thread's payloads.
  Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, total, 1 << 30);
  ASSERT_EQ(r->records.size(), total);
  for (uint64_t i = 0; i < total; i += 2) {
    EXPECT_EQ(r->records[i].event.ts_ms + 1, r->records[i + 1].event.ts_ms);
  }
}

TEST_F(EventBufferTest, CorruptEntryIsQuarantinedAndOthersRead) {
  {
    auto buf = Open();
    ASSERT_TRUE(buf->Append(Events("eu-central", 3)).get().ok());
  }
  {
    leveldb::Options o;
    o.env = env_.get();
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, "/buf", &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    ASSERT_TRUE(sluice::testing::CorruptBufferedRecord(db.get(), "eu-central", 1));
  }
  auto buf = Open();
  // The verify scan at open already moved it to quarantine.
  EXPECT_EQ(buf->quarantined(), 1u);
  EXPECT_EQ(buf->buffered_records(eu_), 2u);
  Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 100, 1 << 20);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 2u);
  EXPECT_EQ(r->records[0].seq, 0u);
  EXPECT_EQ(r->records[1].seq, 2u);
  EXPECT_EQ(r->next_cursor, 3u);
  EXPECT_EQ(buf->quarantined(), 1u);
  EXPECT_EQ(buf->buffered_records(eu_), 2u);
  EXPECT_EQ(buf->ListKeys('x', eu_), (std::vector<uint64_t>{1}));
  // Not met again.
  Result<ReadBatchResult> again = buf->ReadBatch(eu_, 0, 100, 1 << 20);
  EXPECT_EQ(again->records.size(), 2u);
  EXPECT_EQ(buf->quarantined(), 1u);
}

// Raw access to the buffer's LevelDB (the buffer must be closed).
std::unique_ptr<leveldb::DB> RawDb(leveldb::Env* env) {
  leveldb::Options o;
  o.env = env;
  leveldb::DB* raw = nullptr;
  EXPECT_TRUE(leveldb::DB::Open(o, "/buf", &raw).ok());
  return std::unique_ptr<leveldb::DB>(raw);
}

size_t QueueKeyCount(leveldb::DB* db) {
  size_t n = 0;
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
  for (it->Seek("q/"); it->Valid() && it->key().starts_with("q/"); it->Next()) {
    ++n;
  }
  return n;
}

TEST_F(EventBufferTest, OneCommitIsFewChunksDeletedOnceEveryRecordIsDone) {
  {
    auto buf = Open();
    ASSERT_TRUE(buf->Append(Events("eu-central", 3000)).get().ok());
    // Delivered in batches that do not line up with chunk boundaries.
    uint64_t cursor = 0;
    std::vector<uint64_t> seen;
    while (true) {
      Result<ReadBatchResult> r = buf->ReadBatch(eu_, cursor, 700, 1 << 20);
      ASSERT_TRUE(r.ok());
      if (r->records.empty()) {
        break;
      }
      for (const BufferedRecord& rec : r->records) {
        seen.push_back(rec.seq);
      }
      cursor = r->next_cursor;
      if (seen.size() <= 1400) {
        ASSERT_TRUE(buf->Remove(eu_, r->records).ok());
      }
    }
    ASSERT_EQ(seen.size(), 3000u);
    for (uint64_t i = 0; i < seen.size(); ++i) {
      ASSERT_EQ(seen[i], i);
    }
    EXPECT_EQ(buf->buffered_records(eu_), 1600u);
    std::vector<uint64_t> left = buf->ListKeys('q', eu_);
    ASSERT_EQ(left.size(), 1600u);
    EXPECT_EQ(left.front(), 1400u);
  }
  {
    auto db = RawDb(env_.get());
    const size_t chunks = QueueKeyCount(db.get());
    EXPECT_GE(chunks, 2u);   // 3,000 records of ~60 bytes: 64 KiB chunks
    EXPECT_LE(chunks, 5u);   // not one key per record
  }
  // After a restart the partly delivered chunk is read whole again (what of it the broker has
  // it skips: idempotent producer); nothing below it comes back.
  auto buf = Open();
  Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 1, 1 << 20);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->records.size(), 1u);
  EXPECT_LE(r->records[0].seq, 1400u);
  EXPECT_GT(r->records[0].seq, 0u);
  const uint64_t again = buf->buffered_records(eu_);
  EXPECT_GE(again, 1600u);
  EXPECT_LT(again, 3000u);
  // Everything removed: no queue key is left.
  uint64_t cursor = 0;
  while (true) {
    Result<ReadBatchResult> all = buf->ReadBatch(eu_, cursor, 1000, 1 << 20);
    ASSERT_TRUE(all.ok());
    if (all->records.empty()) {
      break;
    }
    ASSERT_TRUE(buf->Remove(eu_, all->records).ok());
    cursor = all->next_cursor;
  }
  EXPECT_EQ(buf->buffered_records(eu_), 0u);
  EXPECT_EQ(buf->total_buffered_bytes(), 0u);
  buf.reset();
  auto db = RawDb(env_.get());
  EXPECT_EQ(QueueKeyCount(db.get()), 0u);
}

TEST_F(EventBufferTest, ChunkWithBrokenFramingKeepsItsReadableRecords) {
  {
    auto buf = Open();
    ASSERT_TRUE(buf->Append(Events("eu-central", 5)).get().ok());
    ASSERT_TRUE(buf->Append(Events("eu-central", 2, 5)).get().ok());
  }
  {
    // A torn write: the first chunk loses its last bytes.
    auto db = RawDb(env_.get());
    const std::string key = QueueKey('q', "eu-central", 4);
    std::string v;
    ASSERT_TRUE(db->Get(leveldb::ReadOptions(), key, &v).ok());
    v.resize(v.size() - 3);
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), key, v).ok());
  }
  auto buf = Open();
  EXPECT_EQ(buf->quarantined(), 1u);
  EXPECT_EQ(buf->buffered_records(eu_), 6u);
  EXPECT_EQ(buf->ListKeys('q', eu_), (std::vector<uint64_t>{0, 1, 2, 3, 5, 6}));
  EXPECT_EQ(buf->ListKeys('x', eu_), (std::vector<uint64_t>{4}));
  Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 100, 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->records.size(), 6u);
}

TEST_F(EventBufferTest, UnacknowledgedAppendsWaitForCompanyButNeverDelayAnAcknowledgedOne) {
  BufferOptions o;
  o.path = "/buf";
  o.env = env_.get();
  o.unacknowledged_commit_delay_ms = 600000;  // far longer than this test may take
  o.unacknowledged_commit_events = 10;
  auto opened = EventBuffer::Open(o);
  ASSERT_TRUE(opened.ok());
  EventBuffer& buf = **opened;
  std::vector<std::future<Status>> lazy;
  auto append_lazy = [&](int i) {
    auto p = std::make_shared<std::promise<Status>>();
    lazy.push_back(p->get_future());
    buf.Append(Events("eu-central", 1, i), [p](const Status& st, uint64_t) { p->set_value(st); },
               OverflowPolicy::kReject, AppendWait::kUnacknowledged);
  };
  for (int i = 0; i < 3; ++i) {
    append_lazy(i);
  }
  // An acknowledged append commits at once, taking the waiting ones along.
  ASSERT_EQ(buf.Append(Events("eu-central", 1, 3)).wait_for(std::chrono::seconds(30)),
            std::future_status::ready);
  for (auto& f : lazy) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_EQ(buf.buffered_records(eu_), 4u);
  // Enough of them queued: committed without waiting for the delay.
  lazy.clear();
  for (int i = 10; i < 20; ++i) {
    append_lazy(i);
  }
  for (auto& f : lazy) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  }
  EXPECT_EQ(buf.buffered_records(eu_), 14u);
  // Stopping commits what waits.
  lazy.clear();
  append_lazy(30);
  buf.StopAppends();
  ASSERT_EQ(lazy[0].wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(lazy[0].get().ok());
  EXPECT_EQ(buf.buffered_records(eu_), 15u);
}

TEST_F(EventBufferTest, DeadLetterMovesRecords) {
  auto buf = Open();
  ASSERT_TRUE(buf->Append(Events("eu-central", 3)).get().ok());
  Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 2, 1 << 20);
  ASSERT_TRUE(buf->DeadLetter(eu_, r->records).ok());
  EXPECT_EQ(buf->ListKeys('d', eu_), (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(buf->ListKeys('q', eu_), (std::vector<uint64_t>{2}));
  EXPECT_EQ(buf->buffered_records(eu_), 1u);
}

TEST_F(EventBufferTest, DeadLetterAfterARestartIsNotCountedTwice) {
  {
    auto buf = Open();
    ASSERT_TRUE(buf->Append(Events("eu-central", 3)).get().ok());  // one chunk
    Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 3, 1 << 20);
    ASSERT_EQ(r->records.size(), 3u);
    size_t newly = 99;
    ASSERT_TRUE(buf->DeadLetter(eu_, {r->records[1]}, &newly).ok());
    EXPECT_EQ(newly, 1u);
  }
  // Restarted with the chunk still holding records 0 and 2: it is read whole again, and the
  // broker refuses record 1 again.
  auto buf = Open();
  Result<ReadBatchResult> r = buf->ReadBatch(eu_, 0, 3, 1 << 20);
  ASSERT_EQ(r->records.size(), 3u);
  size_t newly = 99;
  ASSERT_TRUE(buf->DeadLetter(eu_, {r->records[1]}, &newly).ok());
  EXPECT_EQ(newly, 0u);
  EXPECT_EQ(buf->ListKeys('d', eu_), (std::vector<uint64_t>{1}));
  ASSERT_TRUE(buf->Remove(eu_, {r->records[0], r->records[2]}).ok());
  EXPECT_EQ(buf->buffered_records(eu_), 0u);
  EXPECT_TRUE(buf->ListKeys('q', eu_).empty());
}

TEST_F(EventBufferTest, IntervalSyncModeAcknowledgesAndPersists) {
  uint64_t handed_out = 0;
  {
    auto buf = Open(SyncMode::kInterval);
    ASSERT_TRUE(buf->Append(Events("eu-central", 3)).get().ok());
    handed_out = buf->next_seq();
  }
  auto buf = Open(SyncMode::kInterval);
  EXPECT_EQ(buf->buffered_records(eu_), 3u);
  // Unsynced writes of the last interval may be lost by an OS crash while the broker already
  // holds those sequences: each open jumps far past them so no sequence is ever reused.
  EXPECT_GE(buf->next_seq(), handed_out + (uint64_t{1} << 32));
}

TEST_F(EventBufferTest, AppendAfterStopFailsUnavailableAndListenersFire) {
  auto buf = Open();
  std::atomic<int> commits{0};
  std::atomic<int> other_region{0};
  buf->AddCommitListener(RegionId("eu-central"), [&] { commits++; });
  buf->AddCommitListener(RegionId("us-east"), [&] { other_region++; });
  ASSERT_TRUE(buf->Append(Events("eu-central", 1)).get().ok());
  // Listeners run right after the callbacks, on the commit thread; only those of a region the
  // commit added records to.
  EXPECT_TRUE(testing::WaitFor([&] { return commits.load() == 1; }, 5000));
  ASSERT_TRUE(buf->Append(Events("eu-central", 1)).get().ok());
  EXPECT_TRUE(testing::WaitFor([&] { return commits.load() == 2; }, 5000));
  EXPECT_EQ(other_region.load(), 0);
  buf->StopAppends();
  Status st = buf->Append(Events("eu-central", 1)).get();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
}

TEST(EventBufferDiskTest, OpensOnRealDirectory) {
  std::string dir = ::testing::TempDir() + "/sluice_buffer_disk_" + std::to_string(getpid());
  {
    BufferOptions o;
    o.path = dir;
    auto b = EventBuffer::Open(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ASSERT_TRUE((*b)->Append(Events("eu-central", 2)).get().ok());
  }
  BufferOptions o;
  o.path = dir;
  auto b = EventBuffer::Open(o);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->buffered_records(RegionId("eu-central")), 2u);
  b.value().reset();
  leveldb::DestroyDB(dir, leveldb::Options());
}

// Residency quarantine (issue 13): an event refused for residency is kept apart ("r/"), never
// in a region queue (no forwarder reads it), counted, and still there after a restart.
TEST_F(EventBufferTest, ResidencyRefusedEventsAreKeptApartAndSurviveReopen) {
  auto b = Open();
  std::vector<PendingEvent> v = Events("eu-central", 3);
  v[1].refused_reason = "no_region: country BR is allowed in no region\nby policy x";
  ASSERT_TRUE(b->Append(std::move(v)).get().ok());
  EXPECT_EQ(b->buffered_records(eu_), 2u);
  EXPECT_EQ(b->ListKeys('q', eu_), (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(b->ListKeys('r', RegionId(kResidencyQuarantine)), (std::vector<uint64_t>{1}));
  EXPECT_EQ(b->residency_quarantined(), 1u);
  EXPECT_EQ(b->total_buffered_bytes(), b->buffered_bytes(eu_));  // outside the queues' bytes
  b.reset();
  b = Open();
  EXPECT_EQ(b->residency_quarantined(), 1u);
  EXPECT_EQ(b->buffered_records(eu_), 2u);
  EXPECT_EQ(b->next_seq(), 3u);
}

// Reroute (residency failover): records leave one queue and join another with new sequences in
// one write; what moved is gone from the old queue, also after a restart.
TEST_F(EventBufferTest, RerouteMovesRecordsToAnotherQueueWithNewSequences) {
  auto b = Open();
  ASSERT_TRUE(b->Append(Events("us-east", 4)).get().ok());
  Result<ReadBatchResult> rb = b->ReadBatch(us_, 0, 10, 1 << 20);
  ASSERT_EQ(rb->records.size(), 4u);
  std::vector<BufferedRecord> moving = {rb->records[1], rb->records[3]};
  std::promise<Status> p;
  b->Reroute(us_, moving, eu_, [&](const Status& st, uint64_t first) {
    EXPECT_EQ(first, 4u);
    p.set_value(st);
  });
  ASSERT_TRUE(p.get_future().get().ok());
  EXPECT_EQ(b->ListKeys('q', us_), (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(b->ListKeys('q', eu_), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(b->buffered_records(us_), 2u);
  EXPECT_EQ(b->buffered_records(eu_), 2u);
  Result<ReadBatchResult> eu = b->ReadBatch(eu_, 0, 10, 1 << 20);
  ASSERT_EQ(eu->records.size(), 2u);
  EXPECT_EQ(eu->records[0].event.device_id.value(), "dev-1");
  EXPECT_EQ(eu->records[1].event.device_id.value(), "dev-3");
  EXPECT_EQ(eu->records[1].seq, 5u);
  b.reset();
  b = Open();
  EXPECT_EQ(b->ListKeys('q', us_), (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(b->ListKeys('q', eu_), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(b->buffered_records(us_) + b->buffered_records(eu_), 4u);
}

}  // namespace
}  // namespace sluice::gateway
