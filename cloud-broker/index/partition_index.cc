#include "cloud-broker/index/partition_index.h"

#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <limits>

#include "core/kafka_wire.h"
#include "core/thread_name.h"

namespace sluice::broker {
namespace {

constexpr char kDevice = 'd';
constexpr char kTime = 't';
constexpr char kOffset = 'o';
constexpr char kCountry = 'c';
constexpr char kRollup = 'r';
const std::string kCoveredKey = "mcovered";
const std::string kDroppedKey = "mdropped";
// Outside every partition's scope ('p...'): the layout of the whole database.
const std::string kVersionKey = "!version";
// Bumped whenever the key or value layout changes: an index of another version is rebuilt.
const std::string kVersion = "5";
// Table files LevelDB keeps open: the whole broker's index costs a bounded number of fds
// (LOCK, log, MANIFEST and these), however many partitions it holds.
constexpr int kMaxOpenTables = 64;
// Larger than LevelDB's 4 MiB default: fewer, larger level-0 tables, less compaction per entry
// written (the index is write-heavy); at most two memtables of it in memory.
constexpr size_t kWriteBufferBytes = 32 << 20;
// Table files of this size (LevelDB's default is 2 MiB): a 20 M-record index (1.2 GB) is ~40
// files, all open at once in the table cache (kMaxOpenTables), instead of ~600 reopened on every
// lookup (a device query's index seek took 70 us at 20 M records with 2 MiB files).
constexpr size_t kMaxTableBytes = 32 << 20;

void PutU64(std::string* out, uint64_t v) {
  char b[8];
  wire::PutBig(b, v);
  out->append(b, sizeof(b));
}

uint64_t GetU64(const char* p) { return wire::GetBig<uint64_t>(p); }

// Order-preserving: the sign bit flipped, so INT64_MIN..INT64_MAX map to 0..UINT64_MAX.
uint64_t TsBits(int64_t ts) { return static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63); }
int64_t TsOf(uint64_t bits) { return static_cast<int64_t>(bits ^ (uint64_t{1} << 63)); }

std::string DevicePrefix(const std::string& device) {
  std::string k(1, kDevice);
  k.push_back(static_cast<char>((device.size() >> 8) & 0xff));
  k.push_back(static_cast<char>(device.size() & 0xff));
  k += device;
  return k;
}

std::string CountryPrefix(const std::string& country) {
  std::string k(1, kCountry);
  k.push_back(static_cast<char>(country.size()));
  k += country;
  return k;
}

// u8 len | country: the value of 'd' and 't' entries, the tail of an 'o' entry.
std::string CountryValue(const std::string& country) {
  std::string v(1, static_cast<char>(country.size()));
  v += country;
  return v;
}

std::string WithTsOffset(std::string prefix, int64_t ts, int64_t offset) {
  PutU64(&prefix, TsBits(ts));
  PutU64(&prefix, static_cast<uint64_t>(offset));
  return prefix;
}

std::string OffsetKey(int64_t offset) {
  std::string k(1, kOffset);
  PutU64(&k, static_cast<uint64_t>(offset));
  return k;
}

int64_t MinuteOf(int64_t ts) { return PartitionIndex::RollupMinuteOf(ts); }

// 'r' ts | u8 len | country.
std::string RollupKey(const std::string& scope, int64_t minute, const std::string& country) {
  std::string k = scope;
  k.push_back(kRollup);
  PutU64(&k, TsBits(minute));
  k += CountryValue(country);
  return k;
}

Status FromLevelDb(const leveldb::Status& st, const std::string& what) {
  if (st.ok()) {
    return Status::Ok();
  }
  if (st.IsCorruption()) {
    return Status::Corruption(what + ": " + st.ToString());
  }
  return Status::IOError(what + ": " + st.ToString());
}

}  // namespace

PartitionIndex::PartitionIndex(std::shared_ptr<leveldb::DB> db, std::string scope, int64_t covered,
                               int64_t dropped_below)
    : db_(std::move(db)),
      scope_(std::move(scope)),
      covered_(covered),
      dropped_below_(dropped_below) {}

namespace {

// The u64 at scope + key in `options`' view; `def` if absent.
Result<int64_t> ReadOffsetKey(leveldb::DB& db, const leveldb::ReadOptions& options,
                              const std::string& key, int64_t def) {
  std::string value;
  leveldb::Status got = db.Get(options, key, &value);
  if (got.IsNotFound()) {
    return def;
  }
  if (!got.ok()) {
    return FromLevelDb(got, "index");
  }
  if (value.size() != 8) {
    return Status::Corruption("index: " + std::to_string(value.size()) +
                              "-byte offset under a key that holds 8");
  }
  return static_cast<int64_t>(GetU64(value.data()));
}

}  // namespace

