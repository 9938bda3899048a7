#include "cloud-broker/log/file_cache.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "core/logging.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "log";
}  // namespace

CachedFile::~CachedFile() {
  if (dirty_.load()) {
    Status st = Sync();
    if (!st.ok()) {
      LogError(kComponent, "closing " + path_ + ": " + st.ToString());
      if (on_close_sync_failure_) {
        on_close_sync_failure_(st);
      }
    }
  }
  ::close(fd_);
}

Status CachedFile::Sync() {
  // Cleared first: a write that lands during the fsync marks it dirty again.
  dirty_.store(false);
  if (ops_->DataSync(fd_) != 0) {
    const int err = errno;
    dirty_.store(true);
    return ErrnoStatus("fsync", path_, err);
  }
  return Status::Ok();
}

FileCache::FileCache(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

FileCache::~FileCache() {
  std::vector<std::shared_ptr<CachedFile>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [path, e] : entries_) {
      all.push_back(std::move(e.file));
    }
    entries_.clear();
    lru_.clear();
  }
  all.clear();  // each closes (fsync if dirty) as its last reference goes
}

size_t FileCache::DefaultCapacity() {
  rlimit rl{};
  uint64_t soft = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    soft = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : static_cast<uint64_t>(rl.rlim_cur);
  }
  return static_cast<size_t>(std::clamp<uint64_t>(soft / 4, 16, 1'000'000));
}

FileCache& FileCache::Default() {
  static FileCache* cache = new FileCache(DefaultCapacity());  // never destroyed, as FileOps
  return *cache;
}

size_t FileCache::open_files() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

Result<std::shared_ptr<CachedFile>> FileCache::Get(
    const std::string& path, FileOps* ops, const std::function<void(const Status&)>& on_fail) {
  std::shared_ptr<CachedFile> out;
  std::vector<std::shared_ptr<CachedFile>> victims;
  {
    std::unique_lock lock(mu_);
    closed_cv_.wait(lock, [&] { return closing_.count(path) == 0; });
    auto it = entries_.find(path);
    if (it != entries_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return it->second.file;
    }
    // Make room first, so the new descriptor does not need one more than the cap allows.
    victims = EvictLocked(capacity_ - 1);
    // Opened under mu_: two callers must never open the same path twice.
    Result<int> fd = OpenFile(*ops, path, O_RDWR | O_CREAT);
    if (!fd.ok()) {
      lock.unlock();
      Close(std::move(victims));
      return fd.status();
    }
    out = std::make_shared<CachedFile>(path, *fd, ops, on_fail);
    lru_.push_front(path);
    entries_.emplace(path, Entry{out, lru_.begin()});
  }
  Close(std::move(victims));
  return out;
}

std::vector<std::shared_ptr<CachedFile>> FileCache::EvictLocked(size_t keep) {
  std::vector<std::shared_ptr<CachedFile>> out;
  auto it = lru_.end();
  while (entries_.size() > keep && it != lru_.begin()) {
    --it;
    auto e = entries_.find(*it);
    if (e->second.file.use_count() > 1) {
      continue;  // held by an operation in progress
    }
    out.push_back(std::move(e->second.file));
    closing_.insert(*it);
    entries_.erase(e);
    it = lru_.erase(it);
    evictions_.fetch_add(1);
  }
  return out;
}

void FileCache::Erase(const std::string& path, bool discard) {
  std::vector<std::shared_ptr<CachedFile>> taken;
  {
    std::lock_guard lock(mu_);
    auto e = entries_.find(path);
    if (e == entries_.end()) {
      return;
    }
    if (discard) {
      e->second.file->Discard();
    }
    taken.push_back(std::move(e->second.file));
    closing_.insert(path);
    lru_.erase(e->second.lru);
    entries_.erase(e);
  }
  Close(std::move(taken));
}

void FileCache::Close(std::vector<std::shared_ptr<CachedFile>> files) {
  if (files.empty()) {
    return;
  }
  std::vector<std::string> paths;
  for (const auto& f : files) {
    paths.push_back(f->path());
  }
  files.clear();  // fsync if dirty, close: outside mu_
  {
    std::lock_guard lock(mu_);
    for (const auto& p : paths) {
      closing_.erase(p);
    }
  }
  closed_cv_.notify_all();
}

}  // namespace sluice::broker
