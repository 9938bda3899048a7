#include "gateway/buffer/pread_env.h"

#include <fcntl.h>
#include <leveldb/env.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace sluice::gateway {
namespace {

// Table files kept open at once; past this a file is opened for each read (as leveldb's own
// PosixRandomAccessFile does when its fd limit is reached), so a huge backlog cannot exhaust
// RLIMIT_NOFILE.
constexpr int kMaxPermanentFds = 256;
std::atomic<int> permanent_fds{0};

leveldb::Status ErrnoStatus(const std::string& file, int err) {
  if (err == ENOENT) {
    return leveldb::Status::NotFound(file, std::strerror(err));
  }
  return leveldb::Status::IOError(file, std::strerror(err));
}

class PreadFile final : public leveldb::RandomAccessFile {
 public:
  PreadFile(std::string name, int fd) : name_(std::move(name)) {
    if (permanent_fds.fetch_add(1) < kMaxPermanentFds) {
      fd_ = fd;
    } else {
      permanent_fds.fetch_sub(1);
      ::close(fd);
    }
  }
  ~PreadFile() override {
    if (fd_ >= 0) {
      ::close(fd_);
      permanent_fds.fetch_sub(1);
    }
  }

  leveldb::Status Read(uint64_t offset, size_t n, leveldb::Slice* result,
                       char* scratch) const override {
    int fd = fd_;
    if (fd < 0) {
      fd = ::open(name_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        return ErrnoStatus(name_, errno);
      }
    }
    leveldb::Status st;
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd, scratch + got, n - got, static_cast<off_t>(offset + got));
      if (r > 0) {
        got += static_cast<size_t>(r);
      } else if (r == 0) {
        break;  // end of file: leveldb checks the length it asked for
      } else if (errno != EINTR) {
        st = ErrnoStatus(name_, errno);
        break;
      }
    }
    *result = leveldb::Slice(scratch, got);
    if (fd != fd_) {
      ::close(fd);
    }
    return st;
  }

 private:
  const std::string name_;
  int fd_ = -1;  // -1: opened on every read
};

class PreadEnv final : public leveldb::EnvWrapper {
 public:
  PreadEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}

  leveldb::Status NewRandomAccessFile(const std::string& name,
                                      leveldb::RandomAccessFile** result) override {
    *result = nullptr;
    int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return ErrnoStatus(name, errno);
    }
    *result = new PreadFile(name, fd);
    return leveldb::Status::OK();
  }
};

}  // namespace

leveldb::Env* PreadTableEnv() {
  static PreadEnv* env = new PreadEnv();
  return env;
}

}  // namespace sluice::gateway