RollupView::RollupView(std::shared_ptr<leveldb::DB> db, std::string scope)
    : db_(std::move(db)), snapshot_(db_->GetSnapshot()), scope_(std::move(scope)) {}

RollupView::~RollupView() { db_->ReleaseSnapshot(snapshot_); }

Status RollupView::ForEach(
    int64_t from_ms, int64_t to_ms,
    const std::function<bool(int64_t, const std::string&, uint64_t)>& fn) const {
  if (from_ms >= to_ms) {
    return Status::Ok();
  }
  const std::string prefix = scope_ + kRollup;
  std::string start = prefix;
  PutU64(&start, TsBits(from_ms));
  std::string end = prefix;
  PutU64(&end, TsBits(to_ms));
  leveldb::ReadOptions options;
  options.snapshot = snapshot_;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(options));
  std::string country;
  for (it->Seek(start); it->Valid(); it->Next()) {
    const leveldb::Slice k = it->key();
    if (k.compare(end) >= 0 || !k.starts_with(prefix)) {
      break;
    }
    const leveldb::Slice v = it->value();
    if (k.size() < prefix.size() + 9 ||
        k.size() != prefix.size() + 9 + static_cast<uint8_t>(k[prefix.size() + 8]) ||
        v.size() != 8) {
      return Status::Corruption("index: malformed rollup");
    }
    country.assign(k.data() + prefix.size() + 9, k.size() - prefix.size() - 9);
    if (!fn(TsOf(GetU64(k.data() + prefix.size())), country, GetU64(v.data()))) {
      break;
    }
  }
  return FromLevelDb(it->status(), "index rollups");
}

int64_t PartitionIndex::RollupMinuteOf(int64_t ts) {
  if (ts < std::numeric_limits<int64_t>::min() + kRollupMs) {
    return std::numeric_limits<int64_t>::min();  // the floor would not fit in 64 bits
  }
  int64_t q = ts / kRollupMs;
  if (ts % kRollupMs < 0) {
    --q;  // floor, not truncation, for timestamps before 1970
  }
  return q * kRollupMs;
}

Result<std::unique_ptr<RollupView>> PartitionIndex::Rollups() const {
  std::unique_ptr<RollupView> view(new RollupView(db_, scope_));
  leveldb::ReadOptions options;
  options.snapshot = view->snapshot_;
  Result<int64_t> covered = ReadOffsetKey(*db_, options, scope_ + kCoveredKey, 0);
  if (!covered.ok()) {
    return covered.status();
  }
  Result<int64_t> dropped = ReadOffsetKey(*db_, options, scope_ + kDroppedKey, 0);
  if (!dropped.ok()) {
    return dropped.status();
  }
  view->covered_ = *covered;
  view->dropped_below_ = *dropped;
  return view;
}

PartitionIndex::~PartitionIndex() = default;

namespace {

// LevelDB's default Env, with its background thread (flushes and compactions of the index) at
// the lowest priority, as the indexer's own thread: on a busy machine produce comes first.
class LowPriorityEnv final : public leveldb::EnvWrapper {
 public:
  LowPriorityEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}
  void Schedule(void (*fn)(void*), void* arg) override {
    target()->Schedule(&LowPriorityEnv::Run, new Work{fn, arg});
  }

 private:
  struct Work {
    void (*fn)(void*);
    void* arg;
  };
  static void Run(void* p) {
    std::unique_ptr<Work> w(static_cast<Work*>(p));
    thread_local const bool lowered = LowerCurrentThreadPriority();
    (void)lowered;
    w->fn(w->arg);
  }
};

leveldb::Env* IndexEnv() {
  static LowPriorityEnv* env = new LowPriorityEnv();  // never destroyed: LevelDB's threads use it
  return env;
}

}  // namespace

