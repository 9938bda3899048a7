// Forwarder: drains one destination region's queue in the EventBuffer to that region's broker.
//
// It reads a batch from its in-memory cursor (batch_max_records / batch_max_bytes; a partial
// batch waits up to `linger`), maps events to records (core ToRecord), encodes ONE Kafka
// RecordBatch v2 and sends it through the Uplink. One batch is in flight at a time, which keeps
// per-device order.
//   2xx                          -> Remove the records, advance the cursor.
//   transport error, 5xx, 429,   -> retry the SAME batch after exponential backoff with jitter;
//   and other 4xx (401/403/404..)   the cursor does not move (a misconfigured URL must not
//                                   destroy data).
//   400/413/422/451 (permanent)  -> the record the broker names by "index" is dead-lettered and
//                                   the rest re-sent; without an index the whole batch is
//                                   dead-lettered ("d/<region>/..."), counted and logged with the
//                                   broker's reason. A 413 on a batch of several records halves
//                                   the batch first. The forwarder never wedges.
// producer_id = ProducerIdFor(gateway id); base_sequence = first gateway sequence & 0x7fffffff.
// Exactly-once: every record carries its gateway_seq header; the broker skips records of this
// producer it already stored (cloud-broker/producers), so re-sending a batch after a lost
// acknowledgement, a timeout or a gateway restart never duplicates it. Order: one batch in
// flight per region, so records of a device reach the broker in sequence order.
// Fast drain: while backing off, Uplink::Probe() (GET /healthz) runs every probe_interval_ms;
// a successful probe ends the backoff at once (so a broker that comes back after a long outage
// is drained immediately, not after up to backoff_max).
//
// Threads: Start() runs Step() on its own thread, waking on a commit notification (Notify(),
// wired to EventBuffer::AddCommitListener) or when linger/backoff ends. Tests call Step()
// directly with a ManualClock. Thread-safety: Step() must not run concurrently with itself (do
// not call it while Start()ed); Notify() and the accessors are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/forward/uplink.h"

namespace sluice::gateway {

// FNV-1a 64-bit of the gateway id's bytes with the sign bit cleared (0 maps to 1): a stable,
// positive Kafka producer id per gateway.
int64_t ProducerIdFor(const GatewayId& gateway_id);

struct ForwarderOptions {
  RegionId region;
  GatewayId gateway_id;
  std::string topic = "sensors";
  size_t batch_max_records = 1000;
  size_t batch_max_bytes = 1 << 20;
  int64_t linger_ms = 20;
  int64_t backoff_initial_ms = 100;
  int64_t backoff_max_ms = 30000;
  int64_t probe_interval_ms = 250;  // 0: never probe (wait out the whole backoff)
  uint64_t backoff_seed = std::random_device{}();
};

class Forwarder {
 public:
  enum class State { kIdle, kLinger, kSent, kRetry, kDeadLettered, kError };
  struct StepResult {
    State state = State::kIdle;
    int64_t wait_until_us = 0;  // kLinger/kRetry/kError: Clock::MonotonicUs() to wait for
  };

  Forwarder(EventBuffer& buffer, Uplink& uplink, Clock& clock, ForwarderOptions options,
            MetricsRegistry* metrics = nullptr);
  ~Forwarder();  // Stop()

  // One attempt: read/linger, or send the in-flight batch once.
  StepResult Step();

  void Start();
  void Stop();
  void Notify();  // new records were committed

  uint64_t cursor() const { return cursor_.load(); }
  uint64_t forwarded() const { return forwarded_.load(); }
  uint64_t dead_lettered() const { return dead_lettered_.load(); }
  uint64_t failures() const { return failures_.load(); }
  uint64_t probe_cuts() const { return probe_cuts_.load(); }  // backoffs ended by a probe
  size_t inflight_records() const { return inflight_count_.load(); }

 private:
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool pending = false;
    bool stop = false;
  };

  void Run();
  void Encode();
  StepResult Retry(const std::string& reason, int64_t now_us);
  StepResult Permanent(const UplinkResponse& resp, int64_t now_us);
  void FinishBatch();
  void CountFailure(const std::string& reason);

  EventBuffer& buffer_;
  Uplink& uplink_;
  Clock& clock_;
  ForwarderOptions options_;
  MetricsRegistry* metrics_;
  Backoff backoff_;
  int64_t producer_id_;
  std::shared_ptr<Wake> wake_;
  std::thread thread_;

  // Step() state (one thread).
  std::vector<BufferedRecord> inflight_;
  std::string body_;
  uint64_t inflight_next_cursor_ = 0;
  int64_t first_seen_us_ = -1;
  int64_t next_attempt_us_ = 0;
  int64_t next_probe_us_ = 0;

  std::atomic<uint64_t> cursor_{0};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> dead_lettered_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> probe_cuts_{0};
  std::atomic<size_t> inflight_count_{0};
  Counter* forwarded_metric_ = nullptr;
  Counter* dead_metric_ = nullptr;
  Counter* probe_metric_ = nullptr;
};

}  // namespace sluice::gateway
