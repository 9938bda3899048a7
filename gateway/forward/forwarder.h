// Forwarder: drains one destination region's queue in the EventBuffer to that region's broker.
//
// It reads batches from its in-memory cursor (batch_max_records / batch_max_bytes; a partial
// batch waits up to `linger`), maps events to records (core ToRecord), encodes each as ONE Kafka
// RecordBatch v2 and sends it through the Uplink. Up to max_in_flight batches are in flight at
// once (a window, as Kafka's max.in.flight.requests.per.connection): each batch sent while the
// one before it is still unacknowledged says so (after_seq = that batch's last gateway_seq) and
// the broker stores it only after that one succeeded, or answers 409 (see
// cloud-broker/producers/producer_table.h "Pipelining").
//   2xx                          -> Remove the records (they are at the broker).
//   transport error, 5xx, 429,   -> once nothing else is in flight, the window is cut back to
//   and other 4xx (401/403/404..)   its oldest unacknowledged batch (the rest is re-read later),
//                                   which is retried after exponential backoff with jitter; the
//                                   cursor does not move (a misconfigured URL must not destroy
//                                   data).
//   409 out_of_order_sequence    -> the same cut, then the oldest is re-sent at once.
// The window is AIMD-limited (window_limit()): halved on a 409 (the broker had no room to hold a
// batch behind its predecessor), one batch after any other failure, one more per window of
// acknowledgements up to max_in_flight.
//   400/413/422/451 (permanent)  -> the record the broker names by "index" is dead-lettered and
//                                   the rest re-sent; without an index the whole batch is
//                                   dead-lettered ("d/<region>/..."), counted and logged with the
//                                   broker's reason. A 413 on a batch of several records halves
//                                   the batch first. The forwarder never wedges.
// producer_id = ProducerIdFor(gateway id); base_sequence = first gateway sequence & 0x7fffffff.
// Exactly-once: every record carries its gateway_seq header; the broker skips records of this
// producer it already stored (cloud-broker/producers), so re-sending a batch after a lost
// acknowledgement, a timeout or a gateway restart never duplicates it. Order: batches are sent in
// sequence order and the broker never stores one before the batch it follows, so records of a
// device reach the broker in sequence order.
// Fast drain: while backing off, Uplink::Probe() (GET /healthz) runs every probe_interval_ms;
// a successful probe ends the backoff at once (so a broker that comes back after a long outage
// is drained immediately, not after up to backoff_max).
//
// Threads: Start() runs Step() on its own thread, waking on a commit notification (Notify(),
// wired to EventBuffer::AddCommitListener), on a send's completion, or when linger/backoff ends.
// Tests call Step() directly with a ManualClock. Thread-safety: Step() must not run concurrently
// with itself (do not call it while Start()ed); Notify() and the accessors are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/backoff.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/forward/region_health.h"
#include "gateway/forward/uplink.h"

namespace sluice::gateway {

// FNV-1a 64-bit of the gateway id's bytes with the sign bit cleared (0 maps to 1): a stable,
// positive Kafka producer id per gateway.
int64_t ProducerIdFor(const GatewayId& gateway_id);

// 400/413/422/451: the broker will never take the batch as it is (forwarder_refusal.cc).
bool IsPermanentRefusal(int http_status);

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
  size_t max_in_flight = 1;         // batches sent and not yet answered
  // Idle, the thread waits for a commit (the buffer's commit listener) or an answer; this is
  // only the fallback against a lost notification. Tests raise it to show the wake-up itself.
  int64_t idle_poll_ms = 1000;
  uint64_t backoff_seed = std::random_device{}();
  // Where this forwarder reports its region up or down (see region_health.h); may be nullptr.
  RegionHealth* health = nullptr;
  // Residency failover (policy `failover: next_allowed`); empty: hold (records wait for this
  // region). Given a record's country, the region it may go to instead now that this one is
  // down (the most preferred allowed region that is up, never this one), or nullopt to keep it.
  std::function<std::optional<RegionId>(const CountryCode&)> failover_target;
  // How long this region must have been down before records move (residency.failover_after).
  int64_t failover_after_ms = 30000;
};

class Forwarder {
 public:
  // kSent: a batch was acknowledged in this step. kInFlight: waiting for answers only.
  enum class State { kIdle, kLinger, kSent, kInFlight, kRetry, kDeadLettered, kError };
  struct StepResult {
    State state = State::kIdle;
    int64_t wait_until_us = 0;  // kLinger/kRetry/kError (kInFlight: 0 or a linger end)
  };

  Forwarder(EventBuffer& buffer, Uplink& uplink, Clock& clock, ForwarderOptions options,
            MetricsRegistry* metrics = nullptr);
  ~Forwarder();  // Stop()

  // One round: take the answers that arrived, read and send what the window allows.
  StepResult Step();

