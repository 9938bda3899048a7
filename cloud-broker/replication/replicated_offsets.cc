#include "cloud-broker/replication/replicated_offsets.h"

#include <algorithm>

#include "cloud-broker/groups/offset_store.h"
#include "cloud-broker/replication/broker_registry.h"
#include "cloud-broker/replication/topic_admin.h"
#include "core/crc32c.h"
#include "core/logging.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "group-offsets";
constexpr size_t kLoadReadBytes = 1 << 20;
constexpr size_t kSnapshotGroupsPerBatch = 1000;
constexpr int64_t kMaintainEveryMs = 1000;

std::string Tp(int32_t p) { return std::string(kOffsetsTopic) + "-" + std::to_string(p); }

}  // namespace

ReplicatedOffsets::ReplicatedOffsets(ReplicatedOffsetsOptions options, ReplicaManager& replicas,
                                     EtcdClient& etcd, TopicStore& store)
    : options_(std::move(options)), replicas_(replicas), etcd_(etcd), store_(store) {
  for (int32_t p = 0; p < options_.partitions; ++p) {
    slots_.push_back(std::make_unique<Slot>());
  }
}

int32_t ReplicatedOffsets::PartitionOf(const GroupId& group) const {
  return static_cast<int32_t>(crc32c::Value(group.value()) %
                              static_cast<uint32_t>(options_.partitions));
}

Status ReplicatedOffsets::EnsureTopic() {
  Result<TopicAssignment> created = CreateTopic(etcd_, *options_.residency, kOffsetsTopic,
                                                options_.partitions, options_.replication_factor);
  if (created.ok() || created.status().code() == StatusCode::kFailedPrecondition) {
    return Status::Ok();  // created now, or by another broker
  }
  if (created.status().code() == StatusCode::kInvalidArgument) {
    // Fewer brokers registered than the factor: wait for them rather than create a topic
    // with fewer replicas than asked for, for good.
    return Status::Unavailable("coordinator_not_available: cannot create " +
                               std::string(kOffsetsTopic) + " with replication factor " +
                               std::to_string(options_.replication_factor) + " yet (" +
                               created.status().message() + ")");
  }
  return created.status();
}

Result<CoordinatorInfo> ReplicatedOffsets::Locate(const GroupId& group) {
  const int32_t p = PartitionOf(group);
  Result<int32_t> epoch = replicas_.CheckLeader(kOffsetsTopic, p, /*acks_all=*/false);
  if (epoch.ok()) {
    return CoordinatorInfo{};
  }
  if (epoch.status().code() != StatusCode::kFailedPrecondition) {
    return epoch.status();
  }
  if (replicas_.role(kOffsetsTopic, p) == ReplicaRole::kLeader) {
    return Status::Unavailable("coordinator_not_available: broker " + options_.broker_id +
                               " is becoming the leader of " + Tp(p) + "; retry");
  }
  ReplicaManager::RegionView view = replicas_.View();
  if (view.topics.count(kOffsetsTopic) == 0) {
    SLUICE_RETURN_IF_ERROR(EnsureTopic());
    return Status::Unavailable("coordinator_not_available: " + std::string(kOffsetsTopic) +
                               " was just created; retry");
  }
  auto state = view.partitions.find({kOffsetsTopic, p});
  if (state == view.partitions.end() || state->second.leader.empty()) {
    return Status::Unavailable("coordinator_not_available: " + Tp(p) + " has no leader now");
  }
  auto url = view.brokers.find(state->second.leader);
  if (url == view.brokers.end()) {
    return Status::Unavailable("coordinator_not_available: the leader of " + Tp(p) + ", " +
                               state->second.leader + ", is not registered now");
  }
  if (state->second.leader == options_.broker_id) {
    // etcd names this broker but its state thread has not taken the role yet.
    return Status::Unavailable("coordinator_not_available: broker " + options_.broker_id +
                               " is about to lead " + Tp(p) + "; retry");
  }
  return CoordinatorInfo{false, state->second.leader, url->second};
}

Result<PartitionLog*> ReplicatedOffsets::LeadLocked(int32_t p, Slot& slot, bool to_write,
                                                    int32_t* epoch) {
  Result<int32_t> e = replicas_.CheckLeader(kOffsetsTopic, p, /*acks_all=*/to_write);
  if (!e.ok()) {
    return e.status();
  }
  Topic* topic = store_.Find(TopicName(kOffsetsTopic));
  if (topic == nullptr || p >= topic->partition_count()) {
    return Status::Unavailable("coordinator_not_available: " + Tp(p) + " has no local log");
  }
  PartitionLog* log = topic->partition(p);
  if (slot.loaded_epoch != *e) {
    Status loaded = LoadLocked(p, *log, slot);
    if (!loaded.ok()) {
      slot.loaded_epoch = -1;
      return Status::Unavailable("coordinator_not_available: loading " + Tp(p) + ": " +
                                 loaded.message());
    }
    slot.loaded_epoch = *e;
    slot.commits_since_snapshot = 0;
    slot.last_snapshot_ms = 0;  // write one soon: the log's oldest records may age out
  }
  *epoch = *e;
  return log;
}

