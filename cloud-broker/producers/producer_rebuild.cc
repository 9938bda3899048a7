// ProducerTable::RebuildFromLog: derives the idempotent-producer state from the partition logs,
// as Kafka rebuilds its producer state from the log when no snapshot is usable. Segment files
// are read batch by batch after TopicStore::Open recovered them (a torn tail is already cut).
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/producers/producer_entry.h"
#include "cloud-broker/producers/producer_table.h"
#include "core/record_batch.h"

namespace sluice::broker {
namespace {

bool ReadFull(int fd, uint64_t pos, size_t n, std::string* out) {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out->data() + done, n - done, static_cast<off_t>(pos + done));
    if (r <= 0) {
      return false;
    }
    done += static_cast<size_t>(r);
  }
  return true;
}

int64_t BigEndian(const std::string& b, size_t at, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) {
    v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  }
  return width == 4 ? static_cast<int32_t>(v) : static_cast<int64_t>(v);
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> files;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return files;
  }
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() == 24 && name.compare(20, 4, ".log") == 0) {
      files.push_back(dir + "/" + name);
    }
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());  // 20-digit names: text order is offset order
  return files;
}

}  // namespace

Result<uint64_t> ProducerTable::RebuildPartition(const std::string& topic, int32_t p,
                                                 const std::string& partition_dir) {
  std::vector<std::shared_ptr<Entry>> entries;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [pid, e] : entries_) {
      entries.push_back(e.first);
    }
  }
  for (const std::shared_ptr<Entry>& e : entries) {
    std::lock_guard<std::mutex> lock(e->mu);
    e->partitions.erase({topic, p});
  }
  uint64_t batches = 0;
  std::string head, bytes;
  for (const std::string& file : SegmentFiles(partition_dir)) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Status(StatusCode::kIOError, "cannot open " + file);
    }
    uint64_t pos = 0;
    while (ReadFull(fd, pos, kBatchLogOverhead, &head)) {
      int64_t length = BigEndian(head, 8, 4);
      if (length <= 0 || !ReadFull(fd, pos, kBatchLogOverhead + length, &bytes)) {
        break;  // end of the recovered log
      }
      pos += kBatchLogOverhead + static_cast<uint64_t>(length);
      Result<BatchHeader> h = ParseBatchHeader(bytes, /*verify_crc=*/false);
      if (!h.ok() || h->producer_id < 0) {
        continue;
      }
      Result<RecordBatch> b = DecodeBatch(bytes);
      if (!b.ok() || b->records.empty()) {
        continue;
      }
      AppendedRange r;
      r.first_seq = GatewaySeqOf(b->records.front());
      r.last_seq = GatewaySeqOf(b->records.back());
      r.base_offset = h->base_offset;
      r.last_offset = h->base_offset + h->last_offset_delta;
      if (r.first_seq < 0 || r.last_seq < 0) {
        continue;
      }
      Lock(h->producer_id).Appended(topic, p, r);
      ++batches;
    }
    ::close(fd);
  }
  return batches;
}

Result<uint64_t> ProducerTable::RebuildFromLog(const TopicStore& store) {
  uint64_t batches = 0;
  for (const Topic* t : store.Topics()) {
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      Result<uint64_t> n = RebuildPartition(t->name().value(), p, t->partition(p)->dir());
      if (!n.ok()) {
        return n.status();
      }
      batches += *n;
    }
  }
  return batches;
}

}  // namespace sluice::broker
