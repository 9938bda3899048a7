#include "gateway/forward/forwarder.h"

#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <deque>

#include "core/record_batch.h"
#include "tests/common/test_env.h"
#include "tests/gateway/fake_uplink.h"

namespace sluice::gateway {
namespace {

// Holds every batch sent until the test answers it: several in flight, answered in any order.
class AsyncUplink : public Uplink {
 public:
  struct Sent {
    int64_t first_seq = -1;
    int64_t after_seq = -1;
    UplinkDone done;
    bool answered = false;
  };
  Result<UplinkResponse> SendBatch(const std::string&, const std::string&) override {
    ADD_FAILURE() << "the forwarder must send through SendBatchAsync";
    return Status::Unavailable("unused");
  }
  void SendBatchAsync(const std::string&, std::string batch, int64_t after_seq,
                      UplinkDone done) override {
    Result<RecordBatch> b = DecodeBatch(batch);
    EXPECT_TRUE(b.ok() && !b->records.empty());
    const std::string* seq = b->records.front().FindHeader(kHeaderGatewaySeq);
    sent.push_back(Sent{seq ? std::stoll(*seq) : -1, after_seq, std::move(done)});
  }
  void Answer(size_t i, int status) {
    sent.at(i).answered = true;
    sent.at(i).done(UplinkResponse{status, "{}"});
  }
  void Lose(size_t i) {
    sent.at(i).answered = true;
    sent.at(i).done(Status::Unavailable("answer lost"));
  }
  void LoseUnanswered() {
    for (size_t i = 0; i < sent.size(); ++i) {
      if (!sent[i].answered) {
        Lose(i);
      }
    }
  }
  std::vector<Sent> sent;
};

class ForwarderTest : public ::testing::Test {
 protected:
  ForwarderTest() : env_(leveldb::NewMemEnv(leveldb::Env::Default())) {
    BufferOptions o;
    o.path = "/buf";
    o.env = env_.get();
    buffer_ = std::move(EventBuffer::Open(o).value());
  }

  void Add(int n, size_t payload_bytes = 10) {
    std::vector<PendingEvent> v;
    for (int i = 0; i < n; ++i) {
      SensorEvent e;
      e.device_id = DeviceId("dev-" + std::to_string(added_ % 3));
      e.sensor = "temp";
      e.country = CountryCode("DE");
      e.ts_ms = 1'700'000'000'000 + added_;
      e.ingest_ms = e.ts_ms;
      e.gateway_id = GatewayId("gw-de-1");
      e.source = "http";
      e.payload = std::string(payload_bytes, 'p');
      ++added_;
      v.push_back(PendingEvent{region_, std::move(e)});
    }
    ASSERT_TRUE(buffer_->Append(std::move(v)).get().ok());
  }

  // Owned by the fixture: TearDown answers what is still in flight before destroying it (its
  // Stop waits for every answer).
  Forwarder* Make(size_t max_records, size_t max_bytes = 1 << 20, int64_t linger_ms = 0,
                  size_t max_in_flight = 1) {
    ForwarderOptions o;
    o.max_in_flight = max_in_flight;
    o.region = region_;
    o.gateway_id = GatewayId("gw-de-1");
    o.topic = "sensors";
    o.batch_max_records = max_records;
    o.batch_max_bytes = max_bytes;
    o.linger_ms = linger_ms;
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = 1000;
    o.backoff_seed = 1;
    Uplink& uplink = max_in_flight > 1 ? static_cast<Uplink&>(async_) : uplink_;
    made_.push_back(std::make_unique<Forwarder>(*buffer_, uplink, clock_, o, &metrics_));
    return made_.back().get();
  }

  void TearDown() override {
    async_.LoseUnanswered();
    made_.clear();
  }

