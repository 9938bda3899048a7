// ProducerTable snapshots: the idempotent-producer state written at a clean broker stop and
// loaded at the next start instead of re-reading every log (RebuildFromLog, ~1 s per million
// records), as Kafka keeps producer-state snapshots beside its segments.
// The snapshot records each partition's log end offset when it was written. It is used only if
// the logs still end exactly there (nothing was appended, truncated or deleted since: after a
// clean stop nothing is); otherwise, or if the file is corrupt, the broker rebuilds from the log.
// It is deleted once loaded, so a broker that crashes later never trusts it.
// Format (little-endian): "SLPS" | u32 version=1 | u32 crc32c(rest) | rest:
//   u32 partitions { str topic | i32 partition | i64 end_offset }
//   u32 entries { i64 producer_id | str topic | i32 partition | i64 last_seq |
//                 u32 recent { i64 first_seq | i64 last_seq | i64 base_offset | i64 last_offset } }
//   str = u16 length + bytes.
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>

#include "cloud-broker/log/fs_util.h"
#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/producers/producer_entry.h"
#include "cloud-broker/producers/producer_table.h"
#include "core/crc32c.h"

namespace sluice::broker {
namespace {

constexpr char kMagic[4] = {'S', 'L', 'P', 'S'};
constexpr uint32_t kVersion = 1;

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}
void PutStr(std::string* out, const std::string& s) {
  Put<uint16_t>(out, static_cast<uint16_t>(s.size()));
  out->append(s);
}

class In {
 public:
  explicit In(std::string_view b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (b_.size() < sizeof(T)) {
      return false;
    }
    std::memcpy(v, b_.data(), sizeof(T));
    b_.remove_prefix(sizeof(T));
    return true;
  }
  bool GetStr(std::string* s) {
    uint16_t n = 0;
    if (!Get(&n) || b_.size() < n) {
      return false;
    }
    s->assign(b_.data(), n);
    b_.remove_prefix(n);
    return true;
  }
  bool done() const { return b_.empty(); }

 private:
  std::string_view b_;
};

}  // namespace

Status ProducerTable::WriteSnapshot(const TopicStore& store, const std::string& path) {
  std::string rest;
  const auto topics = store.Topics();
  uint32_t partitions = 0;
  for (const Topic* t : topics) {
    partitions += static_cast<uint32_t>(t->partition_count());
  }
  Put<uint32_t>(&rest, partitions);
  for (const Topic* t : topics) {
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      PutStr(&rest, t->name().value());
      Put<int32_t>(&rest, p);
      Put<int64_t>(&rest, t->partition(p)->next_offset());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string entries;
  uint32_t count = 0;
  for (const auto& [pid, slot] : entries_) {
    std::lock_guard<std::mutex> entry_lock(slot.first->mu);
    for (const auto& [key, st] : slot.first->partitions) {
      Put<int64_t>(&entries, pid);
      PutStr(&entries, key.first);
      Put<int32_t>(&entries, key.second);
      Put<int64_t>(&entries, st.last_seq);
      Put<uint32_t>(&entries, static_cast<uint32_t>(st.recent.size()));
      for (const AppendedRange& r : st.recent) {
        Put<int64_t>(&entries, r.first_seq);
        Put<int64_t>(&entries, r.last_seq);
        Put<int64_t>(&entries, r.base_offset);
        Put<int64_t>(&entries, r.last_offset);
      }
      ++count;
    }
  }
  Put<uint32_t>(&rest, count);
  rest += entries;
  std::string file(kMagic, sizeof(kMagic));
  Put<uint32_t>(&file, kVersion);
  Put<uint32_t>(&file, crc32c::Value(rest));
  file += rest;
  return WriteFileAtomic(path, file);
}

Result<bool> ProducerTable::LoadSnapshot(const TopicStore& store, const std::string& path,
                                         std::string* why_not) {
  Result<bool> loaded = LoadSnapshotFile(store, path, why_not);
  if (!loaded.ok() || !*loaded) {
    std::lock_guard<std::mutex> lock(mu_);  // start again from nothing: the caller rebuilds
    entries_.clear();
    lru_.clear();
  }
  return loaded;
}

Result<bool> ProducerTable::LoadSnapshotFile(const TopicStore& store, const std::string& path,
                                             std::string* why_not) {
  Result<std::string> file = ReadWholeFile(path);
  if (!file.ok()) {
    *why_not = file.status().code() == StatusCode::kNotFound ? "no snapshot of a clean stop"
                                                             : file.status().ToString();
    return false;
  }
  ::unlink(path.c_str());  // used at most once: a later crash must not find it
  std::string_view b(*file);
  uint32_t version = 0, crc = 0;
  if (b.size() < 12 || std::memcmp(b.data(), kMagic, 4) != 0) {
    *why_not = "snapshot has no SLPS header";
    return false;
  }
  std::memcpy(&version, b.data() + 4, 4);
  std::memcpy(&crc, b.data() + 8, 4);
  b.remove_prefix(12);
  if (version != kVersion || crc != crc32c::Value(b)) {
    *why_not = "snapshot version or CRC mismatch";
    return false;
  }
  In in(b);
  std::map<std::pair<std::string, int32_t>, int64_t> ends;
  uint32_t partitions = 0;
  if (!in.Get(&partitions)) {
    *why_not = "snapshot truncated";
    return false;
  }
  for (uint32_t i = 0; i < partitions; ++i) {
    std::string topic;
    int32_t p = 0;
    int64_t end = 0;
    if (!in.GetStr(&topic) || !in.Get(&p) || !in.Get(&end)) {
      *why_not = "snapshot truncated";
      return false;
    }
    ends[{topic, p}] = end;
  }
  size_t live = 0;
  for (const Topic* t : store.Topics()) {
    for (int32_t p = 0; p < t->partition_count(); ++p, ++live) {
      auto it = ends.find({t->name().value(), p});
      if (it == ends.end() || it->second != t->partition(p)->next_offset()) {
        *why_not = "log " + t->name().value() + "-" + std::to_string(p) +
                   " changed since the snapshot";
        return false;
      }
    }
  }
  if (live != ends.size()) {
    *why_not = "topics changed since the snapshot";
    return false;
  }
  uint32_t count = 0;
  if (!in.Get(&count)) {
    *why_not = "snapshot truncated";
    return false;
  }
  for (uint32_t i = 0; i < count; ++i) {
    int64_t pid = 0;
    std::string topic;
    int32_t p = 0;
    PartitionProducerState st;
    uint32_t recent = 0;
    if (!in.Get(&pid) || !in.GetStr(&topic) || !in.Get(&p) || !in.Get(&st.last_seq) ||
        !in.Get(&recent) || recent > kRecentBatches) {
      *why_not = "snapshot truncated";
      return false;
    }
    for (uint32_t k = 0; k < recent; ++k) {
      AppendedRange r;
      if (!in.Get(&r.first_seq) || !in.Get(&r.last_seq) || !in.Get(&r.base_offset) ||
          !in.Get(&r.last_offset)) {
        *why_not = "snapshot truncated";
        return false;
      }
      st.recent.push_back(r);
    }
    Lock(pid).State(topic, p) = std::move(st);
  }
  if (!in.done()) {
    *why_not = "snapshot has trailing bytes";
    return false;
  }
  return true;
}

}  // namespace sluice::broker
