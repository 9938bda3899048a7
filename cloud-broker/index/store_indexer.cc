#include "cloud-broker/index/store_indexer.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/logging.h"
#include "core/record_batch.h"
#include "core/thread_name.h"

namespace sluice::broker {
namespace {
constexpr const char* kComponent = "indexer";

// A record's entry; a key or country too long to index is left out of its family.
IndexEntry EntryOf(int64_t offset, int64_t ts_ms, std::string_view key,
                   std::string_view country) {
  return {offset, ts_ms,
          key.size() <= PartitionIndex::kMaxDeviceIdBytes ? std::string(key) : std::string(),
          country.size() <= PartitionIndex::kMaxCountryBytes ? std::string(country)
                                                             : std::string()};
}
}  // namespace

StoreIndexer::StoreIndexer(StoreIndexerOptions options, TopicStore& store)
    : options_(std::move(options)), store_(store) {}

StoreIndexer::~StoreIndexer() { Stop(); }

Status StoreIndexer::CatchUp() {
  std::lock_guard<std::mutex> pass(pass_mu_);
  Status first = Status::Ok();
  for (Topic* t : store_.Topics()) {
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      Status st = CatchUpPartition(t->name().value(), p, *t->partition(p));
      if (!st.ok()) {
        LogWarn(kComponent, t->name().value() + "-" + std::to_string(p) + ": " + st.ToString());
        if (first.ok()) {
          first = st;
        }
      }
    }
  }
  return first;
}

Status StoreIndexer::CatchUpPartition(const std::string& topic, int32_t p, PartitionLog& log) {
  Indexed* indexed = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    indexed = &indexes_[{topic, p}];
  }
  if (!db_) {
    Result<std::shared_ptr<leveldb::DB>> db =
        PartitionIndex::OpenDb(options_.dir, options_.low_priority);
    if (!db.ok()) {
      return db.status();
    }
    db_ = std::move(db).value();
  }
  if (!indexed->index) {
    Result<std::unique_ptr<PartitionIndex>> opened = PartitionIndex::Open(db_, topic, p);
    if (!opened.ok()) {
      return opened.status();
    }
    std::lock_guard<std::mutex> lock(mu_);
    indexed->index = std::move(opened).value();
    indexed->truncations = log.truncations();
  }
  PartitionIndex& index = *indexed->index;
  if (log.truncations() != indexed->truncations) {
    // Cut somewhere below what may be indexed: index it again from its start.
    SLUICE_RETURN_IF_ERROR(index.TruncateFrom(0));
    indexed->truncations = log.truncations();
    indexed->dropped_below = 0;
  }
  const int64_t start = log.start_offset();
  const int64_t end = log.end_offset();  // the high watermark: what readers may see
  if (index.covered() > end) {
    SLUICE_RETURN_IF_ERROR(index.TruncateFrom(end));  // a torn tail cut at start-up
  }
  if (start > indexed->dropped_below) {
    SLUICE_RETURN_IF_ERROR(index.DropBelow(start));  // retention took those segments
    indexed->dropped_below = start;
  }
  if (index.covered() < start) {
    SLUICE_RETURN_IF_ERROR(index.Add({}, start));
  }
  while (index.covered() < end) {
    const int64_t from = index.covered();
    std::vector<IndexEntry> entries;
    int64_t next = from;
    Result<LogBatches> read = log.ReadBatches(from, options_.chunk_bytes);
    if (read.ok()) {
      // The stored bytes, walked without copying records (keys, timestamps and the country
      // header are all an index needs).
      for (const std::string& b : read->batches) {
        Status walked = ForEachRecord(b, [&](int64_t offset, const RecordView& r) {
          if (offset < from || offset >= end) {
            return;  // before the covered offset (its batch starts earlier), or past the HW
          }
          std::string_view country;
          for (const HeaderView& h : r.headers) {
            if (h.key == kHeaderCountry) {
              country = h.value;
              break;  // one per record (produce refuses two)
            }
          }
          entries.push_back(
              EntryOf(offset, r.timestamp_ms, r.key.value_or(std::string_view()), country));
        });
        if (!walked.ok()) {
          read = walked;  // a damaged batch: the record reader below skips it
          entries.clear();
          break;
        }
      }
      if (read.ok()) {
        next = std::min(read->next_offset, end);
      }
    }
    if (!read.ok()) {
      // Corrupt batches (counted and skipped by readers) or a race with retention: the record
      // reader skips what it cannot read.
      Result<LogReadResult> records = log.Read(from, options_.chunk_records, options_.chunk_bytes);
      if (!records.ok()) {
        return records.status();
      }
      for (const LogRecord& r : records->records) {
        if (r.offset >= end) {
          break;
        }
        const std::string* country = r.record.FindHeader(kHeaderCountry);
        entries.push_back(EntryOf(r.offset, r.record.timestamp_ms,
                                  r.record.key ? std::string_view(*r.record.key) : std::string_view(),
                                  country != nullptr ? *country : std::string_view()));
      }
      next = std::min(records->next_offset, end);
    }
    if (next <= from) {
      break;  // nothing readable (a hole, or retention raced this pass): next pass
    }
    SLUICE_RETURN_IF_ERROR(index.Add(entries, next));
  }
  return Status::Ok();
}

const PartitionIndex* StoreIndexer::Find(const std::string& topic, int32_t partition) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = indexes_.find({topic, partition});
  return it == indexes_.end() ? nullptr : it->second.index.get();
}

int64_t StoreIndexer::lag() {
  int64_t lag = 0;
  for (Topic* t : store_.Topics()) {
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      const PartitionLog& log = *t->partition(p);
      const PartitionIndex* index = Find(t->name().value(), p);
      const int64_t from = index == nullptr ? log.start_offset()
                                            : std::max(index->covered(), log.start_offset());
      lag += std::max<int64_t>(0, log.end_offset() - from);
    }
  }
  return lag;
}

void StoreIndexer::Start() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (thread_.joinable()) {
    return;
  }
  stop_ = false;
  thread_ = std::thread([this] {
    SetCurrentThreadName("indexer");
    // Produce, fetch and queries first: the index may fall behind on a busy machine (queries
    // then scan the records not indexed yet) and catches up when the CPU is free.
    if (options_.low_priority) {
      LowerCurrentThreadPriority();
    }
    std::unique_lock<std::mutex> l(run_mu_);
    while (!stop_) {
      l.unlock();
      // Errors are logged per partition (CatchUpPartition's caller); the next pass retries.
      const Status pass = CatchUp();
      (void)pass;
      l.lock();
      run_cv_.wait_for(l, std::chrono::milliseconds(options_.interval_ms), [this] { return stop_; });
    }
  });
}

void StoreIndexer::Stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stop_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace sluice::broker
