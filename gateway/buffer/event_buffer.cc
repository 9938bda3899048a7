#include "gateway/buffer/event_buffer.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>
#include <leveldb/write_batch.h>
#include <malloc.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <tuple>

#include "core/logging.h"
#include "core/thread_name.h"
#include "gateway/buffer/event_codec.h"
#include "gateway/buffer/pread_env.h"

namespace sluice::gateway {
namespace {

constexpr const char* kLog = "buffer";
// Marks a request entry bound for the residency quarantine; the reason follows it. Region
// names are validated ([a-z0-9-]), so none starts with it.
constexpr char kRefusedMark = '\x01';
// Sequences skipped at each open in sync: interval mode: far more than one interval can use.
constexpr uint64_t kIntervalSeqJump = uint64_t{1} << 32;
// The commit thread gives freed heap back to the OS after this long without appends or
// removals, if at least kTrimAfterBytes were appended or removed since it last did.
constexpr auto kIdleBeforeTrim = std::chrono::seconds(1);
constexpr int64_t kTrimAfterBytes = int64_t{1} << 20;
// How stale the commit thread's free-space figure may get (CheckFreeSpaceForCommit).
constexpr auto kFreeSpaceRecheck = std::chrono::milliseconds(100);

Status FromLevelDb(const leveldb::Status& s) {
  if (s.ok()) {
    return Status::Ok();
  }
  if (s.IsCorruption()) {
    return Status::Corruption(s.ToString());
  }
  // An I/O failure (disk full, read-only) is retryable from the caller's point of view.
  return Status::IOError(s.ToString());
}

}  // namespace

EventBuffer::EventBuffer(const BufferOptions& options) : options_(options) {}

Result<std::unique_ptr<EventBuffer>> EventBuffer::Open(const BufferOptions& options) {
  std::unique_ptr<EventBuffer> buf(new EventBuffer(options));
  Status st = buf->Init();
  if (!st.ok()) {
    return st;
  }
  return buf;
}

Status EventBuffer::Init() {
  leveldb::Options o;
  o.create_if_missing = true;
  o.write_buffer_size = options_.write_buffer_bytes;
  // Tables are read with pread(), not mmap(): mapped pages of every table the verify scan and
  // the drain touch would count in the gateway's resident memory, growing with the backlog.
  o.env = options_.env != nullptr ? options_.env : PreadTableEnv();
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, options_.path, &db);
  if (!s.ok()) {
    return Status::IOError("cannot open buffer at " + options_.path + ": " + s.ToString());
  }
  db_.reset(db);
  if (options_.metrics != nullptr) {
    quarantined_metric_ = &options_.metrics->GetCounter(
        "sluice_gateway_quarantined_total", "Corrupt buffer entries moved to quarantine");
  }

  if (options_.metrics != nullptr) {
    auto drop = [&](const char* reason) {
      return &options_.metrics->GetCounter("sluice_gateway_dropped_total",
                                           "Refused or dropped events/requests",
                                           {{"source", "buffer"}, {"reason", reason}});
    };
    dropped_oldest_metric_ = drop("drop_oldest");
    expired_metric_ = drop("ttl");
  }
  uint64_t next = 0;
  SLUICE_RETURN_IF_ERROR(VerifyAtOpen(&next));
  // Opening replayed the write-ahead log into a memtable (up to write_buffer_bytes) and flushed
  // it; the verify scan decoded every record. That memory is free now, but glibc keeps it
  // (core/allocator_tuning.h raises M_TRIM_THRESHOLD for request bodies): give it back once.
  malloc_trim(0);
  churn_bytes_ = 0;
  if (options_.sync == SyncMode::kInterval) {
    // An OS crash can lose the last interval's unsynced writes, m/next_seq included, after the
    // broker already stored some of those sequences; handing them out again would make the
    // broker skip new events as duplicates. Jump past anything one interval could have used.
    next += kIntervalSeqJump;
    std::string v;
    PutBigEndian64(&v, next);
    leveldb::WriteOptions wo;
    wo.sync = true;
    leveldb::WriteBatch meta;
    meta.Put(kNextSeqKey, v);
    Status ws = Write(wo, &meta);
    if (!ws.ok()) {
      return Status::IOError("buffer meta write failed: " + ws.ToString());
    }
  }
  next_seq_ = next;
  commit_thread_ = std::thread([this] {
    SetCurrentThreadName("buf-commit");
    CommitLoop();
  });
  return Status::Ok();
}

