// FileCache: the open segment (.log) descriptors of every partition log, at most `capacity` of
// them (log.max_open_files), least recently used closed first: leveldb's TableCache for the
// partition log. A broker may hold many more partitions than RLIMIT_NOFILE allows open at once;
// a partition's files are reopened on demand for append, read and fsync.
//
// Contracts:
// - One descriptor per path at a time: Get returns the cached one, or waits for a closing one to
//   be closed before opening it again (so an fsync error seen while closing is never hidden from
//   the owner by a fresh descriptor).
// - A handle stays open while held (an append, read or fsync in progress); eviction skips held
//   entries, so the count may exceed capacity by the operations in flight, never otherwise.
// - A file written since its last Sync is fdatasync'ed before it is closed (eviction, Erase,
//   destruction); if that fsync fails, the owner's `on_close_sync_failure` is called (the
//   partition then stops, as after any failed fsync) before the path can be opened again.
// Thread-safety: thread-safe. Handles run their closing fsync in the thread that drops the last
// reference, never under the cache's lock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cloud-broker/log/file_ops.h"
#include "core/status.h"

namespace sluice::broker {

class CachedFile {
 public:
  CachedFile(std::string path, int fd, FileOps* ops, std::function<void(const Status&)> on_fail)
      : path_(std::move(path)), fd_(fd), ops_(ops), on_close_sync_failure_(std::move(on_fail)) {}
  ~CachedFile();  // fsync if dirty, then close
  CachedFile(const CachedFile&) = delete;
  CachedFile& operator=(const CachedFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Call after writing (or truncating) through fd(): the file now needs an fsync before close.
  void MarkDirty() { dirty_.store(true); }
  // fdatasync (always, so it also covers writes made through an earlier descriptor).
  Status Sync();
  // The file is being deleted: no fsync at close.
  void Discard() { dirty_.store(false); }

 private:
  const std::string path_;
  const int fd_;
  FileOps* const ops_;
  const std::function<void(const Status&)> on_close_sync_failure_;
  std::atomic<bool> dirty_{false};
};

class FileCache {
 public:
  // capacity >= 1.
  explicit FileCache(size_t capacity);
  ~FileCache();  // closes (and fsyncs) every file still cached
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // The open descriptor of `path` (opened O_RDWR|O_CREAT through `ops` if not cached), now the
  // most recently used. `on_close_sync_failure` is kept with a newly opened file. Open errors
  // map as ErrnoStatus (EMFILE/ENFILE: kUnavailable).
  Result<std::shared_ptr<CachedFile>> Get(const std::string& path, FileOps* ops,
                                          const std::function<void(const Status&)>& on_fail);
  // Drops `path` from the cache (closing it once no operation holds it); with discard, no fsync
  // (the file was deleted).
  void Erase(const std::string& path, bool discard = false);

  size_t capacity() const { return capacity_; }
  size_t open_files() const;
  uint64_t evictions() const { return evictions_.load(); }

  // capacity for log.max_open_files = 0: a quarter of the RLIMIT_NOFILE soft limit (http
  // connections may take half), at least 16.
  static size_t DefaultCapacity();
  // A process-wide cache of DefaultCapacity(), for logs opened without one (tests, tools).
  static FileCache& Default();

 private:
  struct Entry {
    std::shared_ptr<CachedFile> file;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recent)
  };
  // Takes unheld entries from the LRU end (marking them closing) until at most `keep` remain;
  // the caller closes them outside mu_.
  std::vector<std::shared_ptr<CachedFile>> EvictLocked(size_t keep);
  // Closes taken files (fsync if dirty) and clears their closing marks.
  void Close(std::vector<std::shared_ptr<CachedFile>> files);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable closed_cv_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;
  std::set<std::string> closing_;  // taken out, closing in some thread
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace sluice::broker
