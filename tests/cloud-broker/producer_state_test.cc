// Exactly-once produce (issue 4): the broker remembers, per idempotent producer and partition,
// the highest gateway_seq it stored; a retried batch is answered with its original offsets and
// appends nothing; a retry after a partial failure stores only what is missing; the state is
// rebuilt from the log after a restart; the producer table is bounded (LRU eviction).
// In-process Broker on a free port, real files in a temp dir.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "cloud-broker/log/file_ops.h"
#include "cloud-broker/server/broker.h"
#include "core/http.h"
#include "core/partitioner.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

constexpr const char* kBatchType = "application/vnd.kafka.record-batch.v2";

// A gateway-shaped record with gateway sequence `seq`.
Record Rec(int64_t seq) {
  const char* countries[] = {"DE", "FR", "AT"};
  Record r = testing::MakeRecord("dev-" + std::to_string(seq % 7), countries[seq % 3],
                                 1'700'000'000'000 + seq, "{\"seq\":" + std::to_string(seq) + "}");
  for (RecordHeader& h : r.headers) {
    if (h.key == kHeaderGatewaySeq) {
      h.value = std::to_string(seq);
    }
  }
  return r;
}

std::vector<Record> Seqs(int64_t from, int64_t to) {  // [from, to)
  std::vector<Record> v;
  for (int64_t s = from; s < to; ++s) {
    v.push_back(Rec(s));
  }
  return v;
}

struct Ack {
  int status = 0;
  std::string body;
  uint64_t duplicates = 0;
  std::map<int, std::pair<int64_t, int64_t>> parts;  // partition -> (base, last)
};

class ProducerStateTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start(int64_t max_ids = 100) {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE"), CountryCode("FR"), CountryCode("AT")};
    o.http_port = sluice::testing::FreePort();
    o.default_partitions = 3;
    o.segment_bytes = 4096;  // several segments: the rebuild walks them all
    o.max_producer_ids = max_ids;
    o.file_ops = &ops_;
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    client_ = std::make_unique<HttpClient>("http://127.0.0.1:" + std::to_string(broker_->port()));
  }
  void Restart(int64_t max_ids = 100) {
    client_.reset();
    broker_.reset();
    Start(max_ids);
  }

  // after: the Sluice-After-Seq header ("" = none).
  Ack Post(const std::vector<Record>& recs, int64_t producer_id, const std::string& after = "") {
    Ack a;
    std::map<std::string, std::string> headers;
    if (!after.empty()) {
      headers["Sluice-After-Seq"] = after;
    }
    auto r = client_->Send("POST", "/v1/topics/sensors/records",
                           testing::EncodeRecords(recs, producer_id), kBatchType, headers);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) {
      return a;
    }
    a.status = r->status;
    a.body = r->body;
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    EXPECT_FALSE(d.HasParseError()) << r->body;
    if (a.status == 200 && !d.HasParseError()) {
      a.duplicates = d["duplicates"].GetUint64();
      for (const auto& p : d["partitions"].GetArray()) {
        a.parts[p["partition"].GetInt()] = {p["base_offset"].GetInt64(),
                                            p["last_offset"].GetInt64()};
      }
    }
    return a;
  }

  int64_t Stored() {
    int64_t total = 0;
    for (const Topic* t : broker_->store().Topics()) {
      for (int p = 0; p < t->partition_count(); ++p) {
        total += t->partition(p)->next_offset();
      }
    }
    return total;
  }

  // Every stored gateway_seq, counted.
  std::map<int64_t, int> StoredSeqs() {
    std::map<int64_t, int> seen;
    for (const Topic* t : broker_->store().Topics()) {
      for (int p = 0; p < t->partition_count(); ++p) {
        auto rr = t->partition(p)->Read(0, 100000, 64 << 20);
        EXPECT_TRUE(rr.ok());
        int64_t last = -1;
        for (const LogRecord& lr : rr->records) {
          int64_t seq = GatewaySeqOf(lr.record);
          EXPECT_GT(seq, last) << "partition " << p << " out of order";
          last = seq;
          seen[seq] += 1;
        }
      }
    }
    return seen;
  }

  sluice::testing::TempDir dir_;
  FaultInjectingFileOps ops_;  // disk-full injection for the partial-failure test
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(ProducerStateTest, RetriedBatchGetsTheOriginalOffsetsAndAppendsNothing) {
  Ack first = Post(Seqs(0, 30), 7);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.duplicates, 0u);
  ASSERT_GE(first.parts.size(), 2u);  // split across partitions
  ASSERT_EQ(Stored(), 30);

  Ack retry = Post(Seqs(0, 30), 7);  // the acknowledgement was lost: same batch again
  ASSERT_EQ(retry.status, 200);
  EXPECT_EQ(retry.duplicates, 30u);
  EXPECT_EQ(retry.parts, first.parts);
  EXPECT_EQ(Stored(), 30);
  EXPECT_EQ(broker_->producers().duplicates(), 30u);
}

