// SegmentIndex: a segment's two sparse indexes, in Kafka's on-disk formats (big-endian):
//   <base>.index      8-byte entries: relative offset int32 | position int32 (in the .log)
//   <base>.timeindex 12-byte entries: timestamp int64 | relative offset int32
// The offset index gets an entry for the batch that starts at position 0 and then for the first
// batch after every index_interval_bytes; the time index gets (largest timestamp so far, offset
// of it) at the same points when the largest timestamp grew, and once more when the segment is
// rolled, so the last time-index entry of an old segment holds its largest timestamp (Kafka).
// Entries are added in memory; Persist() appends the new ones to the files (no preallocation,
// so a file's size is a whole number of entries unless a crash tore the last one). The log
// persists an index when it rolls the segment and on Flush (clean stop), not per append: the
// active segment is rescanned on every start anyway, and keeping index writes out of the append
// path keeps each fsync'd commit to the one .log file.
// Descriptors: none held; the files are opened to load them (Open) and to write (Persist,
// Reset), and closed again, so a broker's open files do not grow with its partitions.
// Thread-safety: none; the owning PartitionLog serialises mutations and excludes them from reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud-broker/log/file_ops.h"
#include "core/status.h"

namespace sluice::broker {

class SegmentIndex {
 public:
  struct OffsetEntry {
    int64_t offset;     // absolute
    uint64_t position;  // in the .log
  };
  struct TimeEntry {
    int64_t timestamp;
    int64_t offset;  // absolute
  };
  static constexpr size_t kOffsetEntrySize = 8;
  static constexpr size_t kTimeEntrySize = 12;

  SegmentIndex(std::string log_path_stem, int64_t base_offset, FileOps* ops);
  ~SegmentIndex();
  SegmentIndex(const SegmentIndex&) = delete;
  SegmentIndex& operator=(const SegmentIndex&) = delete;

  // Loads both files' entries as they are (creating empty files if missing). Without Open the
  // index lives in memory only (a recovery scan builds one to compare with the files).
  Status Open();
  // Checks the loaded files: size a multiple of the entry size, entries strictly increasing,
  // last entry inside the log (position < log_size, offset < end_offset). *why says what failed.
  bool Validate(uint64_t log_size, int64_t end_offset, std::string* why) const;
  // True if the loaded entries equal `other`'s (a recovery scan's rebuilt index).
  bool SameEntries(const SegmentIndex& other) const;
  // Empties both files and the memory copy.
  Status Reset();
  // Replaces both files with `other`'s entries (after a rebuild).
  Status CopyFrom(const SegmentIndex& other);

  // In memory; Persist writes them.
  void AppendOffset(int64_t offset, uint64_t position);
  // Adds an entry only if timestamp exceeds the last entry's.
  void MaybeAppendTime(int64_t timestamp, int64_t offset);
  // Appends the entries not yet in the files, then fdatasyncs both files (nothing to do if
  // nothing changed since the last successful Persist).
  Status Persist();
  // Unlinks both files.
  void RemoveFiles();

  // Position of the last entry at or below `offset` (0 if none).
  uint64_t LookupPosition(int64_t offset) const;
  // Position of the first entry after `position`, or 0 if there is none (skip past corruption).
  uint64_t NextPositionAfter(uint64_t position, int64_t* offset) const;
  // Offset to start a timestamp search from: the offset of the last time entry whose timestamp
  // is below `timestamp` (every record at or before it is older), else the segment's base.
  int64_t TimeSearchStart(int64_t timestamp) const;
  // Largest timestamp recorded, or -1 if the time index is empty.
  int64_t last_timestamp() const { return time_.empty() ? -1 : time_.back().timestamp; }
  const std::vector<OffsetEntry>& offsets() const { return offsets_; }
  const std::vector<TimeEntry>& times() const { return time_; }
  const std::string& index_path() const { return index_path_; }
  const std::string& time_path() const { return time_path_; }

 private:
  // Opens `path`, appends `bytes` at *file_size (cut back on failure) and fdatasyncs it.
  Status AppendSynced(const std::string& path, uint64_t* file_size, const std::string& bytes);

  const int64_t base_offset_;
  FileOps* const ops_;
  const std::string index_path_;
  const std::string time_path_;
  bool opened_ = false;  // Open succeeded: the index has files
  bool unsynced_ = false;  // files truncated (Reset) since the last Persist
  uint64_t index_file_size_ = 0;
  uint64_t time_file_size_ = 0;
  size_t persisted_offsets_ = 0;  // entries already in the files
  size_t persisted_times_ = 0;
  std::vector<OffsetEntry> offsets_;
  std::vector<TimeEntry> time_;
};

}  // namespace sluice::broker
