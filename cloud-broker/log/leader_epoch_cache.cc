#include "cloud-broker/log/leader_epoch_cache.h"

#include <algorithm>

#include "cloud-broker/log/checkpoint_file.h"

namespace sluice::broker {

LeaderEpochCache::LeaderEpochCache(std::string path, FileOps* ops)
    : path_(std::move(path)), ops_(ops) {}

bool LeaderEpochCache::Valid(const std::vector<EpochEntry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const EpochEntry& e = entries[i];
    if (e.epoch < 0 || e.start_offset < 0) {
      return false;
    }
    if (i > 0 && (e.epoch <= entries[i - 1].epoch ||
                  e.start_offset <= entries[i - 1].start_offset)) {
      return false;
    }
  }
  return true;
}

Status LeaderEpochCache::Load() {
  entries_.clear();
  Result<std::vector<CheckpointEntry>> read = ReadCheckpointFile(path_, 2, *ops_);
  if (!read.ok()) {
    return read.status();
  }
  std::vector<EpochEntry> entries;
  for (const CheckpointEntry& e : *read) {
    if (e[0] < 0 || e[0] > INT32_MAX) {
      return Status::Corruption(path_ + ": epoch " + std::to_string(e[0]) + " out of range");
    }
    entries.push_back({static_cast<int32_t>(e[0]), e[1]});
  }
  if (!Valid(entries)) {
    return Status::Corruption(path_ + ": epochs or start offsets not strictly increasing");
  }
  entries_ = std::move(entries);
  return Status::Ok();
}

Status LeaderEpochCache::Reset(std::vector<EpochEntry> entries) {
  if (!Valid(entries)) {
    return Status::InvalidArgument("leader epochs: entries not strictly increasing");
  }
  entries_ = std::move(entries);
  return Persist();
}

Status LeaderEpochCache::Persist() const {
  if (path_.empty()) {
    return Status::Ok();
  }
  std::vector<CheckpointEntry> out;
  out.reserve(entries_.size());
  for (const EpochEntry& e : entries_) {
    out.push_back({e.epoch, e.start_offset});
  }
  return WriteCheckpointFile(path_, out, *ops_);
}

Status LeaderEpochCache::Assign(int32_t epoch, int64_t start_offset) {
  if (epoch < 0 || epoch <= latest_epoch()) {
    return Status::Ok();
  }
  while (!entries_.empty() && entries_.back().start_offset >= start_offset) {
    entries_.pop_back();
  }
  entries_.push_back({epoch, start_offset});
  return Persist();
}

EpochEndOffset LeaderEpochCache::EndOffsetFor(int32_t epoch, int64_t log_end_offset) const {
  // First entry with a higher epoch; the one before it (if any) is the floor.
  auto higher = std::upper_bound(entries_.begin(), entries_.end(), epoch,
                                 [](int32_t e, const EpochEntry& x) { return e < x.epoch; });
  if (higher == entries_.begin()) {
    return {};  // empty, or below the first epoch
  }
  const EpochEntry& floor = *std::prev(higher);
  if (higher == entries_.end()) {
    return {floor.epoch, log_end_offset};
  }
  return {floor.epoch, higher->start_offset};
}

Status LeaderEpochCache::TruncateFromEnd(int64_t end_offset) {
  const size_t before = entries_.size();
  while (!entries_.empty() && entries_.back().start_offset >= end_offset) {
    entries_.pop_back();
  }
  return entries_.size() == before ? Status::Ok() : Persist();
}

Status LeaderEpochCache::TruncateFromStart(int64_t start_offset) {
  // The last entry starting at or below start_offset stays (moved up); those before it go.
  auto keep = std::upper_bound(entries_.begin(), entries_.end(), start_offset,
                               [](int64_t o, const EpochEntry& x) { return o < x.start_offset; });
  if (keep == entries_.begin()) {
    return Status::Ok();  // every entry starts above start_offset
  }
  --keep;
  if (keep == entries_.begin() && keep->start_offset == start_offset) {
    return Status::Ok();
  }
  keep->start_offset = start_offset;
  entries_.erase(entries_.begin(), keep);
  return Persist();
}

}  // namespace sluice::broker