TEST_F(ProducerStateTest, RetryAfterAPartialAppendStoresOnlyWhatIsMissing) {
  // The first attempt stored partition P's records, then failed on the others: replay that
  // state by producing P's share alone, then retry the whole batch.
  std::vector<Record> all = Seqs(0, 30);
  const int32_t p = PartitionForKey(*all[0].key, 3);
  std::vector<Record> share;
  for (const Record& r : all) {
    if (PartitionForKey(*r.key, 3) == p) {
      share.push_back(r);
    }
  }
  Ack partial = Post(share, 7);
  ASSERT_EQ(partial.status, 200);
  Ack retry = Post(all, 7);
  ASSERT_EQ(retry.status, 200);
  EXPECT_EQ(retry.duplicates, share.size());
  EXPECT_EQ(retry.parts.at(p), partial.parts.at(p));  // that partition: its original offsets
  std::map<int64_t, int> seen = StoredSeqs();
  ASSERT_EQ(seen.size(), 30u);
  for (const auto& [seq, n] : seen) {
    EXPECT_EQ(n, 1) << "gateway_seq " << seq;
  }
  // A later batch overlapping the stored ones (a re-read after a gateway restart) adds only
  // the new records.
  Ack overlap = Post(Seqs(20, 40), 7);
  ASSERT_EQ(overlap.status, 200);
  EXPECT_EQ(overlap.duplicates, 10u);
  EXPECT_EQ(Stored(), 40);
}

TEST_F(ProducerStateTest, RetryAfterARealPartialDiskFullFailureIsExactlyOnce) {
  // The disk fills while the request's partitions are appended: some get their batch, the
  // others fail and the request is refused (507). The retry must store exactly what is missing.
  ASSERT_EQ(Post(Seqs(0, 1), 7).status, 200);  // the topic and its files exist
  const int64_t before = Stored();
  ops_.SetWriteBudget(2500);  // about one partition's batch of ~10 records
  auto r = client_->Send("POST", "/v1/topics/sensors/records",
                         testing::EncodeRecords(Seqs(1, 31), 7), kBatchType);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->status == 507 || r->status == 503) << r->status << " " << r->body;
  const int64_t partial = Stored() - before;
  ASSERT_GT(partial, 0) << "no partition was appended: the failure was not partial";
  ASSERT_LT(partial, 30);
  ops_.SetWriteBudget(-1);
  Ack retry = Post(Seqs(1, 31), 7);
  ASSERT_EQ(retry.status, 200);
  EXPECT_EQ(retry.duplicates, static_cast<uint64_t>(partial));
  std::map<int64_t, int> seen = StoredSeqs();
  EXPECT_EQ(seen.size(), 31u);
  for (int64_t seq = 0; seq < 31; ++seq) {
    EXPECT_EQ(seen[seq], 1) << "gateway_seq " << seq;
  }
}

TEST_F(ProducerStateTest, OtherProducersAndBatchesWithoutProducerIdAreNotDeduplicated) {
  ASSERT_EQ(Post(Seqs(0, 10), 7).status, 200);
  Ack other = Post(Seqs(0, 10), 8);
  ASSERT_EQ(other.status, 200);
  EXPECT_EQ(other.duplicates, 0u);
  EXPECT_EQ(Post(Seqs(0, 10), -1).duplicates, 0u);
  EXPECT_EQ(Stored(), 30);
}

// How the broker comes back: from the snapshot of its clean stop, or from its log when the
// snapshot is missing (a crash) or corrupt.
enum class Comeback { kSnapshot, kNoSnapshot, kCorruptSnapshot };

class ProducerStateRestartTest : public ProducerStateTest,
                                 public ::testing::WithParamInterface<Comeback> {};

