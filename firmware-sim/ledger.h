// Ledger: what became of every event the simulator generated, per device and sequence number:
// pending (handed to a transport), delivered (HTTP 202, or MQTT publish completed) or failed.
// The manifest is built from it. Sequence numbers are dense per device, starting at 1.
// Thread-safety: thread-safe; the scheduler records sends while transport workers resolve them.
#pragma once

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace sluice::sim {

using SeqRange = std::pair<uint64_t, uint64_t>;  // inclusive [first, last]

// Collapses ascending, distinct sequence numbers into inclusive ranges: 1,2,3,5 -> [1,3],[5,5].
std::vector<SeqRange> ToRanges(const std::vector<uint64_t>& sorted_seqs);

enum class Outcome : uint8_t { kPending = 0, kDelivered = 1, kFailed = 2 };

struct DeviceOutcome {
  uint64_t sent = 0;  // events generated; seqs 1..sent
  uint64_t delivered = 0;
  uint64_t failed = 0;
  std::vector<SeqRange> delivered_seqs;
  std::vector<SeqRange> failed_seqs;
};

class Ledger {
 public:
  explicit Ledger(size_t devices);
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // Records that the device's next event (seq == previous + 1) was generated.
  void RecordSent(int device, uint64_t seq);
  // Resolves a generated event; later resolutions of the same seq overwrite earlier ones.
  void Resolve(int device, uint64_t seq, Outcome outcome);
  DeviceOutcome Snapshot(int device) const;

 private:
  static constexpr size_t kStripes = 64;
  std::mutex& Stripe(int device) const { return stripes_[static_cast<size_t>(device) % kStripes]; }
  mutable std::vector<std::mutex> stripes_;
  std::vector<std::vector<Outcome>> outcomes_;  // [device][seq - 1]
};

}  // namespace sluice::sim
