// The EventBuffer through simulated power cuts (tests/common/power_cut_env.h: files fall back to
// what their last fsync covered, at a random moment while appends and removals run).
// sync: always: every acknowledged event survives, with its content, and no sequence is ever
// handed out twice (the broker's deduplication depends on it). sync: interval: what was
// acknowledged before the last periodic sync survives, and the sequence jumps past anything the
// lost window may have used.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "gateway/buffer/event_buffer.h"
#include "tests/gateway/sample_events.h"
#include "tests/common/power_cut_env.h"
#include "tests/common/test_env.h"

namespace sluice::gateway {
namespace {

const RegionId kEu("eu-central");

std::vector<PendingEvent> Events(int n, int64_t first_id) {
  return SampleEvents(kEu, n, first_id);
}

class BufferPowerCutTest : public ::testing::Test {
 protected:
  std::unique_ptr<EventBuffer> Open(SyncMode sync, int64_t sync_interval_ms = 20) {
    BufferOptions o;
    o.path = dir_.Sub("buffer");
    o.env = &env_;
    o.sync = sync;
    o.sync_interval_ms = sync_interval_ms;
    o.write_buffer_bytes = size_t{256} << 10;  // memtable flushes and compactions happen too
    Result<std::unique_ptr<EventBuffer>> b = EventBuffer::Open(o);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(b.value()) : nullptr;
  }
  // Appends the event with this id; its sequence once acknowledged.
  static Result<uint64_t> AppendOne(EventBuffer& buf, int64_t id) {
    std::promise<Result<uint64_t>> done;
    buf.Append(Events(1, id), [&](const Status& st, uint64_t seq) {
      done.set_value(st.ok() ? Result<uint64_t>(seq) : Result<uint64_t>(st));
    });
    return done.get_future().get();
  }
  // seq -> device id of every record in the buffer.
  std::map<uint64_t, std::string> ReadAll(EventBuffer& buf) {
    std::map<uint64_t, std::string> out;
    uint64_t cursor = 0;
    while (true) {
      Result<ReadBatchResult> r = buf.ReadBatch(kEu, cursor, 1000, 1 << 20);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok() || r->records.empty()) {
        return out;
      }
      for (const BufferedRecord& rec : r->records) {
        out[rec.seq] = rec.event.device_id.value();
      }
      cursor = r->next_cursor;
    }
  }

