// Forwarder drain behaviour (issue 4): a successful /healthz probe ends a long backoff at once,
// a failed one does not; with probing off the whole backoff is waited out. In memory: LevelDB
// memenv, a scripted uplink, a manual clock.
#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <deque>

#include "core/record_batch.h"
#include "gateway/forward/forwarder.h"

namespace sluice::gateway {
namespace {

// Fails every send until `up` is set; the probe answers according to `up` as well.
class OutageUplink : public Uplink {
 public:
  Result<UplinkResponse> SendBatch(const std::string&, const std::string& batch) override {
    ++sends;
    if (!up) {
      return Status::Unavailable("connection refused");
    }
    Result<RecordBatch> b = DecodeBatch(batch);
    EXPECT_TRUE(b.ok());
    delivered += b.ok() ? b->records.size() : 0;
    return UplinkResponse{200, "{}"};
  }
  Status Probe() override {
    ++probes;
    return up ? Status::Ok() : Status::Unavailable("connection refused");
  }
  bool up = false;
  int sends = 0;
  int probes = 0;
  size_t delivered = 0;
};

class ForwarderDrainTest : public ::testing::Test {
 protected:
  ForwarderDrainTest() : env_(leveldb::NewMemEnv(leveldb::Env::Default())) {
    BufferOptions o;
    o.path = "/buf";
    o.env = env_.get();
    buffer_ = std::move(EventBuffer::Open(o).value());
    std::vector<PendingEvent> v;
    for (int i = 0; i < 10; ++i) {
      SensorEvent e;
      e.device_id = DeviceId("dev-" + std::to_string(i % 3));
      e.sensor = "temp";
      e.country = CountryCode("DE");
      e.ts_ms = 1'700'000'000'000 + i;
      e.gateway_id = GatewayId("gw-de-1");
      e.source = "http";
      e.payload = "{}";
      v.push_back(PendingEvent{region_, std::move(e)});
    }
    EXPECT_TRUE(buffer_->Append(std::move(v)).get().ok());
  }

  std::unique_ptr<Forwarder> Make(int64_t probe_interval_ms) {
    ForwarderOptions o;
    o.region = region_;
    o.gateway_id = GatewayId("gw-de-1");
    o.batch_max_records = 100;
    o.linger_ms = 0;
    o.backoff_initial_ms = 60000;  // a long backoff: only a probe can end it early
    o.backoff_max_ms = 60000;
    o.backoff_seed = 1;
    o.probe_interval_ms = probe_interval_ms;
    return std::make_unique<Forwarder>(*buffer_, uplink_, clock_, o, &metrics_);
  }

  std::unique_ptr<leveldb::Env> env_;
  std::unique_ptr<EventBuffer> buffer_;
  OutageUplink uplink_;
  ManualClock clock_;
  MetricsRegistry metrics_;
  RegionId region_{"eu-central"};
};

TEST_F(ForwarderDrainTest, SuccessfulProbeEndsTheBackoffAtOnce) {
  auto f = Make(250);
  Forwarder::StepResult r = f->Step();
  ASSERT_EQ(r.state, Forwarder::State::kRetry);
  // The forwarder wakes at the next probe, long before the backoff ends.
  EXPECT_EQ(r.wait_until_us, clock_.MonotonicUs() + 250'000);

  clock_.AdvanceMs(250);
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);  // probe fails: keep backing off
  EXPECT_EQ(uplink_.probes, 1);
  EXPECT_EQ(uplink_.sends, 1);
  clock_.AdvanceMs(100);
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);  // no probe before its interval
  EXPECT_EQ(uplink_.probes, 1);

  uplink_.up = true;
  clock_.AdvanceMs(150);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);  // probe ok: sent 500 ms in, not 60 s
  EXPECT_EQ(uplink_.probes, 2);
  EXPECT_EQ(uplink_.delivered, 10u);
  EXPECT_EQ(f->probe_cuts(), 1u);
  EXPECT_EQ(buffer_->buffered_records(region_), 0u);
}

TEST_F(ForwarderDrainTest, WithoutProbingTheWholeBackoffIsWaited) {
  auto f = Make(0);
  ASSERT_EQ(f->Step().state, Forwarder::State::kRetry);
  uplink_.up = true;
  clock_.AdvanceMs(29000);  // the first delay is 30..60 s (jitter)
  EXPECT_EQ(f->Step().state, Forwarder::State::kRetry);
  EXPECT_EQ(uplink_.probes, 0);
  EXPECT_EQ(uplink_.sends, 1);
  clock_.AdvanceMs(31001);
  EXPECT_EQ(f->Step().state, Forwarder::State::kSent);
  EXPECT_EQ(f->probe_cuts(), 0u);
}

}  // namespace
}  // namespace sluice::gateway
