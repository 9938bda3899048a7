// EventBuffer's residency failover support: Reroute (records of one region queue move to
// another in one synced write, with new sequences) and MoveOutLocked (their persistent removal
// from the old queue's chunks).
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <map>
#include <set>

#include "gateway/buffer/event_buffer.h"
#include "gateway/buffer/event_codec.h"

namespace sluice::gateway {

void EventBuffer::Reroute(const RegionId& from, std::vector<BufferedRecord> records,
                          const RegionId& to, AppendCallback done) {
  Request req;
  req.moved_from = from.value();
  {
    // Only what is still live: an evicted record must not come back in another queue.
    std::lock_guard<std::mutex> lock(evict_mu_);
    RegionStats& rs = Stats(from.value());
    for (const BufferedRecord* r : LiveLocked(rs, records)) {
      EncodeEntry(r->event, &req.blob);
      req.entries.emplace_back(to.value(), req.blob.size());
      BufferedRecord key;
      key.seq = r->seq;
      key.bytes = r->bytes;
      req.moved.push_back(std::move(key));
    }
  }
  if (req.moved.empty()) {
    done(Status::Ok(), 0);
    return;
  }
  req.done = std::move(done);
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    refused = RefusalLocked();
    if (refused.ok()) {
      queued_events_ += req.entries.size();  // bytes 0: the move adds nothing overall
      ++acknowledged_queued_;
      queue_.push_back(std::move(req));
      cv_.notify_one();
      return;
    }
  }
  req.done(refused, 0);
}

std::pair<int64_t, int64_t> EventBuffer::MoveOutLocked(
    const std::string& region, RegionStats& rs, const std::vector<const BufferedRecord*>& records,
    leveldb::WriteBatch* batch) {
  // Which chunk holds each record, found before MarkDoneLocked may forget fully done chunks.
  std::map<uint64_t, std::set<uint64_t>> by_chunk;  // chunk key -> sequences moving out
  for (const BufferedRecord* r : records) {
    uint64_t key_seq = 0;
    if (FindChunkLocked(region, rs, r->seq, &key_seq) != nullptr) {
      by_chunk[key_seq].insert(r->seq);
    }
  }
  const std::pair<int64_t, int64_t> done = MarkDoneLocked(region, rs, records, batch);
  for (const auto& [key_seq, seqs] : by_chunk) {
    if (rs.open_chunks.count(key_seq) == 0) {
      continue;  // every record of it is done: MarkDoneLocked deleted it
    }
    const std::string key = QueueKey('q', region, key_seq);
    std::string value;
    if (!db_->Get(leveldb::ReadOptions(), key, &value).ok()) {
      continue;
    }
    std::string kept;
    ChunkParser parser(value);
    uint64_t seq = 0;
    std::string_view entry;
    while (parser.Next(&seq, &entry)) {
      if (seqs.count(seq) == 0) {
        AppendChunkRecord(&kept, seq, entry);
      }
    }
    if (parser.corrupt()) {
      kept.append(parser.rest());  // quarantined when read, as before
    }
    // Same key: still at or above every sequence it holds.
    if (kept.empty()) {
      batch->Delete(key);
    } else {
      batch->Put(key, kept);
    }
  }
  return done;
}

}  // namespace sluice::gateway
