#include "cloud-broker/groups/offset_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>
#include <cerrno>
#include <cstring>

#include "cloud-broker/log/fs_util.h"
#include "core/crc32c.h"
#include "core/logging.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "groups";
constexpr const char* kSuffix = ".offsets";
constexpr uint8_t kVersionNoTime = 1;  // read only: entries before offsets retention
constexpr uint8_t kVersion = 2;
constexpr size_t kHeaderBytes = 8;
constexpr uint32_t kMaxPayload = 64 << 20;
// Expire: groups with members written down as active per pass (see there).
constexpr int kActiveWritesPerPass = 64;

void PutU(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

bool GetU(const std::string& in, size_t* pos, int bytes, uint64_t* v) {
  if (in.size() - *pos < static_cast<size_t>(bytes)) {
    return false;
  }
  *v = 0;
  for (int i = 0; i < bytes; ++i) {
    *v = (*v << 8) | static_cast<uint8_t>(in[*pos + static_cast<size_t>(i)]);
  }
  *pos += static_cast<size_t>(bytes);
  return true;
}

bool DecodePayload(const std::string& p, std::vector<CommittedOffset>* out, int64_t* time_ms) {
  size_t pos = 0;
  uint64_t version, count;
  *time_ms = -1;
  if (!GetU(p, &pos, 1, &version) || (version != kVersion && version != kVersionNoTime)) {
    return false;
  }
  if (version == kVersion) {
    uint64_t t;
    if (!GetU(p, &pos, 8, &t) || static_cast<int64_t>(t) < 0) {
      return false;
    }
    *time_ms = static_cast<int64_t>(t);
  }
  if (!GetU(p, &pos, 4, &count)) {
    return false;
  }
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t len, partition, offset;
    if (!GetU(p, &pos, 2, &len) || p.size() - pos < len) {
      return false;
    }
    std::string topic = p.substr(pos, len);
    pos += len;
    if (!GetU(p, &pos, 4, &partition) || !GetU(p, &pos, 8, &offset)) {
      return false;
    }
    out->push_back({{TopicName(std::move(topic)), PartitionId(static_cast<int32_t>(partition))},
                    Offset(static_cast<int64_t>(offset))});
  }
  return pos == p.size();
}

Status WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Status::IOError(std::string("write: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::string OffsetStore::EncodeEntry(const std::vector<CommittedOffset>& offsets,
                                     int64_t time_ms) {
  std::string payload;
  if (time_ms < 0) {
    PutU(&payload, kVersionNoTime, 1);
  } else {
    PutU(&payload, kVersion, 1);
    PutU(&payload, static_cast<uint64_t>(time_ms), 8);
  }
  PutU(&payload, offsets.size(), 4);
  for (const CommittedOffset& c : offsets) {
    PutU(&payload, c.tp.topic.value().size(), 2);
    payload += c.tp.topic.value();
    PutU(&payload, static_cast<uint32_t>(c.tp.partition.value()), 4);
    PutU(&payload, static_cast<uint64_t>(c.offset.value()), 8);
  }
  std::string entry;
  PutU(&entry, crc32c::Value(payload), 4);
  PutU(&entry, payload.size(), 4);
  return entry + payload;
}

std::vector<std::vector<CommittedOffset>> OffsetStore::DecodeEntries(const std::string& data,
                                                                     size_t* good_bytes,
                                                                     std::vector<int64_t>* times) {
  std::vector<std::vector<CommittedOffset>> entries;
  size_t pos = 0;
  *good_bytes = 0;
  while (pos < data.size()) {
    size_t p = pos;
    uint64_t crc, len;
    if (!GetU(data, &p, 4, &crc) || !GetU(data, &p, 4, &len) || len > kMaxPayload ||
        data.size() - p < len) {
      break;
    }
    std::string payload = data.substr(p, len);
    std::vector<CommittedOffset> entry;
    int64_t time_ms = -1;
    if (crc32c::Value(payload) != crc || !DecodePayload(payload, &entry, &time_ms)) {
      break;
    }
    entries.push_back(std::move(entry));
    if (times != nullptr) {
      times->push_back(time_ms);
    }
    pos = p + len;
    *good_bytes = pos;
  }
  return entries;
}

Result<std::unique_ptr<OffsetStore>> OffsetStore::Open(const std::string& dir,
                                                      const Clock& clock) {
  SLUICE_RETURN_IF_ERROR(MakeDirs(dir));
  std::unique_ptr<OffsetStore> store(new OffsetStore(dir, clock));
  Result<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) {
    return names.status();
  }
  std::lock_guard<std::mutex> lock(store->mu_);
  for (const std::string& name : *names) {
    const size_t suffix = std::strlen(kSuffix);
    if (name.size() <= suffix || name.compare(name.size() - suffix, suffix, kSuffix) != 0) {
      continue;  // includes leftover "<group>.offsets.tmp" from a crash mid-compaction
    }
    GroupId group(name.substr(0, name.size() - suffix));
    if (!IsValidGroupId(group.value())) {
      continue;
    }
    Result<std::string> data = ReadWholeFile(dir + "/" + name);
    if (!data.ok()) {
      return data.status();
    }
    size_t good = 0;
    GroupFile file;
    std::vector<int64_t> times;
    for (const auto& entry : DecodeEntries(*data, &good, &times)) {
      for (const CommittedOffset& c : entry) {
        file.offsets[c.tp] = c.offset;
      }
    }
    // Active at its latest entry's time; a file of entries without one (written before
    // retention, time -1) counts from now, so an upgrade expires nothing early.
    const int64_t latest = std::accumulate(times.begin(), times.end(), int64_t{-1},
                                           [](int64_t a, int64_t b) { return std::max(a, b); });
    file.active_ms = latest >= 0 ? latest : clock.NowMs();
    if (good < data->size()) {
      const int64_t cut = static_cast<int64_t>(data->size() - good);
      store->truncated_bytes_ += cut;
      LogWarn(kComponent, "offsets file " + name + ": cut " + std::to_string(cut) +
                              " bytes of torn or corrupt tail after " + std::to_string(good) +
                              " good bytes");
    }
    auto [it, inserted] = store->groups_.emplace(group, std::move(file));
    SLUICE_RETURN_IF_ERROR(store->CompactLocked(group, &it->second));
  }
  return store;
}

