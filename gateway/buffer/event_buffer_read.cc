// EventBuffer's reader side: ReadBatch, Remove, DeadLetter, quarantine, and the in-memory
// record of which records of a partly delivered chunk are done.
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

// Every record sequence in a chunk (framing only, no decoding).
std::vector<uint64_t> ChunkIndex(std::string_view chunk) {
  std::vector<uint64_t> out;
  ChunkParser p(chunk);
  uint64_t seq = 0;
  std::string_view entry;
  while (p.Next(&seq, &entry)) {
    out.push_back(seq);
  }
  return out;
}

}  // namespace

Result<ReadBatchResult> EventBuffer::ReadBatch(const RegionId& region, uint64_t cursor,
                                               size_t max_records, size_t max_bytes) {
  ReadBatchResult out;
  out.next_cursor = cursor;
  const std::string& name = region.value();
  const std::string prefix = QueueKeyPrefix('q', name);
  const size_t key_size = prefix.size() + 8;
  size_t bytes = 0;
  std::lock_guard<std::mutex> lock(evict_mu_);
  RegionStats& rs = Stats(name);
  int64_t bad = 0;
  int64_t bad_bytes = 0;
  {
    leveldb::ReadOptions ro;
    ro.fill_cache = false;  // queue entries are read once
    std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
    bool stop = false;
    for (it->Seek(QueueKey('q', name, cursor)); !stop && it->Valid(); it->Next()) {
      leveldb::Slice k = it->key();
      if (!StartsWith(k, prefix)) {
        break;
      }
      if (k.size() != key_size) {
        continue;  // not a chunk key of this region (region names have no '/')
      }
      const uint64_t key_seq = GetBigEndian64(k.data() + prefix.size());
      std::string_view chunk(it->value().data(), it->value().size());
      auto oc = rs.open_chunks.find(key_seq);
      ChunkParser parser(chunk);
      uint64_t seq = 0;
      std::string_view entry;
      bool chunk_bad = false;
      bool touched = false;
      while (parser.Next(&seq, &entry)) {
        if (seq < cursor || (oc != rs.open_chunks.end() && oc->second.IsDone(seq))) {
          continue;
        }
        const size_t rec_bytes = ChunkRecordBytes(entry.size());
        if (out.records.size() >= max_records ||
            (!out.records.empty() && bytes + rec_bytes > max_bytes)) {
          out.full = true;
          stop = true;
          break;
        }
        BufferedRecord rec;
        rec.seq = seq;
        rec.bytes = rec_bytes;
        out.next_cursor = seq + 1;
        touched = true;
        if (!DecodeEntry(entry, seq, &rec.event).ok()) {
          chunk_bad = true;
          continue;
        }
        bytes += rec_bytes;
        out.records.push_back(std::move(rec));
      }
      if (parser.corrupt()) {
        chunk_bad = true;
      }
      std::string kept;
      if (chunk_bad) {
        // Quarantine from a copy: the rewrite must not alias the iterator's buffer.
        const std::string copy(chunk);
        std::vector<uint64_t> bad_seqs;
        int64_t n = QuarantineChunk(name, key_seq, copy, &kept, &bad_seqs, &bad_bytes);
        bad += n;
        if (n > 0 && oc != rs.open_chunks.end()) {
          for (uint64_t b : bad_seqs) {
            if (!oc->second.IsDone(b) && b >= oc->second.first &&
                b - oc->second.first < oc->second.done.size()) {
              oc->second.done[b - oc->second.first] = true;
              oc->second.live -= 1;
            }
          }
          if (!kept.empty() && oc->second.live <= 0) {
            // What is left was delivered already: the chunk is done.
            leveldb::WriteBatch done;
            done.Delete(k);
            Status ds = Write(leveldb::WriteOptions(), &done);
            if (!ds.ok()) {
              LogError("buffer", "delete of a delivered chunk failed: " + ds.ToString());
            }
          }
          if (kept.empty() || oc->second.live <= 0) {
            rs.open_chunks.erase(oc);
          }
          oc = rs.open_chunks.end();
          touched = false;  // indexed already
        }
      }
      if (!stop) {
        out.next_cursor = key_seq + 1;  // past the rest of this chunk (done records)
      }
      if (touched && oc == rs.open_chunks.end()) {
        // The first read of this chunk: index its records so Remove can tell when all are done.
        // A rewritten (quarantined) chunk is indexed from what was kept.
        AddOpenChunkLocked(rs, key_seq, chunk_bad ? std::string_view(kept) : chunk);
      }
    }
    if (!it->status().ok()) {
      return Status::IOError("buffer read failed: " + it->status().ToString());
    }
  }
  if (bad > 0) {
    Adjust(rs, -bad, -bad_bytes);
    CountQuarantined(static_cast<uint64_t>(bad));
  }
  return out;
}

