// Residency failover in the forwarder (issue 13, policy `failover: next_allowed`): while its
// region is down for failover_after_ms, the records it never sent move to the region
// failover_target names (new sequences, one synced buffer write); the batch it already sent
// stays; records with nowhere to go stay; under hold (no target) nothing moves.
#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include "gateway/forward/forwarder.h"
#include "tests/gateway/fake_uplink.h"
#include "tests/gateway/sample_events.h"

namespace sluice::gateway {
namespace {

class ForwarderFailoverTest : public ::testing::Test {
 protected:
  ForwarderFailoverTest() : env_(leveldb::NewMemEnv(leveldb::Env::Default())) { Open(); }

  void Open() {
    BufferOptions o;
    o.path = "/buf";
    o.env = env_.get();
    buffer_ = std::move(EventBuffer::Open(o).value());
  }

  // One event per country, in order, into us-east's queue (as the router puts them); its
  // payload {"n":<k>} counts the events added.
  void Add(const std::vector<std::string>& countries) {
    std::vector<PendingEvent> v = SampleEvents(us_, static_cast<int>(countries.size()), added_);
    for (size_t i = 0; i < countries.size(); ++i) {
      v[i].event.country = CountryCode(countries[i]);
      v[i].event.payload = "{\"n\":" + std::to_string(added_++) + "}";
    }
    ASSERT_TRUE(buffer_->Append(std::move(v)).get().ok());
  }

  // CA may go to eu-central; US only to us-east. `next_allowed` false: hold.
  std::unique_ptr<Forwarder> Make(bool next_allowed) {
    ForwarderOptions o;
    o.region = us_;
    o.gateway_id = GatewayId("gw-1");
    o.batch_max_records = 2;
    o.linger_ms = 0;
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = 200;
    o.probe_interval_ms = 0;
    o.backoff_seed = 1;
    o.health = &health_;
    o.failover_after_ms = 1000;
    if (next_allowed) {
      o.failover_target = [this](const CountryCode& c) -> std::optional<RegionId> {
        if (c.value() == "CA" && health_.IsUp(eu_)) {
          return eu_;
        }
        return std::nullopt;
      };
    }
    return std::make_unique<Forwarder>(*buffer_, uplink_, clock_, o, &metrics_);
  }

  // Steps across `ms` of manual time in 50 ms ticks (sends, backoffs, failover checks).
  void Run(Forwarder& f, int64_t ms) {
    for (int64_t t = 0; t < ms; t += 50) {
      f.Step();
      clock_.AdvanceMs(50);
    }
  }

  std::vector<std::string> Countries(const RegionId& region) {
    std::vector<std::string> out;
    Result<ReadBatchResult> rb = buffer_->ReadBatch(region, 0, 1000, 1 << 20);
    EXPECT_TRUE(rb.ok());
    for (const BufferedRecord& r : rb->records) {
      out.push_back(r.event.country.value() + "/" + r.event.payload);
    }
    return out;
  }