Result<std::shared_ptr<leveldb::DB>> PartitionIndex::OpenDb(const std::string& dir,
                                                            bool low_priority) {
  leveldb::Options options;
  if (low_priority) {
    options.env = IndexEnv();
  }
  options.create_if_missing = true;
  options.max_open_files = kMaxOpenTables;
  options.write_buffer_size = kWriteBufferBytes;
  options.max_file_size = kMaxTableBytes;
  leveldb::DB* raw = nullptr;
  SLUICE_RETURN_IF_ERROR(FromLevelDb(leveldb::DB::Open(options, dir, &raw), "index " + dir));
  std::unique_ptr<leveldb::DB> db(raw);
  std::string value;
  leveldb::Status version = db->Get(leveldb::ReadOptions(), kVersionKey, &value);
  if (!version.ok() || value != kVersion) {
    // Another layout (or an empty index): start afresh, the logs rebuild it.
    db.reset();
    SLUICE_RETURN_IF_ERROR(FromLevelDb(leveldb::DestroyDB(dir, options), "index " + dir));
    SLUICE_RETURN_IF_ERROR(FromLevelDb(leveldb::DB::Open(options, dir, &raw), "index " + dir));
    db.reset(raw);
    SLUICE_RETURN_IF_ERROR(FromLevelDb(
        db->Put(leveldb::WriteOptions(), kVersionKey, kVersion), "index " + dir));
  }
  return std::shared_ptr<leveldb::DB>(std::move(db));
}

Result<std::unique_ptr<PartitionIndex>> PartitionIndex::Open(std::shared_ptr<leveldb::DB> db,
                                                             const std::string& topic,
                                                             int32_t partition) {
  std::string scope(1, 'p');
  scope.push_back(static_cast<char>((topic.size() >> 8) & 0xff));
  scope.push_back(static_cast<char>(topic.size() & 0xff));
  scope += topic;
  char b[4];
  wire::PutBig(b, static_cast<uint32_t>(partition));
  scope.append(b, sizeof(b));
  Result<int64_t> covered = ReadOffsetKey(*db, leveldb::ReadOptions(), scope + kCoveredKey, 0);
  if (!covered.ok()) {
    return Status(covered.status().code(), "index of " + topic + "-" +
                                               std::to_string(partition) + ": " +
                                               covered.status().message());
  }
  Result<int64_t> dropped = ReadOffsetKey(*db, leveldb::ReadOptions(), scope + kDroppedKey, 0);
  if (!dropped.ok()) {
    return Status(dropped.status().code(), "index of " + topic + "-" +
                                               std::to_string(partition) + ": " +
                                               dropped.status().message());
  }
  return std::unique_ptr<PartitionIndex>(
      new PartitionIndex(std::move(db), std::move(scope), *covered, *dropped));
}

Result<std::unique_ptr<PartitionIndex>> PartitionIndex::Open(const std::string& dir) {
  Result<std::shared_ptr<leveldb::DB>> db = OpenDb(dir);
  if (!db.ok()) {
    return db.status();
  }
  return Open(std::move(db).value(), "", 0);
}

Status PartitionIndex::ApplyRollupDeltas(const RollupDeltas& deltas,
                                         leveldb::WriteBatch* batch) const {
  for (const auto& [minute_country, delta] : deltas) {
    const std::string key = RollupKey(scope_, minute_country.first, minute_country.second);
    std::string value;
    int64_t count = 0;
    leveldb::Status got = db_->Get(leveldb::ReadOptions(), key, &value);
    if (got.ok()) {
      if (value.size() != 8) {
        return Status::Corruption("index: malformed rollup count");
      }
      count = static_cast<int64_t>(GetU64(value.data()));
    } else if (!got.IsNotFound()) {
      return FromLevelDb(got, "index rollup");
    }
    count += delta;
    if (count < 0) {
      return Status::Corruption("index: rollup count of minute " +
                                std::to_string(minute_country.first) + " below zero");
    }
    if (count == 0) {
      batch->Delete(key);
    } else {
      value.clear();
      PutU64(&value, static_cast<uint64_t>(count));
      batch->Put(key, value);
    }
  }
  return Status::Ok();
}