int64_t EventBuffer::QuarantineChunk(const std::string& region, uint64_t key_seq,
                                     std::string_view chunk, std::string* kept,
                                     std::vector<uint64_t>* bad_seqs, int64_t* bytes) {
  leveldb::WriteBatch batch;
  int64_t n = 0;
  ChunkParser parser(chunk);
  uint64_t seq = 0;
  uint64_t last_good = 0;
  std::string_view entry;
  SensorEvent scratch;
  kept->clear();
  while (parser.Next(&seq, &entry)) {
    if (DecodeEntry(entry, seq, &scratch).ok()) {
      AppendChunkRecord(kept, seq, entry);
      last_good = seq;
      continue;
    }
    batch.Put(QueueKey('x', region, seq), leveldb::Slice(entry.data(), entry.size()));
    bad_seqs->push_back(seq);
    *bytes += static_cast<int64_t>(ChunkRecordBytes(entry.size()));
    ++n;
    QuarantineLog().Log(LogLevel::kError, "buffer", "quarantine",
                        "quarantining record " + std::to_string(seq) + " of region " + region +
                            ": CRC or encoding mismatch");
  }
  if (parser.corrupt()) {
    // Unreadable framing: the rest of the chunk cannot be split into records; kept whole.
    std::string_view rest = parser.rest();
    const uint64_t at = std::max(key_seq, last_good + 1);
    batch.Put(QueueKey('x', region, at), leveldb::Slice(rest.data(), rest.size()));
    *bytes += static_cast<int64_t>(rest.size());
    ++n;
    QuarantineLog().Log(LogLevel::kError, "buffer", "quarantine",
                        "quarantining the unreadable tail (" + std::to_string(rest.size()) +
                            " bytes) of chunk " + std::to_string(key_seq) + " of region " +
                            region);
  }
  const std::string key = QueueKey('q', region, key_seq);
  if (kept->empty()) {
    batch.Delete(key);
  } else {
    batch.Put(key, *kept);  // same key: still above every sequence it holds
  }
  Status s = Write(leveldb::WriteOptions(), &batch);
  if (!s.ok()) {
    // The reader moves past them anyway; they are met again after a restart.
    LogError("buffer", "quarantine write failed: " + s.ToString());
    bad_seqs->clear();
    *kept = std::string(chunk);
    return 0;
  }
  return n;
}

void EventBuffer::CountQuarantined(uint64_t n) {
  quarantined_ += n;
  if (quarantined_metric_ != nullptr) {
    quarantined_metric_->Inc(n);
  }
}

EventBuffer::OpenChunk* EventBuffer::FindChunkLocked(const std::string& region, RegionStats& rs,
                                                     uint64_t seq, uint64_t* key_seq) {
  auto it = rs.open_chunks.lower_bound(seq);
  if (it != rs.open_chunks.end() && it->second.first <= seq) {
    *key_seq = it->first;
    return &it->second;
  }
  // Not touched by a reader in this process (a test, or a caller holding records across a
  // restart): index the chunk from the DB.
  const std::string prefix = QueueKeyPrefix('q', region);
  leveldb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<leveldb::Iterator> dit(db_->NewIterator(ro));
  dit->Seek(QueueKey('q', region, seq));
  if (!dit->Valid() || !StartsWith(dit->key(), prefix) ||
      dit->key().size() != prefix.size() + 8) {
    return nullptr;
  }
  const uint64_t k = GetBigEndian64(dit->key().data() + prefix.size());
  ChunkParser first(std::string_view(dit->value().data(), dit->value().size()));
  uint64_t first_seq = 0;
  std::string_view entry;
  if (!first.Next(&first_seq, &entry) || first_seq > seq) {
    return nullptr;
  }
  *key_seq = k;
  return AddOpenChunkLocked(rs, k, std::string_view(dit->value().data(), dit->value().size()));
}

EventBuffer::OpenChunk* EventBuffer::AddOpenChunkLocked(RegionStats& rs, uint64_t key_seq,
                                                        std::string_view chunk) {
  auto index = ChunkIndex(chunk);
  if (index.empty()) {
    return nullptr;
  }
  OpenChunk c;
  c.first = index.front();
  c.done.assign(index.back() - c.first + 1, false);
  c.live = static_cast<int64_t>(index.size());
  return &rs.open_chunks.insert_or_assign(key_seq, std::move(c)).first->second;
}