  std::unique_ptr<leveldb::Env> env_;
  std::unique_ptr<EventBuffer> buffer_;
  FakeUplink uplink_;
  AsyncUplink async_;  // used when max_in_flight > 1
  std::vector<std::unique_ptr<Forwarder>> made_;
  ManualClock clock_;
  MetricsRegistry metrics_;
  RegionId region_{"eu-central"};
  int added_ = 0;
};

TEST_F(ForwarderTest, BatchesByCountAndRemovesAfter2xx) {
  Add(5);
  auto f = Make(2);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(f->Step().state, Forwarder::State::kIdle);
  ASSERT_EQ(uplink_.batches.size(), 3u);
  EXPECT_EQ(uplink_.batches[0].records.size(), 2u);
  EXPECT_EQ(uplink_.batches[2].records.size(), 1u);
  EXPECT_EQ(uplink_.topics[0], "sensors");
  // Identity and mapping: producer id from the gateway id, base sequence = first gateway seq.
  EXPECT_EQ(uplink_.batches[1].producer_id, ProducerIdFor(GatewayId("gw-de-1")));
  EXPECT_GT(uplink_.batches[1].producer_id, 0);
  EXPECT_EQ(uplink_.batches[1].base_sequence, 2);
  const Record& rec = uplink_.batches[1].records[0];
  ASSERT_TRUE(rec.key.has_value());
  EXPECT_EQ(*rec.key, "dev-2");
  ASSERT_NE(rec.FindHeader(kHeaderGatewaySeq), nullptr);
  EXPECT_EQ(*rec.FindHeader(kHeaderGatewaySeq), "2");
  EXPECT_EQ(*rec.FindHeader(kHeaderCountry), "DE");
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
  EXPECT_EQ(f->forwarded(), 5u);
  EXPECT_EQ(f->cursor(), 5u);
}

TEST_F(ForwarderTest, BatchesByBytes) {
  Add(4, 1000);
  auto f = Make(100, 2500);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  ASSERT_EQ(uplink_.batches.size(), 1u);
  EXPECT_EQ(uplink_.batches[0].records.size(), 2u);
  EXPECT_EQ(buffer_->buffered_records(region_), 2u);
}

TEST_F(ForwarderTest, LingerWaitsForAPartialBatch) {
  Add(2);
  auto f = Make(10, 1 << 20, /*linger_ms=*/20);
  Forwarder::StepResult r = f->Step();
  EXPECT_EQ(r.state, Forwarder::State::kLinger);
  EXPECT_EQ(r.wait_until_us, clock_.MonotonicUs() + 20'000);
  EXPECT_TRUE(uplink_.batches.empty());
  clock_.AdvanceMs(20);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(uplink_.batches.at(0).records.size(), 2u);
}

TEST_F(ForwarderTest, RetryOn503KeepsTheSameBatchAndDoesNotRemove) {
  Add(3);
  auto f = Make(10);
  uplink_.script.push_back(UplinkResponse{503, "{\"error\":\"unavailable\"}"});
  uplink_.script.push_back(Status::Unavailable("connection refused"));
  Forwarder::StepResult r = f->Step();
  EXPECT_EQ(r.state, Forwarder::State::kRetry);
  EXPECT_GE(r.wait_until_us, clock_.MonotonicUs() + 50'000);   // backoff: [50, 100] ms
  EXPECT_LE(r.wait_until_us, clock_.MonotonicUs() + 100'000);
  EXPECT_EQ(buffer_->buffered_records(region_), 3u);
  Add(2);  // arrives while retrying: not added to the in-flight batch
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);  // backoff not over: nothing sent
  EXPECT_EQ(uplink_.batches.size(), 1u);
  clock_.AdvanceMs(100);
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);  // transport error
  EXPECT_EQ(uplink_.batches.size(), 2u);
  clock_.AdvanceMs(1000);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  ASSERT_EQ(uplink_.batches.size(), 3u);
  for (const RecordBatch& b : uplink_.batches) {
    ASSERT_EQ(b.records.size(), 3u);  // the same batch each time
    EXPECT_EQ(b.base_sequence, 0);
    EXPECT_EQ(b.records, uplink_.batches[0].records);
  }
  EXPECT_EQ(buffer_->buffered_records(region_), 2u);
  EXPECT_EQ(f->failures(), 2u);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(uplink_.batches.back().base_sequence, 3);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
}

TEST_F(ForwarderTest, Permanent451DeadLettersAndContinues) {
  Add(3);
  auto f = Make(3);
  uplink_.script.push_back(UplinkResponse{451, "{\"error\":\"residency\",\"reason\":\"no\"}"});
  EXPECT_EQ(f->Step().state, Forwarder::State::kDeadLettered);
  EXPECT_EQ(f->dead_lettered(), 3u);
  EXPECT_EQ(buffer_->ListKeys('d', region_), (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
  Add(1);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(uplink_.batches.back().base_sequence, 3);
  EXPECT_NE(metrics_.RenderPrometheus().find("sluice_gateway_dead_lettered_total"),
            std::string::npos);
}

TEST_F(ForwarderTest, RefusalNamingAnIndexDeadLettersOnlyThatRecord) {
  Add(4);
  auto f = Make(4);
  uplink_.script.push_back(
      UplinkResponse{400, "{\"error\":\"invalid_record\",\"index\":1,\"reason\":\"bad\"}"});
  EXPECT_EQ(f->Step().state, Forwarder::State::kDeadLettered);
  EXPECT_EQ(buffer_->ListKeys('d', region_), (std::vector<uint64_t>{1}));
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  ASSERT_EQ(uplink_.batches.size(), 2u);
  EXPECT_EQ(uplink_.batches[1].records.size(), 3u);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
}

// The refusal body was parsed recursively: an answer nested a million deep (a broken or hostile
// broker, a proxy) overflowed the forwarder thread's stack.
TEST_F(ForwarderTest, DeeplyNestedRefusalBodyIsHandled) {
  Add(2);
  auto f = Make(2);
  uplink_.script.push_back(
      UplinkResponse{400, std::string(1'000'000, '[') + std::string(1'000'000, ']')});
  EXPECT_EQ(f->Step().state, Forwarder::State::kDeadLettered);
  EXPECT_EQ(f->dead_lettered(), 2u);
}

TEST_F(ForwarderTest, Status413HalvesTheBatch) {
  Add(4);
  auto f = Make(4);
  uplink_.script.push_back(UplinkResponse{413, "{\"error\":\"too_large\"}"});
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  ASSERT_EQ(uplink_.batches.size(), 3u);
  EXPECT_EQ(uplink_.batches[1].records.size(), 2u);
  EXPECT_EQ(uplink_.batches[2].base_sequence, 2);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
  EXPECT_TRUE(buffer_->ListKeys('d', region_).empty());
}

TEST_F(ForwarderTest, ThreadWakesOnCommit) {
  SystemClock& clock = SystemClock::Instance();
  ForwarderOptions o;
  o.region = region_;
  o.gateway_id = GatewayId("gw");
  o.linger_ms = 0;
  // The idle fallback poll (1 s by default) would forward the records too: pushed far beyond
  // the wait below, only the commit's wake-up can forward them in time.
  o.idle_poll_ms = 600000;
  Forwarder f(*buffer_, uplink_, clock, o, nullptr);
  f.Start();
  // The thread's first round finds nothing and goes idle (its wait is what the commit wakes).
  ASSERT_TRUE(testing::WaitFor([&] { return f.idle_waits() >= 1; }, 10000));
  Add(3);
  EXPECT_TRUE(testing::WaitFor([&] { return buffer_->buffered_records(region_) == 0; }, 30000))
      << "the commit did not wake the idle forwarder";
  f.Stop();
  EXPECT_EQ(f.forwarded(), 3u);
}

// A forwarder is woken by commits of its own region only, and not while it backs off (a commit
// cannot shorten a backoff): each needless wake cost the ingest path two context switches.
TEST_F(ForwarderTest, CommitsWakeOnlyTheirRegionsForwarderAndNotOneBackingOff) {
  SystemClock& clock = SystemClock::Instance();
  ForwarderOptions o;
  o.region = RegionId("us-east");
  o.gateway_id = GatewayId("gw");
  o.idle_poll_ms = 600000;
  Forwarder other(*buffer_, uplink_, clock, o, nullptr);
  FakeUplink failing;
  for (int i = 0; i < 10; ++i) {
    failing.script.push_back(Status::Unavailable("broker down"));
  }
  o.region = region_;
  o.backoff_initial_ms = 600000;
  o.backoff_max_ms = 600000;
  o.probe_interval_ms = 0;
  Forwarder backing_off(*buffer_, failing, clock, o, nullptr);
  other.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return other.idle_waits() >= 1; }, 10000));
  Add(1);  // the first send fails: a 10-minute backoff
  backing_off.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return backing_off.waiting_out_backoff(); }, 10000));
  EXPECT_EQ(backing_off.failures(), 1u);
  EXPECT_EQ(other.commit_wakeups(), 0u) << "woken by another region's commit";
  const uint64_t before = backing_off.commit_wakeups();
  for (int i = 0; i < 20; ++i) {
    Add(1);  // 20 commits of region_
  }
  // Listeners run on the (one) commit thread right after a commit's callbacks: once a later
  // commit of another region answered, every earlier listener has run.
  std::vector<PendingEvent> ap;
  ap.push_back(PendingEvent{RegionId("ap-south"), SensorEvent{}});
  ap.back().event.device_id = DeviceId("d");
  ap.back().event.country = CountryCode("SG");
  ASSERT_TRUE(buffer_->Append(std::move(ap)).get().ok());
  EXPECT_EQ(other.commit_wakeups(), 0u) << "woken by another region's commits";
  EXPECT_EQ(backing_off.commit_wakeups(), before) << "woken by commits while backing off";
  EXPECT_EQ(buffer_->buffered_records(region_), 21u);
  other.Stop();
  backing_off.Stop();
}