Status PartitionIndex::Add(const std::vector<IndexEntry>& entries, int64_t covered_to) {
  leveldb::WriteBatch batch;
  std::string chunk;
  RollupDeltas rollups;
  for (const IndexEntry& e : entries) {
    if (e.offset < covered_.load() || e.offset >= covered_to) {
      return Status::InvalidArgument("index entry at offset " + std::to_string(e.offset) +
                                     " is outside [" + std::to_string(covered_.load()) + ", " +
                                     std::to_string(covered_to) + ")");
    }
    if (e.device_id.size() > kMaxDeviceIdBytes) {
      return Status::InvalidArgument("device id of " + std::to_string(e.device_id.size()) +
                                     " bytes at offset " + std::to_string(e.offset));
    }
    if (e.country.size() > kMaxCountryBytes) {
      return Status::InvalidArgument("country of " + std::to_string(e.country.size()) +
                                     " bytes at offset " + std::to_string(e.offset));
    }
    const std::string country = CountryValue(e.country);
    // The chunk's entry: offset | ts | u16 len | device | u8 len | country.
    PutU64(&chunk, static_cast<uint64_t>(e.offset));
    PutU64(&chunk, TsBits(e.ts_ms));
    chunk += DevicePrefix(e.device_id).substr(1);
    chunk += country;
    batch.Put(WithTsOffset(scope_ + kTime, e.ts_ms, e.offset), country);
    batch.Put(WithTsOffset(scope_ + CountryPrefix(e.country), e.ts_ms, e.offset), country);
    if (!e.device_id.empty()) {
      batch.Put(WithTsOffset(scope_ + DevicePrefix(e.device_id), e.ts_ms, e.offset), country);
    }
    ++rollups[{MinuteOf(e.ts_ms), e.country}];
  }
  SLUICE_RETURN_IF_ERROR(ApplyRollupDeltas(rollups, &batch));
  if (!chunk.empty()) {
    batch.Put(scope_ + OffsetKey(covered_to), chunk);  // chunks are keyed by their end
  }
  std::string covered;
  PutU64(&covered, static_cast<uint64_t>(covered_to));
  batch.Put(scope_ + kCoveredKey, covered);
  // Not synced: the index is rebuilt from the log past whatever a crash took.
  SLUICE_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "index add"));
  covered_ = covered_to;
  return Status::Ok();
}

Result<std::vector<IndexHit>> PartitionIndex::Scan(const std::string& prefix, int64_t from_ms,
                                                   int64_t to_ms,
                                                   const std::optional<IndexCursor>& after,
                                                   size_t limit) const {
  std::vector<IndexHit> hits;
  if (from_ms >= to_ms || limit == 0) {
    return hits;
  }
  std::string start = WithTsOffset(prefix, from_ms, 0);
  if (after.has_value()) {
    // Strictly after the cursor: its own key + one byte sorts right after it.
    std::string resume = WithTsOffset(prefix, after->ts_ms, after->offset) + '\0';
    start = std::max(start, resume);
  }
  const std::string end = WithTsOffset(prefix, to_ms, 0);
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  for (it->Seek(start); it->Valid() && hits.size() < limit; it->Next()) {
    const leveldb::Slice k = it->key();
    if (k.compare(end) >= 0 || k.size() != prefix.size() + 16 || !k.starts_with(prefix)) {
      break;
    }
    const leveldb::Slice v = it->value();
    if (v.empty() || v.size() != size_t{1} + static_cast<uint8_t>(v[0])) {
      return Status::Corruption("index: malformed entry value");
    }
    hits.push_back({TsOf(GetU64(k.data() + prefix.size())),
                    static_cast<int64_t>(GetU64(k.data() + prefix.size() + 8)),
                    std::string(v.data() + 1, v.size() - 1)});
  }
  SLUICE_RETURN_IF_ERROR(FromLevelDb(it->status(), "index scan"));
  return hits;
}

Result<std::vector<IndexHit>> PartitionIndex::Device(const std::string& device_id,
                                                     int64_t from_ms, int64_t to_ms,
                                                     const std::optional<IndexCursor>& after,
                                                     size_t limit) const {
  if (device_id.empty() || device_id.size() > kMaxDeviceIdBytes) {
    return std::vector<IndexHit>{};
  }
  return Scan(scope_ + DevicePrefix(device_id), from_ms, to_ms, after, limit);
}

Result<std::vector<IndexHit>> PartitionIndex::Country(const std::string& country,
                                                      int64_t from_ms, int64_t to_ms,
                                                      const std::optional<IndexCursor>& after,
                                                      size_t limit) const {
  if (country.size() > kMaxCountryBytes) {
    return std::vector<IndexHit>{};
  }
  return Scan(scope_ + CountryPrefix(country), from_ms, to_ms, after, limit);
}

Result<std::vector<IndexHit>> PartitionIndex::Time(int64_t from_ms, int64_t to_ms,
                                                   const std::optional<IndexCursor>& after,
                                                   size_t limit) const {
  return Scan(scope_ + kTime, from_ms, to_ms, after, limit);
}

