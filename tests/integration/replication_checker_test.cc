// A replicated region on a three-member etcd (issue 11), real processes: the Kafka/Jepsen-style
// checker (a producer against kills, pauses, power cuts and restarts of brokers and an etcd
// member) and an etcd member's death under produce. Split from replication_test.cc (same
// fixture, tests/integration/replicated_region.h).
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <thread>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "core/http.h"
#include "core/record_batch.h"
#include "tests/common/etcd.h"
#include "tests/common/test_env.h"
#include "tests/common/tcp_proxy.h"
#include "tests/integration/replicated_region.h"

namespace sluice {
namespace {

class ReplicationWithEtcdClusterTest : public ReplicationTest {
 protected:
  int EtcdMembers() const override { return 3; }
};

// The checker's brokers fsync every 200 ms (log.flush: interval), not at every append, so the
// power cut below usually finds written but unsynced bytes to take. Replicas report (and the
// leader counts) only what they made durable, so what the cut takes was never acknowledged.
// (Under log.flush: always, the shipped setting, a single producer leaves nothing unsynced.)
class ReplicationCheckerTest : public ReplicationWithEtcdClusterTest {
 protected:
  std::vector<std::string> ExtraSets() const override {
    return {"log.flush=interval", "log.flush_interval=200ms"};
  }
};

// A checker in the style of Kafka's replication system test and Jepsen's Kafka checker, on a
// three-member etcd: one producer sends batches (acks=all, an idempotent producer id, each batch
// resent until acknowledged, as a gateway does) to whichever broker leads, while in turn the
// leader is SIGKILLed and restarted, SIGSTOPped past its lease and resumed (a zombie), an etcd
// member is SIGKILLed, and the leader and a follower die together and are cut back to their last
// fsync (what a power cut leaves: SLUICE_TEST_SYNC_JOURNAL) before they restart.
// Afterwards: every acknowledged record is on every replica exactly once, in order, at one
// offset (byte-identical logs); leader epochs only increase along the log; a consumer reading
// every broker throughout never sees a record that is not at its final offset (one value per
// offset across all brokers and all reads) nor an offset go backwards.
// Breaks tried: answering acks=all without waiting for the high watermark fails it every time
// (2 of 2: acknowledged records missing, consumers read values not at their final offsets);
// dropping the follower's KIP-279 truncation fails it in most runs (2 of 3: an old leader's
// unreplicated tail stays, the logs differ); without the incarnation fencing of leader
// elections the power cut leaves one epoch led by two incarnations (the epoch count fails);
// the zombie test above fails every time without the step-down on a refused ISR swap. Serving
// reads past the high watermark went unnoticed here in 3 of 3 runs (with acks=all the records
// past it are almost never lost, so what is read there is what stays):
// AFetchPastALaggingHighWatermarkIsEmptyNotOutOfRange shows that invariant deterministically.
TEST_F(ReplicationCheckerTest, AckedRecordsSurviveKillsPausesPowerCutsAndRestarts) {
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acked_batches{0};
  std::atomic<int64_t> retries{0};
  constexpr int kPerBatch = 5;
  // The producer: one batch at a time, resent (same sequences) until a leader acknowledges it.
  std::thread producer([&] {
    std::map<std::string, std::unique_ptr<HttpClient>> clients;
    int li = -1;  // the leader it sends to, until a send fails
    int ask = 0;
    for (int64_t b = 0; !stop.load(); ++b) {
      for (int attempt = 0;; ++attempt) {
        const std::string batch = Batch(b * kPerBatch, kPerBatch, attempt);
        if (li < 0) {
          // A frozen broker answers nothing: ask each briefly, in turn.
          ask = (ask + 1) % kBrokers;
          const Leader now = LeaderOf("sensors", 0, ask, 300);
          li = now.id.empty() ? -1 : IndexOf(now.id);
        }
        if (li >= 0) {
          auto& c = clients[nodes_[li].url()];
          if (!c) {
            c = std::make_unique<HttpClient>(nodes_[li].url(), HttpClientOptions{3000, {}});
          }
          auto r = c->Send("POST", "/v1/topics/sensors/records", batch,
                           "application/vnd.kafka.record-batch.v2");
          if (r.ok() && r->status == 200) {
            break;
          }
          li = -1;
        }
        retries++;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      acked_batches++;
    }
  });
  // A consumer meanwhile: reads pages from every broker in turn (a frozen or dead one just does
  // not answer), every other read at the tail (where records not yet acknowledged are). Every
  // record any broker serves must be the one that ends up at its offset: its seq is the offset,
  // and its "try" (which send of its batch stored it) the one the final log holds there, so a
  // record read past the high watermark and then lost and resent differs.
  std::atomic<int64_t> pages{0};
  std::atomic<int64_t> misplaced{0};
  std::atomic<int64_t> max_read{-1};  // never past what ends up acknowledged
  std::mutex seen_mu;
  std::map<int64_t, int64_t> seen_try;  // offset -> the "try" read there
  std::thread consumer([&] {
    for (int64_t k = 0; !stop.load(); ++k) {
      const int i = static_cast<int>(k % kBrokers);
      const int64_t acked = acked_batches.load() * kPerBatch;
      const int64_t from = k % 2 == 1 ? acked : (k * 37) % std::max<int64_t>(1, acked);
      std::string body;
      if (testing::HttpGet(nodes_[i].port,
                           "/v1/topics/sensors/partitions/0/records?offset=" +
                               std::to_string(from) + "&max_records=200",
                           &body, 500) != 200) {
        continue;
      }
      rapidjson::Document d;
      d.Parse(body.c_str());
      if (d.HasParseError() || !d.HasMember("records")) {
        continue;
      }
      for (const auto& r : d["records"].GetArray()) {
        if (!r["payload"].IsObject() ||
            r["payload"]["seq"].GetInt64() != r["offset"].GetInt64()) {
          misplaced++;
          continue;
        }
        {
          std::lock_guard<std::mutex> lock(seen_mu);
          auto [it, fresh] =
              seen_try.emplace(r["offset"].GetInt64(), r["payload"]["try"].GetInt64());
          if (!fresh && it->second != r["payload"]["try"].GetInt64()) {
            misplaced++;  // two values read at one offset
          }
        }
        int64_t seen = max_read.load();
        while (seen < r["offset"].GetInt64() &&
               !max_read.compare_exchange_weak(seen, r["offset"].GetInt64())) {
        }
      }
      pages++;
    }
  });
  auto wait_batches = [&](int64_t more) {
    const int64_t target = acked_batches.load() + more;
    return WaitFor([&] { return acked_batches.load() >= target; }, 60000, 20);
  };
  auto leader_index = [&] {
    Leader now;
    for (int ask = 0; ask < kBrokers && now.id.empty(); ++ask) {
      if (nodes_[ask].proc->Running()) {
        now = LeaderOf("sensors", 0, ask);
      }
    }
    return now.id.empty() ? -1 : IndexOf(now.id);
  };
  auto wait_full_isr = [&] {
    return WaitFor([&] {
      for (int ask = 0; ask < kBrokers; ++ask) {
        if (nodes_[ask].proc->Running() && LeaderOf("sensors", 0, ask).isr.size() == 3u) {
          return true;
        }
      }
      return false;
    }, 60000, 100);
  };
  ASSERT_TRUE(wait_batches(20));
  int64_t cut_bytes = 0;
  for (int round = 0; round < 5; ++round) {
    int li = leader_index();
    ASSERT_GE(li, 0);
    if (round == 3) {
      etcd_->Kill(1);  // two of three members left: the region goes on
      ASSERT_TRUE(wait_batches(10)) << "no progress after an etcd member's death";
    } else if (round == 4) {
      // The leader and a follower lose power together: each keeps only what it fsynced.
      const int fi = (li + 1) % kBrokers;
      ASSERT_EQ(::kill(nodes_[li].proc->pid(), SIGKILL), 0);
      ASSERT_EQ(::kill(nodes_[fi].proc->pid(), SIGKILL), 0);
      nodes_[li].proc->Stop(9, 5000);
      nodes_[fi].proc->Stop(9, 5000);
      cut_bytes += CutToLastSync(li, "sensors", 0) + CutToLastSync(fi, "sensors", 0);
      ASSERT_TRUE(StartNode(li));
      ASSERT_TRUE(StartNode(fi));
      ASSERT_TRUE(wait_batches(10)) << "no progress after the power cut";
    } else if (round == 1) {
      // Paused past its lease, then resumed as a zombie.
      ASSERT_EQ(::kill(nodes_[li].proc->pid(), SIGSTOP), 0);
      ASSERT_TRUE(WaitFor([&] { int n = leader_index(); return n >= 0 && n != li; }, 30000, 50));
      ASSERT_TRUE(wait_batches(10)) << "no progress on the new leader";
      ASSERT_EQ(::kill(nodes_[li].proc->pid(), SIGCONT), 0);
    } else {
      nodes_[li].proc->Stop(9, 5000);
      ASSERT_TRUE(wait_batches(10)) << "no progress after the leader's death";
      ASSERT_TRUE(StartNode(li));
    }
    ASSERT_TRUE(wait_full_isr()) << "round " << round << ": the region did not heal";
    ASSERT_TRUE(wait_batches(10));
  }
  stop = true;
  producer.join();
  consumer.join();
  EXPECT_EQ(misplaced.load(), 0) << "a consumer read a record not at its final offset";
  EXPECT_GT(pages.load(), 0);
  const int64_t n = acked_batches.load() * kPerBatch;
  EXPECT_LT(max_read.load(), n) << "a consumer read past every acknowledged record (past the "
                                   "high watermark, or a record that was then cut)";
  std::cout << "checker: " << acked_batches.load() << " batches acknowledged, " << retries.load()
            << " attempts refused or lost, " << pages.load() << " pages read" << std::endl;
  ASSERT_NO_FATAL_FAILURE(ExpectReplicasHoldExactly(n));
  // Leader epochs never go back along the log (one acknowledging leader per epoch).
  const std::string log = LogBytes(0, "sensors", 0);
  int32_t last_epoch = -1;
  for (size_t pos = 0; pos + 17 <= log.size();) {
    auto be = [&](size_t at, int width) {
      uint64_t v = 0;
      for (int k = 0; k < width; ++k) {
        v = (v << 8) | static_cast<uint8_t>(log[at + k]);
      }
      return v;
    };
    const int32_t epoch = static_cast<int32_t>(be(pos + 12, 4));
    EXPECT_GE(epoch, last_epoch) << "leader epoch went back at byte " << pos;
    last_epoch = epoch;
    pos += 12 + be(pos + 8, 4);
  }
  // Four faults hit the leader, so four new epochs. Without the incarnation fencing
  // (leader_election.h) this failed: the leader restarted after the power cut while the
  // controller moved, and led epoch 3 again with its log cut back (one epoch, two incarnations).
  EXPECT_GE(last_epoch, 4) << "every leader change, restarts included, is a new epoch";
  // Every value a consumer read is the one the log ended with at that offset.
  int64_t differ = 0;
  for (int64_t offset = 0; offset < n;) {
    std::string body;
    ASSERT_EQ(testing::HttpGet(nodes_[0].port,
                               "/v1/topics/sensors/partitions/0/records?offset=" +
                                   std::to_string(offset) + "&max_records=1000",
                               &body, 10000),
              200);
    rapidjson::Document d;
    d.Parse(body.c_str());
    ASSERT_TRUE(d.IsObject() && d.HasMember("records") && !d["records"].Empty()) << body;
    for (const auto& r : d["records"].GetArray()) {
      auto it = seen_try.find(r["offset"].GetInt64());
      if (it != seen_try.end() && it->second != r["payload"]["try"].GetInt64()) {
        ++differ;
      }
    }
    offset = d["next_offset"].GetInt64();
  }
  EXPECT_EQ(differ, 0) << "a consumer read a value that the log does not hold at its offset "
                          "(read past the high watermark, then lost and resent)";
  std::cout << "checker: " << cut_bytes << " unsynced bytes cut by the power cut" << std::endl;
}

// The region's etcd is three members; one dies (SIGKILL) under produce, then the partition's
// leader dies too: the brokers move on to the live members and the region still fails over.
TEST_F(ReplicationWithEtcdClusterTest, AnEtcdMemberDiesAndTheRegionStillFailsOver) {
  const std::string topic = "sensors";
  Leader leader;
  ASSERT_NO_FATAL_FAILURE(CreateTopicAndWaitForLeader(&leader));
  const int li = IndexOf(leader.id);
  HttpClient to_leader(nodes_[li].url());
  std::string last;
  for (int64_t b = 0; b < 10; ++b) {
    if (b == 5) {
      etcd_->Kill(0);  // the first endpoint every broker asks
    }
    ASSERT_TRUE(ProduceOk(to_leader, Batch(b * 10, 10), &last)) << "batch " << b << ": " << last;
  }
  nodes_[li].proc->Stop(9, 5000);
  const int survivor = (li + 1) % kBrokers;
  Leader next;
  ASSERT_TRUE(WaitFor([&] {
    next = LeaderOf(topic, 0, survivor);
    return !next.id.empty() && next.id != leader.id;
  }, 30000, 50)) << "no failover with two of three etcd members";
  HttpClient to_new(nodes_[IndexOf(next.id)].url());
  for (int64_t b = 10; b < 15; ++b) {
    ASSERT_TRUE(ProduceOk(to_new, Batch(b * 10, 10), &last)) << "batch " << b << ": " << last;
  }
  std::vector<int64_t> got;
  ASSERT_TRUE(WaitFor([&] {
    got = Read(survivor, topic, 0);
    return got.size() == 150u;
  }, 30000)) << got.size();
  for (int64_t s = 0; s < 150; ++s) {
    ASSERT_EQ(got[static_cast<size_t>(s)], s);
  }
}

}  // namespace
}  // namespace sluice