  testing::TempDir dir_;
  testing::PowerCutEnv env_;
};

TEST_F(BufferPowerCutTest, SyncAlwaysKeepsEveryAcknowledgedEventAcrossCutsMidLoad) {
  std::mt19937 rng(20261129);
  std::mutex mu;
  std::map<uint64_t, std::string> acked;  // seq -> device id, from the append callbacks
  std::set<uint64_t> removed;              // a removal may come back after a cut: not checked
  int64_t next_id = 0;                     // mu
  uint64_t dropped_bytes = 0;
  size_t checked = 0;
  // After each cut: every acknowledged record not removed is there with its own content, the
  // counters match what is there, and the next sequence is above every one handed out.
  auto check = [&](EventBuffer& buf, int cut) {
    std::map<uint64_t, std::string> all = ReadAll(buf);
    EXPECT_EQ(buf.total_buffered_records(), all.size()) << "cut " << cut;
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [seq, device] : acked) {
      if (removed.count(seq) == 0) {
        auto it = all.find(seq);
        ASSERT_NE(it, all.end()) << "acknowledged seq " << seq << " lost at cut " << cut;
        ASSERT_EQ(it->second, device) << "seq " << seq;
        ++checked;
      }
    }
    for (const auto& [seq, device] : all) {
      auto it = acked.find(seq);
      if (it != acked.end()) {
        ASSERT_EQ(it->second, device) << "seq " << seq;
      }
    }
    if (!acked.empty()) {
      EXPECT_GT(buf.next_seq(), acked.rbegin()->first) << "a sequence could be reused";
    }
  };
  for (int cut = 0; cut < 8; ++cut) {
    auto buf = Open(SyncMode::kAlways);
    ASSERT_NE(buf, nullptr);
    check(*buf, cut);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        while (!stop.load()) {
          int n = 0;
          int64_t first = 0;
          {
            std::lock_guard<std::mutex> lock(mu);
            n = 1 + static_cast<int>(next_id % 7);
            first = next_id;
            next_id += n;
          }
          std::promise<bool> done;
          buf->Append(Events(n, first), [&](const Status& st, uint64_t seq) {
            if (st.ok()) {
              std::lock_guard<std::mutex> lock(mu);
              for (int k = 0; k < n; ++k) {
                acked[seq + static_cast<uint64_t>(k)] = "dev-" + std::to_string(first + k);
              }
            }
            done.set_value(st.ok());
          });
          if (!done.get_future().get()) {
            return;  // the cut: not acknowledged
          }
        }
      });
    }
    // A forwarder: reads from its cursor and removes one batch in three of what it read
    // (removals are not synced); the rest builds a backlog that the cuts must not lose.
    threads.emplace_back([&] {
      uint64_t cursor = 0;
      for (int batch = 0; !stop.load(); ++batch) {
        Result<ReadBatchResult> r = buf->ReadBatch(kEu, cursor, 50, 1 << 20);
        if (!r.ok() || r->records.empty()) {
          std::this_thread::yield();
          continue;
        }
        cursor = r->next_cursor;
        if (batch % 3 == 0 && buf->Remove(kEu, r->records).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          for (const BufferedRecord& rec : r->records) {
            removed.insert(rec.seq);
          }
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 200));
    dropped_bytes += env_.Cut();
    stop = true;
    for (auto& t : threads) {
      t.join();
    }
    buf.reset();
    env_.Restore();
  }
  auto buf = Open(SyncMode::kAlways);
  ASSERT_NE(buf, nullptr);
  check(*buf, 8);
  // The check covered real volume (what the cuts dropped, unsynced removals mostly, varies).
  EXPECT_GT(acked.size(), 1000u);
  EXPECT_GT(checked, 1000u);
  std::printf("acknowledged %zu, removed %zu, checked %zu, dropped %llu bytes at 8 cuts\n",
              acked.size(), removed.size(), checked,
              static_cast<unsigned long long>(dropped_bytes));
}

TEST_F(BufferPowerCutTest, SyncIntervalLosesAtMostTheLastIntervalAndNeverReusesASequence) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kInterval = std::chrono::milliseconds(100);
  auto buf = Open(SyncMode::kInterval, kInterval.count());
  ASSERT_NE(buf, nullptr);
  // A steady stream of acknowledged appends for ten intervals, then the cut.
  struct Ack {
    uint64_t seq;
    int64_t id;
    Clock::time_point at;
  };
  std::vector<Ack> acks;
  int64_t id = 0;
  const auto until = Clock::now() + 10 * kInterval;
  while (Clock::now() < until) {
    Result<uint64_t> seq = AppendOne(*buf, id);
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    acks.push_back({*seq, id++, Clock::now()});
  }
  const uint64_t handed_out = buf->next_seq();
  const auto cut_at = Clock::now();
  const uint64_t dropped = env_.Cut();
  buf.reset();
  env_.Restore();
  EXPECT_GT(dropped, 0u) << "the cut should have caught the appends of the last interval";

  buf = Open(SyncMode::kInterval, kInterval.count());
  ASSERT_NE(buf, nullptr);
  std::map<uint64_t, std::string> all = ReadAll(*buf);
  size_t old_enough = 0;
  for (const Ack& a : acks) {
    // Acknowledged well over an interval before the cut (five: a loaded machine may delay the
    // sync thread): a periodic sync covered it.
    if (a.at < cut_at - 5 * kInterval) {
      auto it = all.find(a.seq);
      ASSERT_NE(it, all.end()) << "seq " << a.seq << " acknowledged "
                               << std::chrono::duration_cast<std::chrono::milliseconds>(
                                      cut_at - a.at).count()
                               << " ms before the cut was lost";
      EXPECT_EQ(it->second, "dev-" + std::to_string(a.id));
      ++old_enough;
    }
  }
  EXPECT_GT(old_enough, 100u);
  EXPECT_LT(all.size(), acks.size()) << "nothing of the last interval was lost: the cut tested nothing";
  EXPECT_EQ(buf->total_buffered_records(), all.size());
  // m/next_seq may have gone back with the window: the open jumps past anything it could hold.
  EXPECT_GT(buf->next_seq(), handed_out);
}

}  // namespace
}  // namespace sluice::gateway