// --- several batches in flight (forward.max_in_flight) ---

TEST_F(ForwarderTest, SendsUpToMaxInFlightEachNamingTheUnacknowledgedBatchItFollows) {
  Add(10);
  auto f = Make(2, 1 << 20, 0, 3);
  EXPECT_EQ(f->Step().state, Forwarder::State::kInFlight);
  ASSERT_EQ(async_.sent.size(), 3u);  // the window is full: no fourth before an answer
  EXPECT_EQ(async_.sent[0].after_seq, -1);
  EXPECT_EQ(async_.sent[1].after_seq, async_.sent[0].first_seq + 1);
  EXPECT_EQ(async_.sent[2].after_seq, async_.sent[1].first_seq + 1);
  async_.Answer(1, 200);  // out of order: removed, but the front still holds the cursor
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(f->cursor(), 0u);
  EXPECT_EQ(buffer_->buffered_records(region_), 8u);
  EXPECT_EQ(async_.sent.size(), 3u);
  async_.Answer(0, 200);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  ASSERT_EQ(async_.sent.size(), 5u);  // two more fill the window behind the one in flight
  EXPECT_EQ(async_.sent[3].after_seq, async_.sent[2].first_seq + 1);
  async_.Answer(2, 200);
  async_.Answer(3, 200);
  async_.Answer(4, 200);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(f->Step().state, Forwarder::State::kIdle);
  EXPECT_EQ(f->forwarded(), 10u);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
}

