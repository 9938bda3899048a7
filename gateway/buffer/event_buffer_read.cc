// EventBuffer's reader side: ReadBatch, Remove, DeadLetter, quarantine.
#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cstring>

#include "core/logging.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/buffer/event_codec.h"

namespace sluice::gateway {
namespace {

bool StartsWith(const leveldb::Slice& s, const std::string& prefix) {
  return s.size() >= prefix.size() && memcmp(s.data(), prefix.data(), prefix.size()) == 0;
}

RateLimitedLog& QuarantineLog() {
  static RateLimitedLog log;
  return log;
}

}  // namespace

Result<ReadBatchResult> EventBuffer::ReadBatch(const RegionId& region, uint64_t cursor,
                                               size_t max_records, size_t max_bytes) {
  ReadBatchResult out;
  out.next_cursor = cursor;
  const std::string prefix = QueueKeyPrefix('q', region.value());
  const size_t key_size = prefix.size() + 8;
  std::vector<std::string> bad_keys;
  std::vector<std::string> bad_values;
  size_t bytes = 0;
  {
    leveldb::ReadOptions ro;
    ro.fill_cache = false;  // queue entries are read once
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
    for (it->Seek(QueueKey('q', region.value(), cursor)); it->Valid(); it->Next()) {
      leveldb::Slice k = it->key();
      if (!StartsWith(k, prefix)) {
        break;
      }
      if (out.records.size() >= max_records) {
        out.full = true;
        break;
      }
      size_t entry_bytes = k.size() + it->value().size();
      if (!out.records.empty() && bytes + entry_bytes > max_bytes) {
        out.full = true;
        break;
      }
      if (k.size() != key_size) {
        // A key of another region whose name extends this one ("eu" vs "eu/x" cannot happen:
        // region names have no '/'); skip defensively.
        continue;
      }
      uint64_t seq = GetBigEndian64(k.data() + prefix.size());
      out.next_cursor = seq + 1;
      BufferedRecord rec;
      rec.seq = seq;
      rec.bytes = entry_bytes;
      std::string_view v(it->value().data(), it->value().size());
      Status st = DecodeEntry(v, seq, &rec.event);
      if (!st.ok()) {
        bad_keys.push_back(k.ToString());
        bad_values.push_back(it->value().ToString());
        QuarantineLog().Log(LogLevel::kError, "buffer", "quarantine",
                            "quarantining entry " + std::to_string(seq) + " of region " +
                                region.value() + ": " + st.message());
        continue;
      }
      bytes += entry_bytes;
      out.records.push_back(std::move(rec));
    }
    if (!it->status().ok()) {
      return Status::IOError("buffer read failed: " + it->status().ToString());
    }
  }
  if (!bad_keys.empty()) {
    Quarantine(region.value(), bad_keys, bad_values);
  }
  return out;
}

void EventBuffer::Quarantine(const std::string& region, const std::vector<std::string>& keys,
                             const std::vector<std::string>& values) {
  std::lock_guard<std::mutex> lock(evict_mu_);
  RegionStats& rs = Stats(region);
  leveldb::WriteBatch batch;
  int64_t bytes = 0;
  int64_t n = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (GetBigEndian64(keys[i].data() + keys[i].size() - 8) < rs.dropped_below) {
      continue;  // evicted meanwhile (and counted there)
    }
    std::string xkey = keys[i];
    xkey[0] = 'x';
    batch.Put(xkey, values[i]);
    batch.Delete(keys[i]);
    bytes += static_cast<int64_t>(keys[i].size() + values[i].size());
    ++n;
  }
  leveldb::Status s = db_->Write(leveldb::WriteOptions(), &batch);
  if (!s.ok()) {
    // The cursor has moved past them anyway; they will be retried after a restart.
    LogError("buffer", "quarantine write failed: " + s.ToString());
    return;
  }
  Adjust(rs, -n, -bytes);
  quarantined_ += static_cast<uint64_t>(n);
  if (quarantined_metric_ != nullptr) {
    quarantined_metric_->Inc(static_cast<uint64_t>(n));
  }
}

Status EventBuffer::Remove(const RegionId& region, const std::vector<BufferedRecord>& records) {
  std::lock_guard<std::mutex> lock(evict_mu_);
  RegionStats& rs = Stats(region.value());
  std::vector<const BufferedRecord*> live = LiveLocked(rs, records);
  leveldb::WriteBatch batch;
  int64_t bytes = 0;
  for (const BufferedRecord* r : live) {
    batch.Delete(QueueKey('q', region.value(), r->seq));
    bytes += static_cast<int64_t>(r->bytes);
    rs.max_removed = std::max(rs.max_removed, r->seq);
  }
  // Not synced: if a removal is lost in a crash, the records are sent again (at-least-once).
  leveldb::Status s = db_->Write(leveldb::WriteOptions(), &batch);
  if (!s.ok()) {
    return Status::IOError("buffer remove failed: " + s.ToString());
  }
  rs.removed += live.size();
  Adjust(rs, -static_cast<int64_t>(live.size()), -bytes);
  return Status::Ok();
}

Status EventBuffer::DeadLetter(const RegionId& region,
                               const std::vector<BufferedRecord>& records) {
  std::lock_guard<std::mutex> lock(evict_mu_);
  RegionStats& rs = Stats(region.value());
  std::vector<const BufferedRecord*> live = LiveLocked(rs, records);
  leveldb::WriteBatch batch;
  int64_t bytes = 0;
  std::string value;
  for (const BufferedRecord* r : live) {
    value.clear();
    EncodeEntry(r->event, &value);
    batch.Put(QueueKey('d', region.value(), r->seq), value);
    batch.Delete(QueueKey('q', region.value(), r->seq));
    bytes += static_cast<int64_t>(r->bytes);
  }
  leveldb::WriteOptions wo;
  wo.sync = true;  // a dead letter is the only copy left
  leveldb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) {
    return Status::IOError("buffer dead-letter failed: " + s.ToString());
  }
  Adjust(rs, -static_cast<int64_t>(live.size()), -bytes);
  return Status::Ok();
}

std::vector<uint64_t> EventBuffer::ListKeys(char space, const RegionId& region) {
  std::vector<uint64_t> out;
  const std::string prefix = QueueKeyPrefix(space, region.value());
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    if (it->key().size() == prefix.size() + 8) {
      out.push_back(GetBigEndian64(it->key().data() + prefix.size()));
    }
  }
  return out;
}

}  // namespace sluice::gateway
