#include "cloud-broker/log/file_ops.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice::broker {
namespace {

std::atomic<uint64_t> g_open_failures{0};

class PosixFileOps final : public FileOps {
 public:
  ssize_t PWrite(int fd, const void* buf, size_t n, off_t offset) override {
    return ::pwrite(fd, buf, n, offset);
  }
  int DataSync(int fd) override { return ::fdatasync(fd); }
  int Truncate(int fd, off_t size) override { return ::ftruncate(fd, size); }
};

}  // namespace

FileOps& FileOps::Default() {
  static PosixFileOps* ops = new PosixFileOps();  // never destroyed: used by static teardown
  return *ops;
}

int FileOps::Open(const std::string& path, int flags, mode_t mode) {
  return ::open(path.c_str(), flags, mode);
}

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " " + path + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) {
    return Status::ResourceExhausted(msg);
  }
  if (err == EMFILE || err == ENFILE) {
    return Status::Unavailable(msg + " (the process is out of file descriptors: raise its "
                                     "RLIMIT_NOFILE, or lower log.max_open_files or "
                                     "http.max_connections)");
  }
  if (err == ENOENT) {
    return Status::NotFound(msg);
  }
  return Status::IOError(msg);
}

Result<int> OpenFile(FileOps& ops, const std::string& path, int flags, mode_t mode) {
  int fd = ops.Open(path, flags | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    g_open_failures.fetch_add(1);
    return ErrnoStatus("open", path, err);
  }
  return fd;
}

uint64_t OpenFailuresTotal() { return g_open_failures.load(); }

Status WriteFully(FileOps& ops, int fd, const void* buf, size_t n, off_t offset,
                  const std::string& path) {
  const char* p = static_cast<const char*>(buf);
  size_t done = 0;
  while (done < n) {
    ssize_t w = ops.PWrite(fd, p + done, n - done, offset + static_cast<off_t>(done));
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoStatus("write", path, errno);
    }
    if (w == 0) {
      return ErrnoStatus("write", path, ENOSPC);
    }
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

int FaultInjectingFileOps::Open(const std::string& path, int flags, mode_t mode) {
  opens_.fetch_add(1);
  int64_t left = open_budget_.load();
  while (left >= 0) {
    if (left == 0) {
      errno = EMFILE;
      return -1;
    }
    if (open_budget_.compare_exchange_weak(left, left - 1)) {
      break;
    }
  }
  return ::open(path.c_str(), flags, mode);
}

ssize_t FaultInjectingFileOps::PWrite(int fd, const void* buf, size_t n, off_t offset) {
  int64_t budget = budget_.load();
  while (budget >= 0) {
    if (budget == 0) {
      failed_writes_.fetch_add(1);
      errno = ENOSPC;
      return -1;
    }
    int64_t take = std::min<int64_t>(budget, static_cast<int64_t>(n));
    if (budget_.compare_exchange_weak(budget, budget - take)) {
      return ::pwrite(fd, buf, static_cast<size_t>(take), offset);
    }
  }
  return ::pwrite(fd, buf, n, offset);
}

void FaultInjectingFileOps::HoldSyncs(bool hold) {
  std::lock_guard<std::mutex> lock(hold_mu_);
  hold_ = hold;
  hold_cv_.notify_all();
}

int FaultInjectingFileOps::DataSync(int fd) {
  {
    std::unique_lock<std::mutex> lock(hold_mu_);
    if (hold_) {
      held_ += 1;
      hold_cv_.wait(lock, [&] { return !hold_; });
      held_ -= 1;
    }
  }
  if (fail_syncs_.load()) {
    errno = EIO;
    return -1;
  }
  return ::fdatasync(fd);
}

int FaultInjectingFileOps::Truncate(int fd, off_t size) { return ::ftruncate(fd, size); }

}  // namespace sluice::broker
