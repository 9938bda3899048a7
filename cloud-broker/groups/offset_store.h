// OffsetStore: the durable committed offsets of every consumer group, one append-only file per
// group, <dir>/<group>.offsets (dir is <data_dir>/groups).
//
// File format: a sequence of entries, one per commit request, each
//   u32 crc32c(payload) | u32 payload_len | payload
//   payload = u8 version (2) | i64 time_ms | u32 count | count x (u16 topic_len | topic |
//             i32 partition | i64 offset)
// all big-endian; time_ms is when the group was last active (its commit; the compacted entry
// keeps the group's latest). Version 1 (no time_ms) is still read. A commit of several
// partitions is one entry, so it is all-or-nothing after a crash. Later entries override earlier ones per topic-partition.
// Open reads every file up to the first torn or corrupt entry (short header, length past EOF,
// CRC mismatch, malformed payload), logs and counts what it cut, then compacts the file to one
// entry holding the latest offsets (written atomically: tmp + fsync + rename + dir fsync).
// Commit appends one entry and fdatasyncs before returning, so an acknowledged commit survives a
// crash or power cut. A file past kCompactBytes is compacted again the same way. A group's file
// is open only during its commit (the fsync dominates that cost): no descriptor is held per
// group, so the number of groups cannot exhaust the process's open files.
// Retention (Kafka's offsets.retention.minutes): Expire deletes the file of every group that
// has no members and was not active (no commit, no members) for the retention.
// Thread-safety: thread-safe (one mutex; commits to the store are serialised).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cloud-broker/groups/group_types.h"
#include "cloud-broker/groups/offset_backend.h"
#include "core/clock.h"
#include "core/status.h"

namespace sluice::broker {

class OffsetStore : public OffsetBackend {
 public:
  static constexpr int64_t kCompactBytes = 4 << 20;

  // Creates `dir` if needed and loads every group's offsets. Fails only if the directory cannot
  // be created or listed, or a file cannot be read or rewritten.
  static Result<std::unique_ptr<OffsetStore>> Open(const std::string& dir,
                                                    const Clock& clock = SystemClock::Instance());
  ~OffsetStore() override;
  OffsetStore(const OffsetStore&) = delete;
  OffsetStore& operator=(const OffsetStore&) = delete;

  // Appends and syncs; on an I/O error nothing is recorded (the file is cut back) and the error
  // (kIOError) is returned.
  Status Commit(const GroupId& group, const std::vector<CommittedOffset>& offsets) override;

  // OffsetBackend: every group is coordinated by this (only) broker.
  Result<CoordinatorInfo> Locate(const GroupId&) override { return CoordinatorInfo{}; }
  std::vector<GroupId> Expire(int64_t retention_ms, const std::set<GroupId>& live) override;
  Result<std::vector<CommittedOffset>> Fetch(const GroupId& group,
                                             const std::optional<TopicName>& topic) override {
    return Get(group, topic);
  }

  // The latest committed offsets of `group` (all topics, or only `topic`), sorted.
  std::vector<CommittedOffset> Get(const GroupId& group,
                                   const std::optional<TopicName>& topic = std::nullopt) const;
  std::vector<GroupId> Groups() const;

  // Bytes cut from torn/corrupt tails when the store was opened.
  int64_t truncated_bytes() const { return truncated_bytes_; }

  // Exposed for tests: the entry encoding and the tolerant decoder. DecodeEntries stops at the
  // first bad entry and returns the number of good bytes in *good_bytes.
  // time_ms < 0: a version 1 entry (no time; as written before retention).
  static std::string EncodeEntry(const std::vector<CommittedOffset>& offsets,
                                 int64_t time_ms = -1);
  // `times` (optional) gets each entry's time_ms, -1 for a version 1 entry.
  static std::vector<std::vector<CommittedOffset>> DecodeEntries(
      const std::string& data, size_t* good_bytes, std::vector<int64_t>* times = nullptr);

 private:
  struct GroupFile {
    bool on_disk = false;  // the file holds `size` good bytes (else: rewrite it from memory)
    int64_t size = 0;
    int64_t active_ms = 0;  // last commit, or last seen with members (Expire)
    std::map<TopicPartition, Offset> offsets;
  };

  OffsetStore(std::string dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {}
  std::string PathOf(const GroupId& group) const;
  // Rewrites the group's file as one entry and reopens it for append. Caller holds mu_.
  Status CompactLocked(const GroupId& group, GroupFile* file);

  const std::string dir_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::map<GroupId, GroupFile> groups_;
  int64_t truncated_bytes_ = 0;
};

}  // namespace sluice::broker