EventBuffer::~EventBuffer() {
  StopAppends();
  db_.reset();
}

void EventBuffer::Append(std::vector<PendingEvent> events, AppendCallback done) {
  Append(std::move(events), std::move(done), options_.overflow);
}

void EventBuffer::Append(std::vector<PendingEvent> events, AppendCallback done,
                         OverflowPolicy policy, AppendWait wait) {
  // Encode + CRC on the caller's thread: the commit thread only builds the WriteBatch.
  Request req;
  req.entries.reserve(events.size());
  for (PendingEvent& pe : events) {
    const size_t before = req.blob.size();
    EncodeEntry(pe.event, &req.blob);
    if (!pe.refused_reason.empty()) {
      // Quarantined, not queued: bounded by its caller, outside max_bytes and the queues.
      std::string mark(1, kRefusedMark);
      for (char c : pe.refused_reason) {
        mark.push_back(c == '\n' ? ' ' : c);
      }
      req.entries.emplace_back(std::move(mark), req.blob.size());
      continue;
    }
    req.bytes += static_cast<int64_t>(ChunkRecordBytes(req.blob.size() - before));
    req.entries.emplace_back(pe.region.value(), req.blob.size());
  }
  req.done = std::move(done);
  const size_t n = req.entries.size();
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    refused = RefusalLocked();
    if (!refused.ok()) {
      // stopping or a failed write: nothing is queued
    } else if (queued_events_ + n > options_.max_queued_events && queued_events_ > 0) {
      // Over the limit: refuse (unless the queue is empty, so one huge request still fits).
      refused = Status::ResourceExhausted("buffer commit queue is full");
    } else if (policy == OverflowPolicy::kReject && options_.max_bytes > 0 &&
               total_bytes_.load() + queued_bytes_ + req.bytes > options_.max_bytes) {
      refused = Status::ResourceExhausted(
          "buffer full: " + std::to_string(total_bytes_.load() + queued_bytes_) + " of " +
          std::to_string(options_.max_bytes) + " bytes used");
    } else {
      const bool lazy =
          wait == AppendWait::kUnacknowledged && options_.unacknowledged_commit_delay_ms > 0;
      const bool first = queue_.empty();
      if (first) {
        unacknowledged_deadline_ =
            std::chrono::steady_clock::now() +
            std::chrono::milliseconds(options_.unacknowledged_commit_delay_ms);
      }
      queued_events_ += n;
      queued_bytes_ += req.bytes;
      queue_.push_back(std::move(req));
      if (!lazy) {
        ++acknowledged_queued_;
      }
      // An unacknowledged append only wakes the commit thread to start its delay or once enough
      // are queued: no futex wake per QoS 0 message.
      if (!lazy || first || queued_events_ >= options_.unacknowledged_commit_events) {
        cv_.notify_one();
      }
      return;
    }
  }
  req.done(refused, 0);
}

Status EventBuffer::RefusalLocked() const {
  if (stopping_) {
    return Status::Unavailable("buffer is shutting down");
  }
  return write_failed_.load() ? write_failure() : Status::Ok();
}

std::future<Status> EventBuffer::Append(std::vector<PendingEvent> events) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> f = promise->get_future();
  Append(std::move(events), [promise](const Status& st, uint64_t) { promise->set_value(st); });
  return f;
}

void EventBuffer::StopAppends() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (commit_thread_.joinable()) {
    commit_thread_.join();
  }
}

void EventBuffer::AddCommitListener(const RegionId& region, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.emplace_back(region.value(), std::move(fn));
}