Status PartitionIndex::DropRange(int64_t from, int64_t to, std::optional<int64_t> new_covered,
                                 std::optional<int64_t> new_dropped_below) {
  leveldb::WriteBatch batch;
  RollupDeltas rollups;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(leveldb::ReadOptions()));
  const std::string chunks = scope_ + kOffset;
  // Chunks hold disjoint offset ranges and are keyed by their (exclusive) end: the first that
  // may hold `from` is the first whose end is past it.
  for (it->Seek(scope_ + OffsetKey(from + 1)); it->Valid() && it->key().starts_with(chunks);
       it->Next()) {
    const leveldb::Slice k = it->key();
    const leveldb::Slice v = it->value();
    if (k.size() != scope_.size() + 9) {
      return Status::Corruption("index: malformed chunk key");
    }
    std::string kept;
    int64_t kept_end = -1;
    bool kept_above = false;
    bool any_dropped = false;
    bool past = false;
    for (size_t pos = 0; pos < v.size();) {
      const size_t start = pos;
      if (v.size() - pos < 8 + 8 + 2) {
        return Status::Corruption("index: malformed chunk");
      }
      const int64_t offset = static_cast<int64_t>(GetU64(v.data() + pos));
      const int64_t ts = TsOf(GetU64(v.data() + pos + 8));
      const size_t len =
          (static_cast<uint8_t>(v[pos + 16]) << 8) | static_cast<uint8_t>(v[pos + 17]);
      pos += 18;
      if (v.size() - pos < len + 1 ||
          v.size() - pos - len - 1 < static_cast<uint8_t>(v[pos + len])) {
        return Status::Corruption("index: malformed chunk entry at " + std::to_string(offset));
      }
      const std::string device(v.data() + pos, len);
      const size_t clen = static_cast<uint8_t>(v[pos + len]);
      const std::string country(v.data() + pos + len + 1, clen);
      pos += len + 1 + clen;
      if (offset >= to) {
        past = true;
      }
      if (offset < from || offset >= to) {
        kept.append(v.data() + start, pos - start);
        kept_end = std::max(kept_end, offset + 1);
        kept_above = kept_above || offset >= to;
        continue;
      }
      any_dropped = true;
      batch.Delete(WithTsOffset(scope_ + kTime, ts, offset));
      batch.Delete(WithTsOffset(scope_ + CountryPrefix(country), ts, offset));
      if (!device.empty()) {
        batch.Delete(WithTsOffset(scope_ + DevicePrefix(device), ts, offset));
      }
      --rollups[{MinuteOf(ts), country}];
    }
    if (any_dropped) {
      batch.Delete(k);
      if (!kept.empty()) {
        // Keyed by its end: after a truncation (nothing kept past `to`) the new, lower end.
        const int64_t end = kept_above ? static_cast<int64_t>(GetU64(k.data() + scope_.size() + 1))
                                       : kept_end;
        batch.Put(scope_ + OffsetKey(end), kept);
      }
    }
    if (past) {
      break;  // later chunks start later still
    }
  }
  SLUICE_RETURN_IF_ERROR(FromLevelDb(it->status(), "index drop"));
  SLUICE_RETURN_IF_ERROR(ApplyRollupDeltas(rollups, &batch));
  if (new_covered.has_value()) {
    std::string covered;
    PutU64(&covered, static_cast<uint64_t>(*new_covered));
    batch.Put(scope_ + kCoveredKey, covered);
  }
  if (new_dropped_below.has_value()) {
    std::string dropped;
    PutU64(&dropped, static_cast<uint64_t>(*new_dropped_below));
    batch.Put(scope_ + kDroppedKey, dropped);
  }
  SLUICE_RETURN_IF_ERROR(FromLevelDb(db_->Write(leveldb::WriteOptions(), &batch), "index drop"));
  if (new_covered.has_value()) {
    covered_ = *new_covered;
  }
  if (new_dropped_below.has_value()) {
    dropped_below_ = *new_dropped_below;
  }
  return Status::Ok();
}

Status PartitionIndex::DropBelow(int64_t start_offset) {
  return DropRange(0, start_offset, std::nullopt,
                   std::max(start_offset, dropped_below_.load()));
}

Status PartitionIndex::TruncateFrom(int64_t offset) {
  if (offset >= covered_.load()) {
    return Status::Ok();
  }
  return DropRange(offset, std::numeric_limits<int64_t>::max(), offset, std::nullopt);
}

}  // namespace sluice::broker
