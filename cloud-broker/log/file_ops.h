// FileOps: the write seam of the partition log (leveldb's Env, narrowed to what the log writes).
// Every file the log and its indexes open, every byte they write, every fsync and every truncate
// goes through it, so a test can make the disk "fill up" or the process run out of descriptors
// (FaultInjectingFileOps) and check nothing is corrupted or left behind.
// Reads use pread directly: they cannot fail by the disk filling.
// Thread-safety: implementations are thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "core/status.h"

namespace sluice::broker {

class FileOps {
 public:
  virtual ~FileOps() = default;
  // open(2): a descriptor, or -1 with errno set. O_CLOEXEC is added by the caller.
  virtual int Open(const std::string& path, int flags, mode_t mode);
  // POSIX semantics: bytes written, or -1 with errno set.
  virtual ssize_t PWrite(int fd, const void* buf, size_t n, off_t offset) = 0;
  virtual int DataSync(int fd) = 0;
  virtual int Truncate(int fd, off_t size) = 0;

  // The real file system (pwrite, fdatasync, ftruncate). Lives for the whole process.
  static FileOps& Default();
};

// Writes all of `n` bytes at `offset` (retrying short writes and EINTR). On failure the file may
// hold a prefix: the caller truncates. ENOSPC/EDQUOT map to kResourceExhausted (retryable, HTTP
// 507), any other errno to kIOError.
Status WriteFully(FileOps& ops, int fd, const void* buf, size_t n, off_t offset,
                  const std::string& path);
// ENOSPC/EDQUOT -> kResourceExhausted; EMFILE/ENFILE (descriptors exhausted) -> kUnavailable
// (retryable: an fd frees up); ENOENT -> kNotFound; anything else -> kIOError.
Status ErrnoStatus(const std::string& what, const std::string& path, int err);
// ops.Open with O_CLOEXEC; a failure is counted (OpenFailuresTotal) and mapped by ErrnoStatus.
Result<int> OpenFile(FileOps& ops, const std::string& path, int flags, mode_t mode = 0644);
// Process-wide count of failed opens of log, index and topic files (any cause).
uint64_t OpenFailuresTotal();

// Fault injection for tests and the disk-full bench: after `budget` more bytes, writes fail with
// ENOSPC (the write that crosses the budget is cut short, as a real full disk does). Sync and
// truncate always reach the real file system. FailOpensAfter(n) makes every open after the next
// n fail with EMFILE, as a process out of descriptors.
class FaultInjectingFileOps final : public FileOps {
 public:
  int Open(const std::string& path, int flags, mode_t mode) override;
  ssize_t PWrite(int fd, const void* buf, size_t n, off_t offset) override;
  int DataSync(int fd) override;
  int Truncate(int fd, off_t size) override;

  // Bytes that may still be written; -1 (the default) = unlimited.
  void SetWriteBudget(int64_t bytes) { budget_.store(bytes); }
  void FailSyncs(bool fail) { fail_syncs_.store(fail); }
  // Opens that may still succeed; -1 (the default) = unlimited.
  void FailOpensAfter(int64_t opens) { open_budget_.store(opens); }
  uint64_t opens() const { return opens_.load(); }
  uint64_t failed_writes() const { return failed_writes_.load(); }
  // While held, every sync blocks (a slow disk, to keep a produce request in its append);
  // held_syncs() counts the syncs blocked now. Release with HoldSyncs(false).
  void HoldSyncs(bool hold);
  int held_syncs() const { return held_.load(); }

 private:
  std::mutex hold_mu_;
  std::condition_variable hold_cv_;
  bool hold_ = false;
  std::atomic<int> held_{0};
  std::atomic<int64_t> budget_{-1};
  std::atomic<int64_t> open_budget_{-1};
  std::atomic<uint64_t> opens_{0};
  std::atomic<bool> fail_syncs_{false};
  std::atomic<uint64_t> failed_writes_{0};
};

}  // namespace sluice::broker