TEST_F(ForwarderTest, AFailedBatchIsResentBeforeTheBatchesThatFollowedIt) {
  Add(6);
  auto f = Make(2, 1 << 20, 0, 3);
  f->Step();
  ASSERT_EQ(async_.sent.size(), 3u);
  async_.Answer(0, 503);
  EXPECT_EQ(f->Step().state, Forwarder::State::kInFlight);  // settles the window first
  async_.Answer(1, 409);  // the broker refused the followers: their predecessor failed
  async_.Answer(2, 409);
  Forwarder::StepResult r = f->Step();
  EXPECT_EQ(r.state, Forwarder::State::kRetry);
  EXPECT_EQ(f->inflight_records(), 2u);  // cut back to the failed batch
  clock_.AdvanceMs(2000);
  f->Step();
  ASSERT_EQ(async_.sent.size(), 4u);  // the failed one alone (one at a time after a failure)
  EXPECT_EQ(async_.sent[3].first_seq, async_.sent[0].first_seq);
  EXPECT_EQ(async_.sent[3].after_seq, -1);
  async_.Answer(3, 200);
  f->Step();
  ASSERT_EQ(async_.sent.size(), 6u);  // then its followers, in order, the window growing again
  EXPECT_EQ(async_.sent[4].first_seq, async_.sent[1].first_seq);
  EXPECT_EQ(async_.sent[4].after_seq, -1);
  EXPECT_EQ(async_.sent[5].first_seq, async_.sent[2].first_seq);
  EXPECT_EQ(async_.sent[5].after_seq, async_.sent[4].first_seq + 1);
  async_.Answer(4, 200);
  async_.Answer(5, 200);
  f->Step();
  EXPECT_EQ(f->forwarded(), 6u);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
}

