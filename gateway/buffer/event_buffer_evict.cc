// EventBuffer's bounds and start-up check: the verify scan at open (CRC of every queued entry,
// corrupt ones to quarantine), eviction for max_bytes (drop_oldest) and TTL, and compaction of
// removed ranges.
#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>

#include <cstring>

#include "core/logging.h"
#include "gateway/buffer/event_buffer.h"
#include "gateway/buffer/event_codec.h"

namespace sluice::gateway {
namespace {

constexpr const char* kLog = "buffer";
constexpr size_t kMaxBatchOps = 10000;  // bounds the memory of one eviction/quarantine write

RateLimitedLog& DropLog() {
  static RateLimitedLog log;
  return log;
}

}  // namespace

Status EventBuffer::VerifyAtOpen(uint64_t* next_out) {
  // next_seq: the meta key, but never below a sequence found on disk (belt and braces).
  uint64_t next = 0;
  std::string meta;
  leveldb::Status s = db_->Get(leveldb::ReadOptions(), kNextSeqKey, &meta);
  if (s.ok() && meta.size() == 8) {
    next = GetBigEndian64(meta.data());
  } else if (!s.ok() && !s.IsNotFound()) {
    return Status::IOError("buffer meta read failed: " + s.ToString());
  }
  // One streaming scan: initialises the counters and verifies every queued record (CRC-32C and
  // encoding). A chunk holding corrupt records is rewritten without them, which move to "x/";
  // nothing is kept in memory but the counters and the chunk at hand.
  uint64_t bad_total = 0;
  leveldb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  SensorEvent scratch;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    leveldb::Slice k = it->key();
    if (k.size() < 11 || k[1] != '/' || k[k.size() - 9] != '/') {
      continue;
    }
    const uint64_t key_seq = GetBigEndian64(k.data() + k.size() - 8);
    if (key_seq + 1 > next) {
      next = key_seq + 1;
    }
    if (k[0] == 'r') {
      residency_quarantined_ += 1;
      continue;
    }
    if (k[0] != 'q') {
      continue;
    }
    std::string region(k.data() + 2, k.size() - 11);
    std::string_view chunk(it->value().data(), it->value().size());
    ChunkParser parser(chunk);
    uint64_t seq = 0;
    uint64_t first = 0;
    std::string_view entry;
    int64_t records = 0;
    int64_t bytes = 0;
    bool chunk_bad = false;
    while (parser.Next(&seq, &entry)) {
      if (!DecodeEntry(entry, seq, &scratch).ok()) {
        chunk_bad = true;
        continue;
      }
      if (records == 0) {
        first = seq;
      }
      ++records;
      bytes += static_cast<int64_t>(ChunkRecordBytes(entry.size()));
    }
    if (parser.corrupt() || chunk_bad) {
      const std::string copy(chunk);
      std::string kept;
      std::vector<uint64_t> bad_seqs;
      int64_t bad_bytes = 0;
      const int64_t n = QuarantineChunk(region, key_seq, copy, &kept, &bad_seqs, &bad_bytes);
      bad_total += static_cast<uint64_t>(n);
      LogError(kLog, "open: quarantined " + std::to_string(n) + " record(s) of chunk " +
                         std::to_string(key_seq) + " of region " + region);
    }
    if (records == 0) {
      continue;
    }
    RegionStats& rs = Stats(region);
    if (rs.records.load() == 0) {
      rs.head_hint = first;  // no live record of this region below
    }
    Adjust(rs, records, bytes);
  }
  if (!it->status().ok()) {
    // A damaged table: report it, keep what was readable (the forwarder's reads skip it too).
    LogError(kLog, "buffer scan at open stopped: " + it->status().ToString());
  }
  it.reset();
  if (bad_total > 0) {
    CountQuarantined(bad_total);
  }
  *next_out = next;
  return Status::Ok();
}

void EventBuffer::CountDrop(const char* reason, uint64_t n) {
  if (n == 0) {
    return;
  }
  bool ttl = std::strcmp(reason, "ttl") == 0;
  (ttl ? expired_ : dropped_oldest_) += n;
  Counter* c = ttl ? expired_metric_ : dropped_oldest_metric_;
  if (c != nullptr) {
    c->Inc(n);
  }
  DropLog().Log(LogLevel::kWarn, kLog, reason,
                std::string("dropped ") + std::to_string(n) + " buffered records (" + reason + ")");
}

