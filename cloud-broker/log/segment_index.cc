#include "cloud-broker/log/segment_index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cloud-broker/log/fs_util.h"

namespace sluice::broker {
namespace {

void PutBe(char* out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>(v >> (8 * (n - 1 - i)));
  }
}

uint64_t GetBe(const char* in, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v = (v << 8) | static_cast<uint8_t>(in[i]);
  }
  return v;
}

// Reads the whole file at `path`, creating it empty if missing.
Status LoadFile(FileOps& ops, const std::string& path, std::string* out) {
  Result<int> fd = OpenFile(ops, path, O_RDWR | O_CREAT);
  if (!fd.ok()) {
    return fd.status();
  }
  out->clear();
  char buf[8192];
  while (true) {
    ssize_t n = ::pread(*fd, buf, sizeof(buf), static_cast<off_t>(out->size()));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      Status st = ErrnoStatus("read", path, errno);
      ::close(*fd);
      return st;
    }
    if (n == 0) {
      break;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(*fd);
  return Status::Ok();
}

}  // namespace

SegmentIndex::SegmentIndex(std::string stem, int64_t base_offset, FileOps* ops)
    : base_offset_(base_offset),
      ops_(ops),
      index_path_(stem + ".index"),
      time_path_(stem + ".timeindex") {}

SegmentIndex::~SegmentIndex() = default;

Status SegmentIndex::Open() {
  std::string bytes;
  SLUICE_RETURN_IF_ERROR(LoadFile(*ops_, index_path_, &bytes));
  index_file_size_ = bytes.size();
  for (size_t i = 0; i + kOffsetEntrySize <= bytes.size(); i += kOffsetEntrySize) {
    const char* e = bytes.data() + i;
    offsets_.push_back({base_offset_ + static_cast<int32_t>(GetBe(e, 4)),
                        static_cast<uint32_t>(GetBe(e + 4, 4))});
  }
  SLUICE_RETURN_IF_ERROR(LoadFile(*ops_, time_path_, &bytes));
  time_file_size_ = bytes.size();
  for (size_t i = 0; i + kTimeEntrySize <= bytes.size(); i += kTimeEntrySize) {
    const char* e = bytes.data() + i;
    time_.push_back({static_cast<int64_t>(GetBe(e, 8)),
                     base_offset_ + static_cast<int32_t>(GetBe(e + 8, 4))});
  }
  persisted_offsets_ = offsets_.size();
  persisted_times_ = time_.size();
  opened_ = true;
  return Status::Ok();
}

bool SegmentIndex::Validate(uint64_t log_size, int64_t end_offset, std::string* why) const {
  if (index_file_size_ % kOffsetEntrySize != 0) {
    *why = index_path_ + " size " + std::to_string(index_file_size_) + " is not a multiple of 8";
    return false;
  }
  if (time_file_size_ % kTimeEntrySize != 0) {
    *why = time_path_ + " size " + std::to_string(time_file_size_) + " is not a multiple of 12";
    return false;
  }
  if (log_size > 0 && (offsets_.empty() || time_.empty())) {
    *why = index_path_ + ": empty index for a non-empty segment";
    return false;
  }
  for (size_t i = 0; i < offsets_.size(); ++i) {
    const OffsetEntry& e = offsets_[i];
    bool bad = e.offset < base_offset_ || e.offset >= end_offset || e.position >= log_size ||
               (i == 0 && e.position != 0) ||
               (i > 0 && (e.offset <= offsets_[i - 1].offset ||
                          e.position <= offsets_[i - 1].position));
    if (bad) {
      *why = index_path_ + ": entry " + std::to_string(i) + " (offset " +
             std::to_string(e.offset) + ", position " + std::to_string(e.position) +
             ") is not increasing or not inside the log";
      return false;
    }
  }
  for (size_t i = 0; i < time_.size(); ++i) {
    const TimeEntry& e = time_[i];
    bool bad = e.offset < base_offset_ || e.offset >= end_offset ||
               (i > 0 && (e.timestamp <= time_[i - 1].timestamp || e.offset < time_[i - 1].offset));
    if (bad) {
      *why = time_path_ + ": entry " + std::to_string(i) +
             " is not increasing or not inside the log";
      return false;
    }
  }
  return true;
}

bool SegmentIndex::SameEntries(const SegmentIndex& o) const {
  auto eq_off = [](const OffsetEntry& a, const OffsetEntry& b) {
    return a.offset == b.offset && a.position == b.position;
  };
  auto eq_time = [](const TimeEntry& a, const TimeEntry& b) {
    return a.offset == b.offset && a.timestamp == b.timestamp;
  };
  return index_file_size_ == offsets_.size() * kOffsetEntrySize &&
         time_file_size_ == time_.size() * kTimeEntrySize &&
         std::equal(offsets_.begin(), offsets_.end(), o.offsets_.begin(), o.offsets_.end(),
                    eq_off) &&
         std::equal(time_.begin(), time_.end(), o.time_.begin(), o.time_.end(), eq_time);
}

