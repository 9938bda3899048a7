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

Result<int> OpenFile(const std::string& path, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return ErrnoStatus("open", path, errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = ErrnoStatus("stat", path, errno);
    ::close(fd);
    return s;
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

}  // namespace

SegmentIndex::SegmentIndex(std::string stem, int64_t base_offset, FileOps* ops)
    : base_offset_(base_offset),
      ops_(ops),
      index_path_(stem + ".index"),
      time_path_(stem + ".timeindex") {}

SegmentIndex::~SegmentIndex() {
  if (index_fd_ >= 0) {
    ::close(index_fd_);
  }
  if (time_fd_ >= 0) {
    ::close(time_fd_);
  }
}

Status SegmentIndex::Open() {
  Result<int> fd = OpenFile(index_path_, &index_file_size_);
  if (!fd.ok()) {
    return fd.status();
  }
  index_fd_ = *fd;
  fd = OpenFile(time_path_, &time_file_size_);
  if (!fd.ok()) {
    return fd.status();
  }
  time_fd_ = *fd;
  Result<std::string> bytes = ReadWholeFile(index_path_);
  if (!bytes.ok()) {
    return bytes.status();
  }
  for (size_t i = 0; i + kOffsetEntrySize <= bytes->size(); i += kOffsetEntrySize) {
    const char* e = bytes->data() + i;
    offsets_.push_back({base_offset_ + static_cast<int32_t>(GetBe(e, 4)),
                        static_cast<uint32_t>(GetBe(e + 4, 4))});
  }
  bytes = ReadWholeFile(time_path_);
  if (!bytes.ok()) {
    return bytes.status();
  }
  for (size_t i = 0; i + kTimeEntrySize <= bytes->size(); i += kTimeEntrySize) {
    const char* e = bytes->data() + i;
    time_.push_back({static_cast<int64_t>(GetBe(e, 8)),
                     base_offset_ + static_cast<int32_t>(GetBe(e + 8, 4))});
  }
  persisted_offsets_ = offsets_.size();
  persisted_times_ = time_.size();
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
  if (index_fd_ < 0) {
    return Status::Ok();
  }
  if (ops_->Truncate(index_fd_, 0) != 0) {
    return ErrnoStatus("truncate", index_path_, errno);
  }
  if (ops_->Truncate(time_fd_, 0) != 0) {
    return ErrnoStatus("truncate", time_path_, errno);
  }
  index_file_size_ = 0;
  time_file_size_ = 0;
  return Status::Ok();
}

Status SegmentIndex::CopyFrom(const SegmentIndex& other) {
  SLUICE_RETURN_IF_ERROR(Reset());
  offsets_ = other.offsets_;
  time_ = other.time_;
  return Persist();
}

Status SegmentIndex::AppendRaw(int fd, const std::string& path, uint64_t* file_size,
                               const std::string& bytes) {
  if (fd < 0 || bytes.empty()) {
    return Status::Ok();  // a memory-only index (a recovery scan's rebuild), or nothing new
  }
  Status st = WriteFully(*ops_, fd, bytes.data(), bytes.size(), static_cast<off_t>(*file_size),
                         path);
  if (!st.ok()) {
    (void)ops_->Truncate(fd, static_cast<off_t>(*file_size));
    return st;
  }
  *file_size += bytes.size();
  return Status::Ok();
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
  if (index_fd_ < 0) {
    return Status::Ok();
  }
  std::string bytes;
  for (size_t i = persisted_offsets_; i < offsets_.size(); ++i) {
    char e[kOffsetEntrySize];
    PutBe(e, static_cast<uint32_t>(offsets_[i].offset - base_offset_), 4);
    PutBe(e + 4, static_cast<uint32_t>(offsets_[i].position), 4);
    bytes.append(e, sizeof(e));
  }
  SLUICE_RETURN_IF_ERROR(AppendRaw(index_fd_, index_path_, &index_file_size_, bytes));
  persisted_offsets_ = offsets_.size();
  bytes.clear();
  for (size_t i = persisted_times_; i < time_.size(); ++i) {
    char e[kTimeEntrySize];
    PutBe(e, static_cast<uint64_t>(time_[i].timestamp), 8);
    PutBe(e + 8, static_cast<uint32_t>(time_[i].offset - base_offset_), 4);
    bytes.append(e, sizeof(e));
  }
  SLUICE_RETURN_IF_ERROR(AppendRaw(time_fd_, time_path_, &time_file_size_, bytes));
  persisted_times_ = time_.size();
  if (ops_->DataSync(index_fd_) != 0) {
    return ErrnoStatus("fsync", index_path_, errno);
  }
  if (ops_->DataSync(time_fd_) != 0) {
    return ErrnoStatus("fsync", time_path_, errno);
  }
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