void EventBuffer::CommitLoop() {
  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::milliseconds(options_.sync_interval_ms);
  auto last_sync = Clock::now();
  int64_t churn_seen = -1;  // churn_bytes_ at the previous idle wake-up
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    const auto has_work = [&] { return !queue_.empty() || stopping_; };
    if (options_.sync == SyncMode::kInterval && dirty_) {
      cv_.wait_until(lock, last_sync + interval, has_work);
    } else if (!cv_.wait_for(lock, kIdleBeforeTrim, has_work)) {
      // After a burst of appends or a drain, once nothing was appended or removed for a whole
      // period: return the freed memtables and buffers to the OS (glibc keeps them, see
      // core/allocator_tuning.h). Never under load, where they are reused.
      const int64_t churn = churn_bytes_.load();
      if (churn >= kTrimAfterBytes && churn == churn_seen) {
        churn_bytes_ -= churn;
        churn_seen = -1;
        lock.unlock();
        // Flush the memtable (up to write_buffer_bytes of heap) to a table: CompactRange always
        // flushes it first, and this range holds no key ('~' sorts after every key space), so
        // no table is rewritten. Idle only, so no commit waits behind it.
        const leveldb::Slice lo("~idle-flush-a");
        const leveldb::Slice hi("~idle-flush-b");
        db_->CompactRange(&lo, &hi);
        malloc_trim(0);
        lock.lock();
      } else {
        churn_seen = churn;
      }
      continue;
    }
    if (options_.sync == SyncMode::kInterval && dirty_ &&
        (Clock::now() >= last_sync + interval || (stopping_ && queue_.empty()))) {
      // The periodic sync: a tiny synced write flushes the log and everything before it.
      lock.unlock();
      std::string v;
      PutBigEndian64(&v, next_seq_.load());
      leveldb::WriteOptions wo;
      wo.sync = true;
      leveldb::WriteBatch meta;
      meta.Put(kNextSeqKey, v);
      Status st = Write(wo, &meta);
      if (!st.ok()) {
        LogError(kLog, "periodic sync failed: " + st.ToString());
      }
      last_sync = Clock::now();
      lock.lock();
      dirty_ = false;
    }
    if (queue_.empty()) {
      if (stopping_ && !dirty_) {
        return;
      }
      continue;
    }
    if (acknowledged_queued_ == 0 && !stopping_) {
      // Only appends nobody waits for: let more join this commit, up to their delay.
      cv_.wait_until(lock, unacknowledged_deadline_, [&] {
        return acknowledged_queued_ > 0 || stopping_ ||
               queued_events_ >= options_.unacknowledged_commit_events;
      });
    }
    std::vector<Request> reqs;
    reqs.swap(queue_);
    acknowledged_queued_ = 0;
    queued_events_ = 0;
    int64_t batch_bytes = queued_bytes_;
    queued_bytes_ = 0;
    lock.unlock();
    const Status space = CheckFreeSpaceForCommit(batch_bytes);
    if (!space.ok()) {
      // Refused whole, before LevelDB could meet ENOSPC half-way through its log record.
      for (Request& r : reqs) {
        r.done(space, 0);
      }
    } else {
      if (options_.max_bytes > 0 && total_bytes_.load() + batch_bytes > options_.max_bytes) {
        MakeRoom(total_bytes_.load() + batch_bytes - options_.max_bytes);
      }
      CommitRequests(reqs);
    }
    lock.lock();
    if (options_.sync == SyncMode::kInterval) {
      dirty_ = true;
    }
  }
}

