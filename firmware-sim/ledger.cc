#include "firmware-sim/ledger.h"

namespace sluice::sim {

std::vector<SeqRange> ToRanges(const std::vector<uint64_t>& sorted_seqs) {
  std::vector<SeqRange> out;
  for (uint64_t s : sorted_seqs) {
    if (!out.empty() && out.back().second + 1 == s) {
      out.back().second = s;
    } else {
      out.push_back({s, s});
    }
  }
  return out;
}

Ledger::Ledger(size_t devices) : stripes_(kStripes), outcomes_(devices) {}

void Ledger::RecordSent(int device, uint64_t seq) {
  std::lock_guard<std::mutex> lock(Stripe(device));
  auto& v = outcomes_[static_cast<size_t>(device)];
  if (v.size() < seq) v.resize(seq, Outcome::kPending);
}

void Ledger::Resolve(int device, uint64_t seq, Outcome outcome) {
  if (seq == 0) return;
  std::lock_guard<std::mutex> lock(Stripe(device));
  auto& v = outcomes_[static_cast<size_t>(device)];
  if (v.size() < seq) v.resize(seq, Outcome::kPending);
  v[seq - 1] = outcome;
}

DeviceOutcome Ledger::Snapshot(int device) const {
  DeviceOutcome d;
  std::vector<uint64_t> delivered;
  std::vector<uint64_t> failed;
  {
    std::lock_guard<std::mutex> lock(Stripe(device));
    const auto& v = outcomes_[static_cast<size_t>(device)];
    d.sent = v.size();
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == Outcome::kDelivered) delivered.push_back(i + 1);
      if (v[i] == Outcome::kFailed) failed.push_back(i + 1);
    }
  }
  d.delivered = delivered.size();
  d.failed = failed.size();
  d.delivered_seqs = ToRanges(delivered);
  d.failed_seqs = ToRanges(failed);
  return d;
}

}  // namespace sluice::sim