  std::unique_ptr<leveldb::Env> env_;
  std::unique_ptr<EventBuffer> buffer_;
  FakeUplink uplink_;
  ManualClock clock_;
  MetricsRegistry metrics_;
  RegionHealth health_;
  RegionId us_{"us-east"};
  RegionId eu_{"eu-central"};
  int added_ = 0;
};

TEST_F(ForwarderFailoverTest, NextAllowedMovesNeverSentRecordsOfAllowedCountriesOnly) {
  Add({"CA", "CA", "CA", "US", "US", "CA", "CA", "CA"});  // seqs 0..7
  uplink_.down = true;
  auto f = Make(/*next_allowed=*/true);
  Run(*f, 900);  // down, but not for failover_after yet: nothing moves
  EXPECT_GE(health_.DownSinceUs(us_), 0);
  EXPECT_EQ(buffer_->buffered_records(us_), 8u);
  EXPECT_EQ(buffer_->buffered_records(eu_), 0u);

  Run(*f, 300);
  // The front batch (seqs 0, 1: sent, perhaps stored) stays; the US records stay (allowed only
  // in us-east); the other CA records are in eu-central's queue with new sequences.
  EXPECT_EQ(Countries(us_), (std::vector<std::string>{"CA/{\"n\":0}", "CA/{\"n\":1}",
                                                       "US/{\"n\":3}", "US/{\"n\":4}"}));
  EXPECT_EQ(Countries(eu_), (std::vector<std::string>{"CA/{\"n\":2}", "CA/{\"n\":5}",
                                                       "CA/{\"n\":6}", "CA/{\"n\":7}"}));
  EXPECT_EQ(buffer_->ListKeys('q', eu_), (std::vector<uint64_t>{8, 9, 10, 11}));
  EXPECT_EQ(f->failed_over(), 4u);
  EXPECT_EQ(buffer_->buffered_records(us_), 4u);
  EXPECT_EQ(buffer_->buffered_records(eu_), 4u);
  EXPECT_NE(metrics_.RenderPrometheus().find(
                "sluice_gateway_failover_moved_total{from=\"us-east\",to=\"eu-central\"} 4"),
            std::string::npos)
      << metrics_.RenderPrometheus();

  // Records arriving while us-east is still down follow the same rule.
  Add({"CA", "US"});
  Run(*f, 300);
  EXPECT_EQ(buffer_->buffered_records(eu_), 5u);
  EXPECT_EQ(buffer_->buffered_records(us_), 5u);

  // us-east returns: it gets exactly what stayed, in order; nothing that moved.
  uplink_.down = false;
  const size_t sent_before = uplink_.batches.size();
  Run(*f, 500);
  EXPECT_EQ(buffer_->buffered_records(us_), 0u);
  EXPECT_LT(health_.DownSinceUs(us_), 0);
  std::vector<std::string> delivered;
  for (size_t i = sent_before; i < uplink_.batches.size(); ++i) {
    for (const Record& r : uplink_.batches[i].records) {
      delivered.push_back(*r.FindHeader(kHeaderCountry) + "/" + r.value.value_or(""));
    }
  }
  EXPECT_EQ(delivered, (std::vector<std::string>{"CA/{\"n\":0}", "CA/{\"n\":1}", "US/{\"n\":3}",
                                                 "US/{\"n\":4}", "US/{\"n\":9}"}));

  // The move survives a restart: each record in exactly one queue.
  f.reset();
  buffer_.reset();
  Open();
  EXPECT_EQ(buffer_->buffered_records(us_), 0u);
  EXPECT_EQ(buffer_->buffered_records(eu_), 5u);
}

TEST_F(ForwarderFailoverTest, NothingMovesWhileTheOnlyOtherAllowedRegionIsDownToo) {
  Add({"CA", "CA", "CA", "CA"});
  health_.MarkDown(eu_, clock_.MonotonicUs());
  uplink_.down = true;
  auto f = Make(/*next_allowed=*/true);
  Run(*f, 2000);
  EXPECT_EQ(buffer_->buffered_records(us_), 4u);
  EXPECT_EQ(buffer_->buffered_records(eu_), 0u);
  health_.MarkUp(eu_);  // eu-central answers again: what was kept may move now
  Run(*f, 300);
  EXPECT_EQ(buffer_->buffered_records(us_), 2u);  // the front batch
  EXPECT_EQ(buffer_->buffered_records(eu_), 2u);
}

TEST_F(ForwarderFailoverTest, HoldKeepsEveryRecordForItsPreferredRegion) {
  Add({"CA", "CA", "CA", "US"});
  uplink_.down = true;
  auto f = Make(/*next_allowed=*/false);
  Run(*f, 5000);
  EXPECT_EQ(buffer_->buffered_records(us_), 4u);
  EXPECT_EQ(buffer_->buffered_records(eu_), 0u);
  EXPECT_EQ(f->failed_over(), 0u);
  uplink_.down = false;
  Run(*f, 1000);
  EXPECT_EQ(buffer_->buffered_records(us_), 0u);
  EXPECT_EQ(f->forwarded(), 4u);
}

}  // namespace
}  // namespace sluice::gateway