void EventBuffer::CommitRequests(std::vector<Request>& reqs) {
  // One chunk per region (split at kChunkMaxBytes), records in sequence order.
  struct Chunk {
    std::string value;
    uint64_t last = 0;
    int64_t records = 0;
    int64_t bytes = 0;
  };
  leveldb::WriteBatch batch;
  std::vector<uint64_t> firsts;
  firsts.reserve(reqs.size());
  std::map<std::string, Chunk> chunks;
  std::map<std::string, std::pair<int64_t, int64_t>> added;  // region -> records, bytes
  auto flush = [&](const std::string& region, Chunk& c) {
    batch.Put(QueueKey('q', region, c.last), c.value);
    auto& a = added[region];
    a.first += c.records;
    a.second += c.bytes;
    c = Chunk();
  };
  uint64_t seq = next_seq_.load();
  uint64_t refused = 0;
  const std::string* last_region = nullptr;
  Chunk* chunk = nullptr;
  for (Request& r : reqs) {
    firsts.push_back(seq);
    size_t begin = 0;
    for (const auto& [region, end] : r.entries) {
      std::string_view entry(r.blob.data() + begin, end - begin);
      begin = end;
      if (!region.empty() && region[0] == kRefusedMark) {
        std::string value = region.substr(1);
        value.push_back('\n');
        value.append(entry);
        batch.Put(QueueKey('r', kResidencyQuarantine, seq), value);
        ++refused;
        ++seq;
        continue;
      }
      if (last_region == nullptr || region != *last_region) {
        last_region = &region;
        chunk = &chunks[region];
      }
      const size_t rec_bytes = ChunkRecordBytes(entry.size());
      if (chunk->records > 0 && chunk->value.size() + rec_bytes > kChunkMaxBytes) {
        flush(region, *chunk);
      }
      if (chunk->value.empty()) {
        chunk->value.reserve(std::min(kChunkMaxBytes, r.blob.size() + 64));
      }
      AppendChunkRecord(&chunk->value, seq, entry);
      chunk->last = seq;
      chunk->records += 1;
      chunk->bytes += static_cast<int64_t>(rec_bytes);
      ++seq;
    }
  }
  for (auto& [region, c] : chunks) {
    if (c.records > 0) {
      flush(region, c);
    }
  }
  // Rerouted records leave their old queue in this same write (see Reroute).
  std::vector<std::tuple<RegionStats*, int64_t, int64_t>> moved_out;
  bool moved_any = false;
  for (Request& r : reqs) {
    if (r.moved.empty()) {
      continue;
    }
    moved_any = true;
    std::lock_guard<std::mutex> lock(evict_mu_);
    RegionStats& rs = Stats(r.moved_from);
    auto [n, bytes] = MoveOutLocked(r.moved_from, rs, LiveLocked(rs, r.moved), &batch);
    moved_out.emplace_back(&rs, n, bytes);
  }
  std::string meta;
  PutBigEndian64(&meta, seq);
  batch.Put(kNextSeqKey, meta);
  leveldb::WriteOptions wo;
  // A move is synced whatever the mode: the new copy may be sent (and stored by another
  // region) before a later sync, and a lost move would bring the old copy back.
  wo.sync = options_.sync == SyncMode::kAlways || moved_any;
  // Sequences are consumed even if the write fails: a failed write may still reach the log, so
  // reusing them could give two events one identity.
  next_seq_ = seq;
  Status st = Write(wo, &batch);
  if (st.ok()) {
    for (const auto& [region, a] : added) {
      Adjust(Stats(region), a.first, a.second);
    }
    for (auto& [rs, n, bytes] : moved_out) {
      std::lock_guard<std::mutex> lock(evict_mu_);
      rs->removed += static_cast<uint64_t>(n);
      Adjust(*rs, -n, -bytes);
    }
    residency_quarantined_ += refused;
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].done) {
      reqs[i].done(st, firsts[i]);
    }
  }
  if (st.ok()) {
    std::vector<std::function<void()>> listeners;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [region, fn] : listeners_) {
        if (added.count(region) > 0) {
          listeners.push_back(fn);
        }
      }
    }
    for (auto& fn : listeners) {
      fn();
    }
  }
}

EventBuffer::RegionStats& EventBuffer::Stats(const std::string& region) const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  auto& p = stats_[region];
  if (!p) {
    p = std::make_unique<RegionStats>();
  }
  return *p;
}

void EventBuffer::Adjust(RegionStats& rs, int64_t records, int64_t bytes) {
  rs.records += records;
  rs.bytes += bytes;
  total_bytes_ += bytes;
  churn_bytes_ += bytes < 0 ? -bytes : bytes;
}