Status ReplicatedOffsets::LoadLocked(int32_t p, PartitionLog& log, Slot& slot) {
  slot.groups.clear();
  int64_t from = log.start_offset();
  int64_t records = 0;
  int64_t skipped = 0;
  for (;;) {
    Result<LogBatches> read = log.ReadBatches(from, kLoadReadBytes);
    if (!read.ok()) {
      return read.status();
    }
    for (const std::string& bytes : read->batches) {
      Result<RecordBatch> batch = DecodeBatch(bytes);
      if (!batch.ok()) {
        return Status::Corruption("a batch of " + Tp(p) + " does not decode: " +
                                  batch.status().message());
      }
      for (const Record& r : batch->records) {
        ++records;
        if (!r.key || !r.value || r.value->empty()) {
          ++skipped;
          continue;
        }
        const uint8_t kind = static_cast<uint8_t>((*r.value)[0]);
        const std::string entry = r.value->substr(1);
        size_t good = 0;
        std::vector<int64_t> times;
        std::vector<std::vector<CommittedOffset>> decoded =
            OffsetStore::DecodeEntries(entry, &good, &times);
        if (decoded.size() != 1 || good != entry.size() ||
            (kind != kKindCommit && kind != kKindGroupState && kind != kKindExpired)) {
          ++skipped;
          continue;
        }
        const GroupId group(*r.key);
        if (kind == kKindExpired) {
          slot.groups.erase(group);
          continue;
        }
        // When the group was last active: the entry says (a state record keeps the group's
        // own time, not the snapshot's); an entry written before retention, the record's time.
        const int64_t at = times.front() >= 0 ? times.front() : r.timestamp_ms;
        GroupOffsets& g = slot.groups[group];
        if (kind == kKindGroupState) {
          g.offsets.clear();
          g.active_ms = at;
        } else {
          g.active_ms = std::max(g.active_ms, at);
        }
        for (const CommittedOffset& c : decoded.front()) {
          g.offsets[c.tp] = c.offset;
        }
      }
    }
    if (read->batches.empty() || read->next_offset >= read->log_end_offset) {
      break;
    }
    from = read->next_offset;
  }
  if (skipped > 0) {
    LogWarn(kComponent, "loading " + Tp(p) + ": skipped " + std::to_string(skipped) +
                            " records that are not offset commits");
  }
  LogInfo(kComponent, "loaded " + Tp(p) + ": " + std::to_string(slot.groups.size()) +
                          " groups from " + std::to_string(records) + " records");
  return Status::Ok();
}

Status ReplicatedOffsets::AppendLocked(
    int32_t p, PartitionLog& log, int32_t epoch,
    const std::vector<std::pair<std::string, std::string>>& records) {
  RecordBatch batch;
  const int64_t now = options_.clock->NowMs();
  for (size_t i = 0; i < records.size(); ++i) {
    Record r;
    r.offset_delta = static_cast<int64_t>(i);
    r.timestamp_ms = now;
    r.key = records[i].first;
    r.value = records[i].second;
    batch.records.push_back(std::move(r));
  }
  Result<int64_t> base = log.Append(EncodeBatch(batch), epoch);
  if (!base.ok()) {
    return base.status();
  }
  replicas_.OnLeaderAppend(kOffsetsTopic, p);
  return replicas_.AwaitReplicated(kOffsetsTopic, p, epoch,
                                   *base + static_cast<int64_t>(records.size()),
                                   options_.replication_timeout_ms);
}

Status ReplicatedOffsets::AppendInBatchesLocked(
    int32_t p, PartitionLog& log, int32_t epoch,
    const std::vector<std::pair<std::string, std::string>>& records, size_t* appended) {
  *appended = 0;
  while (*appended < records.size()) {
    const size_t n = std::min(kSnapshotGroupsPerBatch, records.size() - *appended);
    const auto first = records.begin() + static_cast<std::ptrdiff_t>(*appended);
    const auto last = first + static_cast<std::ptrdiff_t>(n);
    SLUICE_RETURN_IF_ERROR(AppendLocked(p, log, epoch, {first, last}));
    *appended += n;
  }
  return Status::Ok();
}

Status ReplicatedOffsets::SnapshotLocked(int32_t p, PartitionLog& log, int32_t epoch,
                                         Slot& slot) {
  std::vector<std::pair<std::string, std::string>> records;
  for (const auto& [group, g] : slot.groups) {
    std::vector<CommittedOffset> all;
    for (const auto& [tp, offset] : g.offsets) {
      all.push_back({tp, offset});
    }
    records.emplace_back(group.value(), std::string(1, static_cast<char>(kKindGroupState)) +
                                            OffsetStore::EncodeEntry(all, g.active_ms));
  }
  size_t appended = 0;
  SLUICE_RETURN_IF_ERROR(AppendInBatchesLocked(p, log, epoch, records, &appended));
  slot.commits_since_snapshot = 0;
  slot.last_snapshot_ms = options_.clock->NowMs();
  return Status::Ok();
}

