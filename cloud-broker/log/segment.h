// Segment: one file of a partition log, `<20-digit base offset>.log`, holding Kafka RecordBatch
// v2 bytes back to back exactly as Kafka stores them (the next issue adds the .index and
// .timeindex siblings). The segment knows bytes, not batches: PartitionLog frames them.
// Thread-safety: ReadAt may run concurrently with itself and with Append (it only reads bytes
// below the size it was given); Append, Truncate and Sync need external exclusion (PartitionLog
// holds its mutex exclusively for them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice::broker {

class Segment {
 public:
  // Opens `<dir>/<FileName(base_offset)>`, creating an empty file if it does not exist.
  static Result<std::unique_ptr<Segment>> Open(const std::string& dir, int64_t base_offset);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  int64_t base_offset() const { return base_offset_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Writes `bytes` at the end of the file. On failure it cuts the file back to its previous
  // size so no partial batch stays behind (if that fails too, recovery drops the torn tail).
  Status Append(std::string_view bytes);
  // Reads up to `n` bytes at `position` into *out (fewer at the end of the file).
  Status ReadAt(uint64_t position, size_t n, std::string* out) const;
  // fsync: everything appended so far is durable after it returns ok.
  Status Sync();
  // Cuts the file to `new_size` bytes (recovery of a torn tail, undo of a failed append).
  Status Truncate(uint64_t new_size);

  // "00000000000000001234.log"
  static std::string FileName(int64_t base_offset);
  // Parses a segment file name; false for anything else (indexes, temp files).
  static bool ParseFileName(const std::string& name, int64_t* base_offset);

 private:
  Segment(int fd, std::string path, int64_t base_offset, uint64_t size)
      : fd_(fd), path_(std::move(path)), base_offset_(base_offset), size_(size) {}

  int fd_;
  std::string path_;
  int64_t base_offset_;
  uint64_t size_;
};

}  // namespace sluice::broker