Status EventBuffer::Write(const leveldb::WriteOptions& options, leveldb::WriteBatch* batch) {
  if (write_failed_.load()) {
    return write_failure();
  }
  const leveldb::Status s = db_->Write(options, batch);
  if (s.ok()) {
    return Status::Ok();
  }
  const Status st = FromLevelDb(s);
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(failure_mu_);
    if (!write_failed_.load()) {
      first = true;
      write_failure_ = Status::Unavailable("buffer stopped after a failed write (" + st.ToString() +
                                           "); restart the gateway to recover it");
      write_failed_ = true;
    }
  }
  if (first) {
    LogError(kLog, "write failed, refusing every further write: " + st.ToString());
  }
  return st;
}

Status EventBuffer::Writable(int64_t disk_free_bytes) const {
  if (write_failed_.load()) {
    return write_failure();
  }
  // Room for one more chunk: at the floor itself any append is refused.
  return FreeSpaceStatus(disk_free_bytes, static_cast<int64_t>(kChunkMaxBytes));
}

Status EventBuffer::write_failure() const {
  std::lock_guard<std::mutex> lock(failure_mu_);
  return write_failure_;
}

int64_t EventBuffer::DiskFreeBytes() const {
  struct statvfs fs {};
  if (::statvfs(options_.path.c_str(), &fs) != 0) {
    return -1;
  }
  return static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
}

Status EventBuffer::CheckFreeSpaceForCommit(int64_t bytes) {
  if (options_.min_free_bytes <= 0) {
    return Status::Ok();
  }
  // statvfs at most every kFreeSpaceRecheck, counting down what commits wrote meanwhile, and at
  // once when that estimate says no: the floor is never crossed by our own writes, and lifts as
  // soon as space returns.
  const auto now = std::chrono::steady_clock::now();
  int64_t free_bytes = free_estimate_;
  if (now - free_checked_at_ >= kFreeSpaceRecheck || free_bytes < 0 ||
      free_bytes - bytes < options_.min_free_bytes) {
    free_bytes = DiskFreeBytes();
    free_checked_at_ = now;
  }
  const Status st = FreeSpaceStatus(free_bytes, bytes);
  free_estimate_ = st.ok() && free_bytes >= 0 ? free_bytes - bytes : -1;
  return st;
}

Status EventBuffer::FreeSpaceStatus(int64_t free_bytes, int64_t bytes) const {
  if (options_.min_free_bytes <= 0 || free_bytes < 0 ||
      free_bytes - bytes >= options_.min_free_bytes) {
    // (Unknown, e.g. a test's in-memory Env: LevelDB itself reports a full disk.)
    return Status::Ok();
  }
  return Status::ResourceExhausted(
      "disk full: " + std::to_string(free_bytes) + " bytes free on the buffer's filesystem (" +
      options_.path + "), " + std::to_string(bytes) + " to write, buffer.min_free_bytes is " +
      std::to_string(options_.min_free_bytes));
}

const char* AppendRefusalReason(const Status& st) {
  return IsBufferFull(st) ? "buffer_full" : IsDiskFull(st) ? "disk_full" : "buffer_unavailable";
}

bool IsDiskFull(const Status& st) {
  return st.code() == StatusCode::kResourceExhausted && st.message().rfind("disk full", 0) == 0;
}

bool IsBufferFull(const Status& st) {
  return st.code() == StatusCode::kResourceExhausted && st.message().rfind("buffer full", 0) == 0;
}

uint64_t EventBuffer::buffered_records(const RegionId& region) const {
  return static_cast<uint64_t>(Stats(region.value()).records.load());
}

uint64_t EventBuffer::buffered_bytes(const RegionId& region) const {
  return static_cast<uint64_t>(Stats(region.value()).bytes.load());
}

uint64_t EventBuffer::total_buffered_records() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  int64_t n = 0;
  for (const auto& [r, s] : stats_) {
    n += s->records.load();
  }
  return static_cast<uint64_t>(n);
}

}  // namespace sluice::gateway