  void Start();
  void RequestStop();  // tells the thread to stop, without waiting (stop several at once)
  void Stop();         // RequestStop, join, and wait (bounded) for the answers still in flight
  void Notify();  // new records were committed

  uint64_t cursor() const { return cursor_.load(); }
  uint64_t forwarded() const { return forwarded_.load(); }
  // Times the thread went idle (waiting for a commit or an answer); for tests.
  uint64_t idle_waits() const { return idle_waits_.load(); }
  // Commits that woke (notified) the thread; for tests.
  uint64_t commit_wakeups() const { return wake_->commit_wakeups.load(); }
  // The thread is waiting out a backoff (deaf to commits); for tests.
  bool waiting_out_backoff() const { return !wake_->wants_commits.load(); }
  uint64_t dead_lettered() const { return dead_lettered_.load(); }
  uint64_t failures() const { return failures_.load(); }
  uint64_t probe_cuts() const { return probe_cuts_.load(); }  // backoffs ended by a probe
  // Records moved to another allowed region while this one was down (failover_target).
  uint64_t failed_over() const { return failed_over_.load(); }
  size_t inflight_records() const { return inflight_count_.load(); }  // read, not yet removed
  // Batches it may have in flight now: max_in_flight, halved on a 409 out_of_order_sequence and
  // 1 after other failures, growing back by one per window of acknowledgements (AIMD).
  size_t window_limit() const { return window_limit_.load(); }

 private:
  // Shared with the commit listener and with send completions, which may outlive this object.
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool pending = false;
    bool stop = false;
    // False while backing off: commits cannot shorten a backoff, so they need not wake the
    // thread (a wake per commit cost two context switches and the committer's lock).
    std::atomic<bool> wants_commits{true};
    std::atomic<uint64_t> commit_wakeups{0};
    size_t outstanding = 0;                              // sends not yet answered
    std::map<uint64_t, Result<UplinkResponse>> answers;  // by Batch::id
  };
  enum class Phase { kReady, kSending, kAcked, kFailed };
  struct Batch {
    uint64_t id = 0;
    std::vector<BufferedRecord> records;
    std::string body;
    uint64_t next_cursor = 0;
    Phase phase = Phase::kReady;
    std::optional<Result<UplinkResponse>> answer;  // kFailed: why
  };

  void Run();
  void Encode(Batch& b);
  // Takes arrived answers: 2xx -> Remove + kAcked, else kFailed; pops acked batches at the front.
  // Returns the number of records acknowledged.
  size_t Harvest();
  // A failed batch once nothing is in flight: cut the window to it and decide what comes next.
  // Returns nullopt when it should be re-sent at once (409).
  std::optional<StepResult> HandleFailure(int64_t now_us);
  // Reads batches into the window; sets *linger_until_us when a partial batch lingers.
  std::optional<StepResult> Fill(int64_t now_us, int64_t* linger_until_us);
  void SendReady();
  void GrowWindow();
  void SetWindow(size_t n);
  bool AnyPhase(Phase p) const;
  void UpdateInflightCount();
  StepResult Retry(const std::string& reason, int64_t now_us);
  StepResult Permanent(const UplinkResponse& resp, int64_t now_us);  // forwarder_refusal.cc
  void CountFailure(const std::string& reason);
  // Backing off for failover_after_ms or more: moves the records this forwarder never sent
  // (after its window) to failover_target's regions (forwarder_failover.cc).
  void Failover(int64_t now_us);
  void ReportUp();

  EventBuffer& buffer_;
  Uplink& uplink_;
  Clock& clock_;
  ForwarderOptions options_;
  MetricsRegistry* metrics_;
  Backoff backoff_;
  int64_t producer_id_;
  std::atomic<uint64_t> idle_waits_{0};
  std::shared_ptr<Wake> wake_;
  std::thread thread_;

  // Step() state (one thread).
  std::deque<Batch> window_;  // in sequence order; front: oldest unacknowledged
  uint64_t read_cursor_ = 0;  // where the next batch is read
  std::atomic<size_t> window_limit_{1};  // see window_limit()
  size_t acks_since_growth_ = 0;
  uint64_t next_batch_id_ = 1;
  int64_t first_seen_us_ = -1;
  int64_t next_attempt_us_ = 0;  // the front batch's retry time (backoff)
  int64_t next_probe_us_ = 0;

  std::atomic<uint64_t> cursor_{0};
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> dead_lettered_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> probe_cuts_{0};
  std::atomic<uint64_t> failed_over_{0};
  uint64_t failover_cursor_ = 0;  // records below were looked at (and kept) by Failover
  uint64_t failover_epoch_ = 0;   // RegionHealth::epoch() when failover_cursor_ was valid
  std::atomic<size_t> inflight_count_{0};
  Counter* forwarded_metric_ = nullptr;
  Counter* dead_metric_ = nullptr;
  Counter* probe_metric_ = nullptr;
  Gauge* window_metric_ = nullptr;
};

}  // namespace sluice::gateway