TEST_P(ProducerStateRestartTest, StateSurvivesARestart) {
  Ack first = Post(Seqs(0, 50), 7);  // 4 KiB segments: spans several segment files
  ASSERT_EQ(first.status, 200);
  Ack second = Post(Seqs(50, 100), 7);
  ASSERT_EQ(second.status, 200);
  client_.reset();
  broker_.reset();  // a clean stop writes the snapshot
  const std::string snapshot = dir_.path() + "/producers.snapshot";
  ASSERT_TRUE(std::filesystem::exists(snapshot));
  if (GetParam() == Comeback::kNoSnapshot) {
    std::filesystem::remove(snapshot);
  } else if (GetParam() == Comeback::kCorruptSnapshot) {
    std::fstream f(snapshot, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x5a');
  }
  Start();
  EXPECT_FALSE(std::filesystem::exists(snapshot));  // used at most once
  EXPECT_EQ(broker_->producers().size(), 1u);
  EXPECT_EQ(Stored(), 100);
  Ack retry = Post(Seqs(50, 100), 7);
  ASSERT_EQ(retry.status, 200);
  EXPECT_EQ(retry.duplicates, 50u);
  EXPECT_EQ(retry.parts, second.parts);  // the original offsets
  EXPECT_EQ(Stored(), 100);
  ASSERT_EQ(Post(Seqs(100, 110), 7).status, 200);
  EXPECT_EQ(Stored(), 110);
}

INSTANTIATE_TEST_SUITE_P(Comebacks, ProducerStateRestartTest,
                         ::testing::Values(Comeback::kSnapshot, Comeback::kNoSnapshot,
                                           Comeback::kCorruptSnapshot));

TEST_F(ProducerStateTest, ProducerTableIsBoundedWithLruEviction) {
  Restart(/*max_ids=*/2);
  ASSERT_EQ(Post(Seqs(0, 5), 1).status, 200);
  ASSERT_EQ(Post(Seqs(0, 5), 2).status, 200);
  ASSERT_EQ(Post(Seqs(5, 6), 1).status, 200);  // 1 is now the most recently used
  ASSERT_EQ(Post(Seqs(0, 5), 3).status, 200);  // evicts 2
  EXPECT_EQ(broker_->producers().size(), 2u);
  EXPECT_EQ(broker_->producers().evictions(), 1u);
  EXPECT_NE(broker_->metrics().RenderPrometheus().find(
                "sluice_broker_producer_evictions_total 1"),
            std::string::npos);
  EXPECT_EQ(Post(Seqs(0, 6), 1).duplicates, 6u);  // producer 1 kept its state
}


// --- pipelining: Sluice-After-Seq (several batches of one producer in flight) ---

TEST_F(ProducerStateTest, PipelinedBatchIsRefusedWhileTheBatchItFollowsIsNotStored) {
  // Batch [0,30) was sent but never arrived (or failed): the batch after it must not be stored,
  // or the retry of [0,30) would be skipped as "already stored" and devices reordered. Nothing
  // of this producer is running, so it is refused at once rather than holding a thread.
  Ack b = Post(Seqs(30, 60), 7, "29");
  EXPECT_EQ(b.status, 409) << b.body;
  EXPECT_NE(b.body.find("out_of_order_sequence"), std::string::npos) << b.body;
  EXPECT_NE(b.body.find("Sluice-After-Seq"), std::string::npos) << b.body;
  EXPECT_EQ(Stored(), 0);
  ASSERT_EQ(Post(Seqs(0, 30), 7).status, 200);
  ASSERT_EQ(Post(Seqs(30, 60), 7, "29").status, 200);  // its predecessor is stored now
  std::map<int64_t, int> seen = StoredSeqs();
  ASSERT_EQ(seen.size(), 60u);
  for (const auto& [seq, n] : seen) {
    EXPECT_EQ(n, 1) << "seq " << seq;
  }
}

// Posts on its own connection from another thread (a request in flight beside others).
class AsyncPost {
 public:
  AsyncPost(int port, std::vector<Record> recs, const std::string& after) {
    thread_ = std::thread([this, port, recs = std::move(recs), after] {
      HttpClient c("http://127.0.0.1:" + std::to_string(port));
      std::map<std::string, std::string> h;
      if (!after.empty()) {
        h["Sluice-After-Seq"] = after;
      }
      auto r = c.Send("POST", "/v1/topics/sensors/records", testing::EncodeRecords(recs, 7),
                      kBatchType, h);
      status_ = r.ok() ? r->status : -1;
    });
  }
  ~AsyncPost() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  int Wait() {
    thread_.join();
    return status_;
  }

 private:
  std::thread thread_;
  int status_ = 0;
};

TEST_F(ProducerStateTest, PipelinedBatchWaitsForTheRunningBatchItFollowsAndIsStoredAfterIt) {
  ops_.HoldSyncs(true);  // the first batch stays in its append (fsync) until released
  AsyncPost first(broker_->port(), Seqs(0, 30), "");
  EXPECT_TRUE(sluice::testing::WaitFor([&] { return ops_.held_syncs() > 0; }, 5000));
  AsyncPost second(broker_->port(), Seqs(30, 60), "29");
  // Both running: the second is parked behind the first (on its lock or waiting for its mark).
  EXPECT_TRUE(sluice::testing::WaitFor([&] { return broker_->producers().running(7) == 2; },
                                        5000));
  ops_.HoldSyncs(false);
  EXPECT_EQ(first.Wait(), 200);
  EXPECT_EQ(second.Wait(), 200);
  std::map<int64_t, int> seen = StoredSeqs();  // checks per-partition gateway_seq order
  EXPECT_EQ(seen.size(), 60u);
}

TEST_F(ProducerStateTest, WaitingPipelinedBatchesDoNotHoldTheHttpThreads) {
  // One batch held in its fsync and four pipelined batches behind it: more than the broker's 4
  // HTTP threads could hold. They wait on the pipeline pool (producers.max_waiting), so all five
  // arrive, the HTTP threads still answer, and all are stored in order once the disk moves.
  ops_.HoldSyncs(true);
  AsyncPost first(broker_->port(), Seqs(0, 30), "");
  EXPECT_TRUE(sluice::testing::WaitFor([&] { return ops_.held_syncs() > 0; }, 5000));
  std::vector<std::unique_ptr<AsyncPost>> next;
  for (int i = 1; i <= 4; ++i) {
    next.push_back(std::make_unique<AsyncPost>(broker_->port(), Seqs(30 * i, 30 * (i + 1)),
                                               std::to_string(30 * i - 1)));
  }
  EXPECT_TRUE(sluice::testing::WaitFor([&] { return broker_->producers().running(7) == 5; },
                                        10000))
      << "running " << broker_->producers().running(7);
  HttpClientOptions quick;
  quick.timeout_ms = 5000;
  HttpClient other("http://127.0.0.1:" + std::to_string(broker_->port()), quick);
  auto health = other.Get("/healthz");
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(health->status, 200);
  ops_.HoldSyncs(false);
  EXPECT_EQ(first.Wait(), 200);
  for (auto& p : next) {
    EXPECT_EQ(p->Wait(), 200);
  }
  std::map<int64_t, int> seen = StoredSeqs();  // checks per-partition gateway_seq order
  EXPECT_EQ(seen.size(), 150u);
}

TEST_F(ProducerStateTest, PipelinedBatchFailsWhenTheBatchItFollowsFailsAndNothingIsDuplicated) {
  ASSERT_EQ(Post(Seqs(0, 10), 7).status, 200);
  ops_.HoldSyncs(true);
  ops_.FailSyncs(true);  // the first batch's append fails once released: 503, nothing acked
  AsyncPost first(broker_->port(), Seqs(10, 20), "");
  EXPECT_TRUE(sluice::testing::WaitFor([&] { return ops_.held_syncs() > 0; }, 5000));
  AsyncPost second(broker_->port(), Seqs(20, 30), "19");
  EXPECT_TRUE(sluice::testing::WaitFor([&] { return broker_->producers().running(7) == 2; },
                                        5000));
  ops_.HoldSyncs(false);
  EXPECT_EQ(first.Wait(), 503);
  EXPECT_EQ(second.Wait(), 409);  // never stored ahead of the batch it follows
  ops_.FailSyncs(false);
  // After a failed fsync the partition takes no appends until a restart recovers it from what
  // is on disk (whether the failed batch's bytes made it or not, the retry stores it once).
  EXPECT_EQ(Post(Seqs(10, 20), 7).status, 503);
  Restart();
  ASSERT_EQ(Post(Seqs(10, 20), 7).status, 200);  // the producer re-sends in order
  ASSERT_EQ(Post(Seqs(20, 30), 7, "19").status, 200);
  std::map<int64_t, int> seen = StoredSeqs();
  EXPECT_EQ(seen.size(), 30u);
  for (const auto& [seq, n] : seen) {
    EXPECT_EQ(n, 1) << "seq " << seq;
  }
}

TEST_F(ProducerStateTest, MalformedAfterSeqHeaderIsRefusedWithTheField) {
  for (const std::string h : {"abc", "-1", "12x", "99999999999999999999"}) {
    Ack a = Post(Seqs(0, 3), 7, h);
    EXPECT_EQ(a.status, 400) << h;
    EXPECT_NE(a.body.find("Sluice-After-Seq"), std::string::npos) << a.body;
  }
  Ack no_producer = Post(Seqs(0, 3), -1, "5");
  EXPECT_EQ(no_producer.status, 400);
  EXPECT_EQ(Stored(), 0);
}

}  // namespace
}  // namespace sluice::broker
