#include "cloud-broker/log/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "cloud-broker/log/file_ops.h"

namespace sluice::broker {
namespace {

constexpr size_t kOffsetDigits = 20;
constexpr const char* kSuffix = ".log";

Status Errno(const std::string& what, const std::string& path) {
  return ErrnoStatus(what, path, errno);
}

std::string Stem(const std::string& dir, int64_t base_offset) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(base_offset));
  return dir + "/" + buf;
}

}  // namespace

std::string Segment::FileName(int64_t base_offset) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(base_offset));
  return std::string(buf) + kSuffix;
}

std::vector<std::string> Segment::FileNames(int64_t base_offset) {
  const std::string log = FileName(base_offset);
  const std::string stem = log.substr(0, kOffsetDigits);
  return {log, stem + ".index", stem + ".timeindex"};
}

bool Segment::ParseFileName(const std::string& name, int64_t* base_offset) {
  if (name.size() != kOffsetDigits + 4 || name.compare(kOffsetDigits, 4, kSuffix) != 0) {
    return false;
  }
  int64_t v = 0;
  for (size_t i = 0; i < kOffsetDigits; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') {
      return false;
    }
    if (v > (INT64_MAX - (c - '0')) / 10) {
      return false;
    }
    v = v * 10 + (c - '0');
  }
  *base_offset = v;
  return true;
}

Segment::Segment(std::string dir, int64_t base_offset, uint64_t size, const SegmentEnv* files)
    : files_(files),
      path_(dir + "/" + FileName(base_offset)),
      base_offset_(base_offset),
      size_(size),
      index_(Stem(dir, base_offset), base_offset, files->ops) {}

Result<std::shared_ptr<CachedFile>> Segment::File() const {
  return files_->cache->Get(path_, files_->ops, files_->on_close_sync_failure);
}

Result<std::unique_ptr<Segment>> Segment::Open(const std::string& dir, int64_t base_offset,
                                               const SegmentEnv* files) {
  std::string path = dir + "/" + FileName(base_offset);
  Result<std::shared_ptr<CachedFile>> file =
      files->cache->Get(path, files->ops, files->on_close_sync_failure);
  if (!file.ok()) {
    return file.status();
  }
  struct stat st;
  if (::fstat((*file)->fd(), &st) != 0) {
    return Errno("stat", path);
  }
  std::unique_ptr<Segment> seg(
      new Segment(dir, base_offset, static_cast<uint64_t>(st.st_size), files));
  if (st.st_size > 0) {
    seg->last_append_wall_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 +
                               st.st_mtim.tv_nsec / 1'000'000;
  }
  SLUICE_RETURN_IF_ERROR(seg->index_.Open());
  return seg;
}

Segment::~Segment() { files_->cache->Erase(path_); }

Status Segment::Append(std::string_view bytes) {
  const uint64_t start = size();
  Result<std::shared_ptr<CachedFile>> file = File();
  if (!file.ok()) {
    return file.status();
  }
  const int fd = (*file)->fd();
  (*file)->MarkDirty();
  Status st = WriteFully(*files_->ops, fd, bytes.data(), bytes.size(), static_cast<off_t>(start),
                         path_);
  if (!st.ok()) {
    (void)files_->ops->Truncate(fd, static_cast<off_t>(start));
    return st;
  }
  size_.store(start + bytes.size(), std::memory_order_release);
  return Status::Ok();
}

Status Segment::ReadAt(uint64_t position, size_t n, std::string* out) const {
  Result<std::shared_ptr<CachedFile>> file = File();
  if (!file.ok()) {
    return file.status();
  }
  const int fd = (*file)->fd();
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(position + done));
    if (r < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Errno("read", path_);
    }
    if (r == 0) {
      break;
    }
    done += static_cast<size_t>(r);
  }
  out->resize(done);
  return Status::Ok();
}

Status Segment::Sync() {
  Result<std::shared_ptr<CachedFile>> file = File();
  if (!file.ok()) {
    return file.status();
  }
  return (*file)->Sync();
}

Status Segment::Truncate(uint64_t new_size) {
  Result<std::shared_ptr<CachedFile>> file = File();
  if (!file.ok()) {
    return file.status();
  }
  (*file)->MarkDirty();
  if (files_->ops->Truncate((*file)->fd(), static_cast<off_t>(new_size)) != 0) {
    return Errno("truncate", path_);
  }
  size_.store(new_size, std::memory_order_release);
  return Status::Ok();
}

void Segment::RemoveFiles() {
  ::unlink(path_.c_str());
  files_->cache->Erase(path_, /*discard=*/true);
  index_.RemoveFiles();
}

}  // namespace sluice::broker