TEST_F(ForwarderTest, LostAnswerOfTheFrontBatchWhileItsFollowersAreAcknowledged) {
  // The broker stored the front batch but its answer was lost; the followers were stored after
  // it. Only the front batch is sent again (the broker answers it as a duplicate).
  Add(6);
  auto f = Make(2, 1 << 20, 0, 3);
  f->Step();
  ASSERT_EQ(async_.sent.size(), 3u);
  async_.Lose(0);
  async_.Answer(1, 200);
  async_.Answer(2, 200);
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);
  EXPECT_EQ(buffer_->buffered_records(region_), 2u);
  clock_.AdvanceMs(2000);
  f->Step();
  ASSERT_EQ(async_.sent.size(), 4u);
  EXPECT_EQ(async_.sent[3].first_seq, async_.sent[0].first_seq);
  async_.Answer(3, 200);
  f->Step();
  EXPECT_EQ(f->Step().state, Forwarder::State::kIdle);
  EXPECT_EQ(async_.sent.size(), 4u);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
}


TEST_F(ForwarderTest, OutOfOrderRefusalsHalveTheWindowWhichGrowsBackWithAcknowledgements) {
  Add(40);
  auto f = Make(2, 1 << 20, 0, 4);
  f->Step();
  ASSERT_EQ(async_.sent.size(), 4u);
  async_.Answer(0, 200);
  for (size_t i = 1; i < 4; ++i) {
    async_.Answer(i, 409);  // the broker could not hold them: its waiting slots were taken
  }
  f->Step();
  EXPECT_EQ(f->window_limit(), 2u);
  EXPECT_NE(metrics_.RenderPrometheus().find(
                "sluice_gateway_forward_window{region=\"eu-central\"} 2"),
            std::string::npos)
      << metrics_.RenderPrometheus();
  f->Step();  // re-sends: no more than the window allows
  ASSERT_EQ(async_.sent.size(), 6u);
  EXPECT_EQ(async_.sent[4].first_seq, async_.sent[1].first_seq);
  EXPECT_EQ(async_.sent[4].after_seq, -1);
  EXPECT_EQ(async_.sent[5].after_seq, async_.sent[4].first_seq + 1);
  // Acknowledge everything sent from now on: the window grows back to 4, one batch at a time.
  size_t answered = 4;
  for (int round = 0; round < 20 && f->forwarded() < 40; ++round) {
    for (; answered < async_.sent.size(); ++answered) {
      async_.Answer(answered, 200);
    }
    f->Step();
  }
  EXPECT_EQ(f->forwarded(), 40u);
  EXPECT_EQ(f->window_limit(), 4u);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
}

TEST_F(ForwarderTest, ATransportFailureSendsOneBatchAtATimeUntilTheBrokerAnswers) {
  Add(8);
  auto f = Make(2, 1 << 20, 0, 4);
  f->Step();
  ASSERT_EQ(async_.sent.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    async_.Lose(i);
  }
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);
  EXPECT_EQ(f->window_limit(), 1u);
  clock_.AdvanceMs(2000);
  f->Step();
  EXPECT_EQ(async_.sent.size(), 5u);  // one probe batch, not four
}

}  // namespace
}  // namespace sluice::gateway