Status ReplicatedOffsets::Commit(const GroupId& group,
                                 const std::vector<CommittedOffset>& offsets) {
  const int32_t p = PartitionOf(group);
  Slot& slot = *slots_[static_cast<size_t>(p)];
  std::lock_guard<std::mutex> lock(slot.mu);
  int32_t epoch = -1;
  Result<PartitionLog*> log = LeadLocked(p, slot, /*to_write=*/true, &epoch);
  if (!log.ok()) {
    return log.status();
  }
  const int64_t now = options_.clock->NowMs();
  Status st = AppendLocked(p, **log, epoch,
                           {{group.value(), std::string(1, static_cast<char>(kKindCommit)) +
                                                OffsetStore::EncodeEntry(offsets, now)}});
  if (!st.ok()) {
    slot.loaded_epoch = -1;  // the record may still be in the log: reload at next use
    return st;
  }
  GroupOffsets& g = slot.groups[group];
  g.active_ms = std::max(g.active_ms, now);
  for (const CommittedOffset& c : offsets) {
    g.offsets[c.tp] = c.offset;
  }
  if (++slot.commits_since_snapshot >= kSnapshotCommits) {
    Status snap = SnapshotLocked(p, **log, epoch, slot);
    if (!snap.ok()) {
      slot.loaded_epoch = -1;
      LogWarn(kComponent, "snapshot of " + Tp(p) + " failed: " + snap.ToString());
    }
  }
  return Status::Ok();
}

Result<std::vector<CommittedOffset>> ReplicatedOffsets::Fetch(
    const GroupId& group, const std::optional<TopicName>& topic) {
  const int32_t p = PartitionOf(group);
  Slot& slot = *slots_[static_cast<size_t>(p)];
  std::lock_guard<std::mutex> lock(slot.mu);
  int32_t epoch = -1;
  Result<PartitionLog*> log = LeadLocked(p, slot, /*to_write=*/false, &epoch);
  if (!log.ok()) {
    return log.status();
  }
  std::vector<CommittedOffset> out;
  auto g = slot.groups.find(group);
  if (g == slot.groups.end()) {
    return out;
  }
  for (const auto& [tp, offset] : g->second.offsets) {
    if (!topic || tp.topic == *topic) {
      out.push_back({tp, offset});
    }
  }
  return out;
}

void ReplicatedOffsets::Maintain() {
  {
    std::lock_guard<std::mutex> lock(maintain_mu_);
    const int64_t now = options_.clock->NowMs();
    if (now - last_maintain_ms_ < kMaintainEveryMs) {
      return;
    }
    last_maintain_ms_ = now;
  }
  for (int32_t p = 0; p < options_.partitions; ++p) {
    Slot& slot = *slots_[static_cast<size_t>(p)];
    std::lock_guard<std::mutex> lock(slot.mu);
    int32_t epoch = -1;
    // Not led here, or too few in-sync replicas to write now: nothing to do.
    Result<PartitionLog*> log = LeadLocked(p, slot, /*to_write=*/true, &epoch);
    if (!log.ok() || slot.groups.empty() ||
        options_.clock->NowMs() - slot.last_snapshot_ms < options_.snapshot_interval_ms) {
      continue;
    }
    Status st = SnapshotLocked(p, **log, epoch, slot);
    if (!st.ok()) {
      slot.loaded_epoch = -1;
      LogWarn(kComponent, "snapshot of " + Tp(p) + " failed: " + st.ToString());
    }
  }
}

std::vector<GroupId> ReplicatedOffsets::Expire(int64_t retention_ms,
                                               const std::set<GroupId>& live) {
  std::vector<GroupId> expired;
  for (int32_t p = 0; p < options_.partitions; ++p) {
    Slot& slot = *slots_[static_cast<size_t>(p)];
    std::lock_guard<std::mutex> lock(slot.mu);
    int32_t epoch = -1;
    // Only the leader writes; too few in-sync replicas: next time.
    Result<PartitionLog*> log = LeadLocked(p, slot, /*to_write=*/true, &epoch);
    if (!log.ok() || slot.groups.empty()) {
      continue;
    }
    const int64_t now = options_.clock->NowMs();
    std::vector<std::pair<std::string, std::string>> tombstones;
    for (auto& [group, g] : slot.groups) {
      if (live.count(group) > 0) {
        g.active_ms = std::max(g.active_ms, now);  // written by the next snapshot
      } else if (now - g.active_ms > retention_ms) {
        tombstones.emplace_back(group.value(), std::string(1, static_cast<char>(kKindExpired)) +
                                                   OffsetStore::EncodeEntry({}, now));
      }
    }
    size_t appended = 0;
    Status st = AppendInBatchesLocked(p, **log, epoch, tombstones, &appended);
    if (!st.ok()) {
      slot.loaded_epoch = -1;  // some may be in the log: reload at next use
      LogWarn(kComponent, "expiring group offsets in " + Tp(p) + ": " + st.ToString());
    }
    for (size_t k = 0; k < appended; ++k) {
      slot.groups.erase(GroupId(tombstones[k].first));
      expired.push_back(GroupId(tombstones[k].first));
    }
  }
  return expired;
}

}  // namespace sluice::broker