Status SegmentIndex::Reset() {
  offsets_.clear();
  time_.clear();
  persisted_offsets_ = 0;
  persisted_times_ = 0;
  if (!opened_) {
    return Status::Ok();
  }
  for (const std::string* path : {&index_path_, &time_path_}) {
    Result<int> fd = OpenFile(*ops_, *path, O_RDWR | O_CREAT);
    if (!fd.ok()) {
      return fd.status();
    }
    const int rc = ops_->Truncate(*fd, 0);
    const int err = errno;
    ::close(*fd);
    if (rc != 0) {
      return ErrnoStatus("truncate", *path, err);
    }
    unsynced_ = true;
    (path == &index_path_ ? index_file_size_ : time_file_size_) = 0;
  }
  return Status::Ok();
}

Status SegmentIndex::CopyFrom(const SegmentIndex& other) {
  SLUICE_RETURN_IF_ERROR(Reset());
  offsets_ = other.offsets_;
  time_ = other.time_;
  return Persist();
}

Status SegmentIndex::AppendSynced(const std::string& path, uint64_t* file_size,
                                  const std::string& bytes) {
  Result<int> opened = OpenFile(*ops_, path, O_RDWR | O_CREAT);
  if (!opened.ok()) {
    return opened.status();
  }
  const int fd = *opened;
  Status st = WriteFully(*ops_, fd, bytes.data(), bytes.size(), static_cast<off_t>(*file_size),
                         path);
  if (!st.ok()) {
    (void)ops_->Truncate(fd, static_cast<off_t>(*file_size));
    ::close(fd);
    return st;
  }
  *file_size += bytes.size();
  if (ops_->DataSync(fd) != 0) {
    st = ErrnoStatus("fsync", path, errno);
  }
  ::close(fd);
  return st;
}

void SegmentIndex::AppendOffset(int64_t offset, uint64_t position) {
  offsets_.push_back({offset, position});
}

void SegmentIndex::MaybeAppendTime(int64_t timestamp, int64_t offset) {
  if (time_.empty() || timestamp > time_.back().timestamp) {
    time_.push_back({timestamp, offset});
  }
}

Status SegmentIndex::Persist() {
  if (!opened_) {
    return Status::Ok();  // a memory-only index (a recovery scan's rebuild)
  }
  if (!unsynced_ && persisted_offsets_ == offsets_.size() && persisted_times_ == time_.size()) {
    return Status::Ok();
  }
  std::string bytes;
  for (size_t i = persisted_offsets_; i < offsets_.size(); ++i) {
    char e[kOffsetEntrySize];
    PutBe(e, static_cast<uint32_t>(offsets_[i].offset - base_offset_), 4);
    PutBe(e + 4, static_cast<uint32_t>(offsets_[i].position), 4);
    bytes.append(e, sizeof(e));
  }
  // Entries count as persisted once written (a failed write is cut back and stays pending);
  // unsynced_ stays set until both files are fsynced, so a failed fsync is retried.
  unsynced_ = true;
  uint64_t before = index_file_size_;
  Status st = AppendSynced(index_path_, &index_file_size_, bytes);
  if (index_file_size_ != before) {
    persisted_offsets_ = offsets_.size();
  }
  SLUICE_RETURN_IF_ERROR(st);
  bytes.clear();
  for (size_t i = persisted_times_; i < time_.size(); ++i) {
    char e[kTimeEntrySize];
    PutBe(e, static_cast<uint64_t>(time_[i].timestamp), 8);
    PutBe(e + 8, static_cast<uint32_t>(time_[i].offset - base_offset_), 4);
    bytes.append(e, sizeof(e));
  }
  before = time_file_size_;
  st = AppendSynced(time_path_, &time_file_size_, bytes);
  if (time_file_size_ != before) {
    persisted_times_ = time_.size();
  }
  SLUICE_RETURN_IF_ERROR(st);
  unsynced_ = false;
  return Status::Ok();
}

void SegmentIndex::RemoveFiles() {
  ::unlink(index_path_.c_str());
  ::unlink(time_path_.c_str());
}

uint64_t SegmentIndex::LookupPosition(int64_t offset) const {
  auto it = std::upper_bound(offsets_.begin(), offsets_.end(), offset,
                             [](int64_t o, const OffsetEntry& e) { return o < e.offset; });
  return it == offsets_.begin() ? 0 : std::prev(it)->position;
}

uint64_t SegmentIndex::NextPositionAfter(uint64_t position, int64_t* offset) const {
  for (const OffsetEntry& e : offsets_) {
    if (e.position > position) {
      *offset = e.offset;
      return e.position;
    }
  }
  return 0;
}

int64_t SegmentIndex::TimeSearchStart(int64_t timestamp) const {
  int64_t start = base_offset_;
  for (const TimeEntry& e : time_) {
    if (e.timestamp >= timestamp) {
      break;
    }
    start = e.offset;
  }
  return start;
}

}  // namespace sluice::broker