uint64_t EventBuffer::EvictPrefixLocked(const std::string& region, int64_t goal_bytes,
                                        int64_t cutoff_ms, int64_t* freed) {
  RegionStats& rs = Stats(region);
  const std::string prefix = QueueKeyPrefix('q', region);
  const size_t key_size = prefix.size() + 8;
  uint64_t n = 0;
  *freed = 0;
  bool done = false;
  SensorEvent e;
  while (!done) {
    leveldb::WriteBatch batch;
    size_t ops = 0;
    int64_t batch_bytes = 0;
    int64_t batch_records = 0;
    uint64_t last = 0;
    std::vector<uint64_t> evicted;  // chunk keys
    {
      leveldb::ReadOptions ro;
      ro.fill_cache = false;
      std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
      done = true;
      for (it->Seek(QueueKey('q', region, rs.head_hint)); it->Valid(); it->Next()) {
        leveldb::Slice k = it->key();
        if (k.size() != key_size || std::memcmp(k.data(), prefix.data(), prefix.size()) != 0) {
          break;
        }
        const uint64_t key_seq = GetBigEndian64(k.data() + prefix.size());
        if (cutoff_ms < 0 && *freed + batch_bytes >= goal_bytes) {
          done = true;
          break;
        }
        // What of the chunk is still live: all of it unless a reader marked records done.
        auto oc = rs.open_chunks.find(key_seq);
        ChunkParser parser(std::string_view(it->value().data(), it->value().size()));
        uint64_t seq = 0;
        std::string_view entry;
        int64_t live = 0;
        int64_t live_bytes = 0;
        bool young = false;
        while (parser.Next(&seq, &entry)) {
          if (oc != rs.open_chunks.end() && oc->second.IsDone(seq)) {
            continue;
          }
          // The chunk expires with its youngest record; one that cannot be dated stops the
          // scan (the forwarder quarantines it).
          if (cutoff_ms >= 0 && (!DecodeEntry(entry, seq, &e).ok() || e.ingest_ms >= cutoff_ms)) {
            young = true;
            break;
          }
          ++live;
          live_bytes += static_cast<int64_t>(ChunkRecordBytes(entry.size()));
        }
        if (young || (cutoff_ms >= 0 && parser.corrupt())) {
          break;
        }
        batch.Delete(k);
        evicted.push_back(key_seq);
        batch_bytes += live_bytes;
        batch_records += live;
        last = key_seq;
        if (++ops >= kMaxBatchOps) {
          done = false;
          break;
        }
      }
    }
    if (ops == 0) {
      break;
    }
    Status s = Write(leveldb::WriteOptions(), &batch);
    if (!s.ok()) {
      LogError(kLog, "eviction write failed: " + s.ToString());
      break;
    }
    for (uint64_t key_seq : evicted) {
      rs.open_chunks.erase(key_seq);
    }
    Adjust(rs, -batch_records, -batch_bytes);
    rs.dropped_below = std::max(rs.dropped_below, last + 1);
    rs.head_hint = std::max(rs.head_hint, last + 1);
    n += static_cast<uint64_t>(batch_records);
    *freed += batch_bytes;
  }
  return n;
}

void EventBuffer::MakeRoom(int64_t bytes) {
  std::lock_guard<std::mutex> lock(evict_mu_);
  uint64_t n = 0;
  int64_t left = bytes;
  while (left > 0) {
    // The largest region queue gives up its oldest records.
    std::string largest;
    int64_t largest_bytes = 0;
    {
      std::lock_guard<std::mutex> sl(stats_mu_);
      for (const auto& [r, st] : stats_) {
        if (st->bytes.load() > largest_bytes) {
          largest_bytes = st->bytes.load();
          largest = r;
        }
      }
    }
    if (largest_bytes <= 0) {
      break;  // nothing left to drop: this commit goes over max_bytes by itself
    }
    int64_t freed = 0;
    n += EvictPrefixLocked(largest, std::min(left, largest_bytes), -1, &freed);
    if (freed == 0) {
      break;
    }
    left -= freed;
  }
  CountDrop("drop_oldest", n);
}

uint64_t EventBuffer::ExpireOlderThan(int64_t cutoff_ms) {
  std::vector<std::string> regions;
  {
    std::lock_guard<std::mutex> sl(stats_mu_);
    for (const auto& [r, st] : stats_) {
      if (st->records.load() > 0) {
        regions.push_back(r);
      }
    }
  }
  std::lock_guard<std::mutex> lock(evict_mu_);
  uint64_t n = 0;
  for (const std::string& r : regions) {
    int64_t freed = 0;
    n += EvictPrefixLocked(r, 0, cutoff_ms, &freed);
  }
  CountDrop("ttl", n);
  return n;
}

std::vector<const BufferedRecord*> EventBuffer::LiveLocked(
    RegionStats& rs, const std::vector<BufferedRecord>& records) {
  std::vector<const BufferedRecord*> live;
  live.reserve(records.size());
  for (const BufferedRecord& r : records) {
    if (r.seq >= rs.dropped_below) {
      live.push_back(&r);
    }
  }
  return live;
}

void EventBuffer::CompactRemoved(uint64_t min_removed) {
  std::vector<std::pair<std::string, uint64_t>> todo;
  {
    std::lock_guard<std::mutex> lock(evict_mu_);
    std::lock_guard<std::mutex> sl(stats_mu_);
    for (auto& [r, st] : stats_) {
      if (st->removed >= min_removed) {
        todo.emplace_back(r, st->max_removed);
        st->removed = 0;
      }
    }
  }
  for (const auto& [r, max_seq] : todo) {
    std::string begin = QueueKeyPrefix('q', r);
    std::string end = QueueKey('q', r, max_seq + 1);
    leveldb::Slice b(begin);
    leveldb::Slice e(end);
    db_->CompactRange(&b, &e);  // drops the tombstones of delivered records
  }
}

}  // namespace sluice::gateway
