// The partition log through simulated power cuts: a FileOps that remembers how far each file's
// last fdatasync reached and, at the cut, truncates every file to that and stops the "disk"
// (writes vanish, syncs fail), at a random moment while producer threads append (flush:
// always). After each cut the log is reopened with the real file system: every acknowledged
// batch must be there with its own records at its own offsets, and offsets stay dense. This is
// the power-loss counterpart of crash_consistency_test.cc (SIGKILL keeps the page cache).
// The offset and time indexes are written outside FileOps and so survive whole: recovery must
// cope with entries past the end of a cut segment.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "cloud-broker/log/file_ops.h"
#include "cloud-broker/log/partition_log.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

class PowerCutFileOps final : public FileOps {
 public:
  ssize_t PWrite(int fd, const void* buf, size_t n, off_t offset) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_) {
      return static_cast<ssize_t>(n);  // into a page cache that is gone
    }
    ssize_t w = FileOps::Default().PWrite(fd, buf, n, offset);
    if (w > 0) {
      File& f = Track(fd);
      f.written = std::max<int64_t>(f.written, offset + w);
    }
    return w;
  }
  int DataSync(int fd) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_) {
      errno = EIO;
      return -1;
    }
    int rc = FileOps::Default().DataSync(fd);
    if (rc == 0) {
      File& f = Track(fd);
      f.synced = f.written;
    }
    return rc;
  }
  int Truncate(int fd, off_t size) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_) {
      errno = EIO;
      return -1;
    }
    int rc = FileOps::Default().Truncate(fd, size);
    if (rc == 0) {
      File& f = Track(fd);
      f.written = size;
      f.synced = std::min<int64_t>(f.synced, size);
    }
    return rc;
  }
  // Truncates every file written through this to its last synced size; returns bytes dropped.
  int64_t Cut() {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = true;
    int64_t dropped = 0;
    for (auto& [inode, f] : files_) {
      struct stat st {};
      if (::stat(f.path.c_str(), &st) != 0 || st.st_ino != inode) {
        continue;  // deleted (retention) or replaced
      }
      if (st.st_size > f.synced) {
        dropped += st.st_size - f.synced;
        EXPECT_EQ(::truncate(f.path.c_str(), f.synced), 0) << f.path;
      }
    }
    return dropped;
  }

 private:
  struct File {
    std::string path;
    int64_t written = 0;
    int64_t synced = 0;
  };
  // By inode: file descriptors are reused for other files once closed. A file first seen here
  // counts its current size as synced (it was, when the log rolled or recovered it).
  File& Track(int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    auto [it, added] = files_.try_emplace(st.st_ino);
    if (added) {
      char link[64];
      std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
      char path[4096];
      ssize_t n = ::readlink(link, path, sizeof(path) - 1);
      it->second.path = n > 0 ? std::string(path, static_cast<size_t>(n)) : "";
      it->second.written = st.st_size;
      it->second.synced = st.st_size;
    }
    return it->second;
  }

  std::mutex mu_;
  bool cut_ = false;
  std::map<ino_t, File> files_;
};

// One batch of `n` records whose values name the append (`tag`) and the record's place in it.
std::string TaggedBatch(int64_t tag, int n) {
  std::vector<Record> recs;
  for (int i = 0; i < n; ++i) {
    recs.push_back(testing::MakeRecord("dev-" + std::to_string(tag % 7), "DE",
                                       1'700'000'000'000 + tag,
                                       "{\"tag\":" + std::to_string(tag) + ",\"i\":" +
                                           std::to_string(i) + ",\"pad\":\"" +
                                           std::string(80, 'p') + "\"}"));
  }
  return testing::EncodeRecords(recs);
}

TEST(LogPowerCutTest, FlushAlwaysKeepsEveryAcknowledgedBatchAcrossCutsMidLoad) {
  sluice::testing::TempDir dir;
  const std::string path = dir.Sub("sensors-0");
  std::mt19937 rng(1129);
  struct Acked {
    int64_t tag;
    int n;
  };
  std::map<int64_t, Acked> acked;  // base offset -> the batch
  std::mutex mu;
  int64_t next_tag = 0;
  int64_t dropped = 0;
  auto check = [&](PartitionLog& log, int cut) {
    std::lock_guard<std::mutex> lock(mu);
    int64_t expected_next = 0;
    for (const auto& [base, a] : acked) {
      ASSERT_GE(base, expected_next) << "overlapping acknowledged batches at cut " << cut;
      Result<LogReadResult> r = log.Read(base, static_cast<size_t>(a.n), 1 << 20);
      ASSERT_TRUE(r.ok()) << "offset " << base << " at cut " << cut << ": " << r.status().ToString();
      ASSERT_EQ(r->records.size(), static_cast<size_t>(a.n)) << "offset " << base << " cut " << cut;
      for (int i = 0; i < a.n; ++i) {
        ASSERT_EQ(r->records[i].offset, base + i);
        ASSERT_EQ(r->records[i].record.value->rfind("{\"tag\":" + std::to_string(a.tag) +
                                                        ",\"i\":" + std::to_string(i) + ",",
                                                    0),
                  0u)
            << "offset " << base + i << " holds " << *r->records[i].record.value;
      }
      expected_next = base + a.n;
    }
    EXPECT_GE(log.end_offset(), expected_next);
    // Dense: every offset from the start to the end reads back in order.
    Result<LogReadResult> all = log.Read(0, 1000000, 256 << 20);
    ASSERT_TRUE(all.ok());
    for (size_t i = 0; i < all->records.size(); ++i) {
      ASSERT_EQ(all->records[i].offset, static_cast<int64_t>(i)) << "cut " << cut;
    }
    EXPECT_EQ(static_cast<int64_t>(all->records.size()), log.end_offset());
  };
  for (int cut = 0; cut < 6; ++cut) {
    PowerCutFileOps ops;
    LogOptions o;
    o.segment_bytes = 64 << 10;  // rolls happen too
    o.index_interval_bytes = 1024;
    o.file_ops = &ops;
    auto log = PartitionLog::Open(path, o);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    check(**log, cut);
    std::atomic<bool> stop{false};
    std::vector<std::thread> producers;
    for (int t = 0; t < 4; ++t) {
      producers.emplace_back([&] {
        while (!stop.load()) {
          int64_t tag = 0;
          {
            std::lock_guard<std::mutex> lock(mu);
            tag = next_tag++;
          }
          const int n = 1 + static_cast<int>(tag % 9);
          Result<int64_t> base = (*log)->Append(TaggedBatch(tag, n));
          if (!base.ok()) {
            return;  // the cut: not acknowledged
          }
          std::lock_guard<std::mutex> lock(mu);
          acked[*base] = Acked{tag, n};
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(80 + rng() % 150));
    dropped += ops.Cut();
    stop = true;
    for (auto& t : producers) {
      t.join();
    }
    log->reset();  // whatever a clean close would still write is lost with the power
  }
  LogOptions o;
  o.segment_bytes = 64 << 10;
  o.index_interval_bytes = 1024;
  auto log = PartitionLog::Open(path, o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  check(**log, 6);
  EXPECT_GT(acked.size(), 500u);
  std::printf("%zu acknowledged batches checked after 6 cuts (%lld bytes dropped)\n", acked.size(),
              static_cast<long long>(dropped));
}

}  // namespace
}  // namespace sluice::broker