OffsetStore::~OffsetStore() = default;

std::string OffsetStore::PathOf(const GroupId& group) const {
  return dir_ + "/" + group.value() + kSuffix;
}

Status OffsetStore::CompactLocked(const GroupId& group, GroupFile* file) {
  std::vector<CommittedOffset> all;
  for (const auto& [tp, offset] : file->offsets) {
    all.push_back({tp, offset});
  }
  const std::string contents = EncodeEntry(all, file->active_ms);
  file->on_disk = false;
  SLUICE_RETURN_IF_ERROR(WriteFileAtomic(PathOf(group), contents));
  file->on_disk = true;
  file->size = static_cast<int64_t>(contents.size());
  return Status::Ok();
}

Status OffsetStore::Commit(const GroupId& group, const std::vector<CommittedOffset>& offsets) {
  if (!IsValidGroupId(group.value())) {
    return Status::InvalidArgument("invalid group id " + group.value());
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, created] = groups_.try_emplace(group);
  GroupFile& file = it->second;
  const int64_t now = clock_.NowMs();
  if (created) {
    file.active_ms = now;
  }
  if (!file.on_disk) {
    // New group (or one whose file could not be cut back): create it durably first.
    Status st = CompactLocked(group, &file);
    if (!st.ok()) {
      return Status::IOError(st.message());
    }
  }
  // Opened for this write only: see the header (no descriptor per group).
  const int fd = ::open(PathOf(group).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    file.on_disk = false;  // rewritten from memory by the next commit
    return Status::IOError("commit offsets of group " + group.value() + ": open: " +
                           std::strerror(errno));
  }
  const std::string entry = EncodeEntry(offsets, now);
  Status st = WriteAll(fd, entry);
  if (st.ok() && ::fdatasync(fd) != 0) {
    st = Status::IOError(std::string("fdatasync: ") + std::strerror(errno));
  }
  if (!st.ok()) {
    // Cut the torn entry so later commits are not hidden behind it on the next start; if even
    // that fails, the next commit rewrites the file from memory.
    if (::ftruncate(fd, file.size) != 0) {
      file.on_disk = false;
    }
    ::close(fd);
    return Status::IOError("commit offsets of group " + group.value() + ": " + st.message());
  }
  ::close(fd);
  file.size += static_cast<int64_t>(entry.size());
  file.active_ms = std::max(file.active_ms, now);
  for (const CommittedOffset& c : offsets) {
    file.offsets[c.tp] = c.offset;
  }
  if (file.size > kCompactBytes) {
    Status cs = CompactLocked(group, &file);
    if (!cs.ok()) {
      LogWarn(kComponent, "compacting offsets of group " + group.value() + ": " + cs.ToString());
    }
  }
  return Status::Ok();
}

std::vector<CommittedOffset> OffsetStore::Get(const GroupId& group,
                                              const std::optional<TopicName>& topic) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<CommittedOffset> out;
  auto it = groups_.find(group);
  if (it == groups_.end()) {
    return out;
  }
  for (const auto& [tp, offset] : it->second.offsets) {
    if (!topic.has_value() || tp.topic == *topic) {
      out.push_back({tp, offset});
    }
  }
  return out;
}

std::vector<GroupId> OffsetStore::Groups() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<GroupId> out;
  for (const auto& [group, file] : groups_) {
    out.push_back(group);
  }
  return out;
}

std::vector<GroupId> OffsetStore::Expire(int64_t retention_ms, const std::set<GroupId>& live) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_.NowMs();
  std::vector<GroupId> expired;
  int writes = 0;
  for (auto it = groups_.begin(); it != groups_.end();) {
    GroupFile& file = it->second;
    if (live.count(it->first) > 0) {
      // A group with members is active now. Written down once that is a tenth of the
      // retention old, so a restart (which forgets members) does not expire a group that was
      // in use: it expires a retention (less that tenth) after it was last seen with members.
      // At most kActiveWritesPerPass per pass (each is a synced rewrite under mu_, which
      // commits wait for); the rest are written by the next passes, well inside that tenth.
      if (now - file.active_ms > retention_ms / 10 && writes < kActiveWritesPerPass) {
        ++writes;
        file.active_ms = now;
        Status st = CompactLocked(it->first, &file);
        if (!st.ok()) {
          LogWarn(kComponent, "offsets of group " + it->first.value() + ": " + st.ToString());
        }
      }
      ++it;
      continue;
    }
    if (now - file.active_ms <= retention_ms) {
      ++it;
      continue;
    }
    // Unlinked, then the directory synced: a crash after the unlink cannot bring it back.
    if (::unlink(PathOf(it->first).c_str()) != 0 && errno != ENOENT) {
      LogWarn(kComponent, "expiring the offsets of group " + it->first.value() + ": unlink: " +
                              std::strerror(errno));
      ++it;
      continue;
    }
    expired.push_back(it->first);
    it = groups_.erase(it);
  }
  if (!expired.empty()) {
    Status synced = FsyncDir(dir_);
    if (!synced.ok()) {
      LogWarn(kComponent, "expiring group offsets: " + synced.ToString());
    }
  }
  return expired;
}

}  // namespace sluice::broker