std::pair<int64_t, int64_t> EventBuffer::MarkDoneLocked(
    const std::string& region, RegionStats& rs, const std::vector<const BufferedRecord*>& records,
    leveldb::WriteBatch* batch) {
  int64_t n = 0;
  int64_t bytes = 0;
  for (const BufferedRecord* r : records) {
    uint64_t key_seq = 0;
    OpenChunk* c = FindChunkLocked(region, rs, r->seq, &key_seq);
    if (c == nullptr || r->seq - c->first >= c->done.size() || c->done[r->seq - c->first]) {
      continue;  // gone already (evicted, quarantined) or done twice
    }
    c->done[r->seq - c->first] = true;
    c->live -= 1;
    ++n;
    bytes += static_cast<int64_t>(r->bytes);
    if (c->live <= 0) {
      batch->Delete(QueueKey('q', region, key_seq));
      rs.open_chunks.erase(key_seq);
      rs.max_removed = std::max(rs.max_removed, key_seq);
    }
  }
  return {n, bytes};
}

Status EventBuffer::Remove(const RegionId& region, const std::vector<BufferedRecord>& records) {
  std::lock_guard<std::mutex> lock(evict_mu_);
  RegionStats& rs = Stats(region.value());
  return RemoveLocked(region.value(), rs, LiveLocked(rs, records));
}

Status EventBuffer::RemoveLocked(const std::string& region, RegionStats& rs,
                                 const std::vector<const BufferedRecord*>& live) {
  leveldb::WriteBatch batch;
  auto [n, bytes] = MarkDoneLocked(region, rs, live, &batch);
  // Not synced: if a removal is lost in a crash, the records are sent again and the broker
  // skips them (idempotent producer).
  Status s = Write(leveldb::WriteOptions(), &batch);
  if (!s.ok()) {
    return Status::IOError("buffer remove failed: " + s.ToString());
  }
  rs.removed += static_cast<uint64_t>(n);
  Adjust(rs, -n, -bytes);
  return Status::Ok();
}

Status EventBuffer::DeadLetter(const RegionId& region, const std::vector<BufferedRecord>& records,
                               size_t* newly) {
  std::lock_guard<std::mutex> lock(evict_mu_);
  RegionStats& rs = Stats(region.value());
  std::vector<const BufferedRecord*> live = LiveLocked(rs, records);
  leveldb::WriteBatch batch;
  std::string value;
  size_t fresh = 0;
  for (const BufferedRecord* r : live) {
    const std::string key = QueueKey('d', region.value(), r->seq);
    if (db_->Get(leveldb::ReadOptions(), key, &value).ok()) {
      continue;  // dead-lettered before a restart, in a chunk whose other records were pending
    }
    value.clear();
    EncodeEntry(r->event, &value);
    batch.Put(key, value);
    ++fresh;
  }
  if (fresh > 0) {
    leveldb::WriteOptions wo;
    wo.sync = true;  // a dead letter is the only copy left: durable before it leaves the queue
    Status s = Write(wo, &batch);
    if (!s.ok()) {
      return Status::IOError("buffer dead-letter failed: " + s.ToString());
    }
  }
  if (newly != nullptr) {
    *newly = fresh;
  }
  // Then out of the queue as a removal: rewriting the same "d/" keys is harmless if a crash
  // comes in between and they are refused again.
  return RemoveLocked(region.value(), rs, live);
}

std::vector<uint64_t> EventBuffer::ListKeys(char space, const RegionId& region) {
  std::lock_guard<std::mutex> lock(evict_mu_);
  RegionStats& rs = Stats(region.value());
  std::vector<uint64_t> out;
  const std::string prefix = QueueKeyPrefix(space, region.value());
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 8) {
      continue;
    }
    const uint64_t key_seq = GetBigEndian64(it->key().data() + prefix.size());
    if (space != 'q') {
      out.push_back(key_seq);
      continue;
    }
    auto oc = rs.open_chunks.find(key_seq);
    ChunkParser p(std::string_view(it->value().data(), it->value().size()));
    uint64_t seq = 0;
    std::string_view entry;
    while (p.Next(&seq, &entry)) {
      if (oc == rs.open_chunks.end() || !oc->second.IsDone(seq)) {
        out.push_back(seq);
      }
    }
  }
  return out;
}

}  // namespace sluice::gateway
