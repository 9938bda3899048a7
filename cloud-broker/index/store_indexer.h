// StoreIndexer: keeps a PartitionIndex (partition_index.h) per partition of a TopicStore up to
// date behind its logs, all in one LevelDB under <dir> (the broker's <data_dir>/index). It
// indexes only what the log serves (below the high watermark), so in a replicated region a
// follower indexes what it replicated, the same way.
// Each pass over a partition: a log cut since the last pass (PartitionLog::truncations) makes
// it re-index the partition from its start; an index covering past the log's end (a torn tail
// cut at start-up) is cut back to it; offsets retention removed are skipped and their entries
// dropped; then records from the covered offset up to the high watermark are read in chunks
// and added (key = device id, record timestamp, country header).
// Start() runs passes every interval_ms on its own thread; CatchUp() runs one now (tests).
// Thread-safety: thread-safe; Find's index stays valid until Stop()/destruction.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "cloud-broker/index/partition_index.h"
#include "cloud-broker/log/topic_store.h"

namespace sluice::broker {

struct StoreIndexerOptions {
  std::string dir;                 // <data_dir>/index
  int64_t interval_ms = 200;       // between passes on the thread
  size_t chunk_records = 4096;     // records read per step
  size_t chunk_bytes = 4 << 20;
  // query.index_priority: low (nice 19: produce first, the index may fall behind while the
  // machine is saturated) or normal (the index keeps up, at produce's expense).
  bool low_priority = true;
};

class StoreIndexer {
 public:
  StoreIndexer(StoreIndexerOptions options, TopicStore& store);
  ~StoreIndexer();  // Stop()
  StoreIndexer(const StoreIndexer&) = delete;
  StoreIndexer& operator=(const StoreIndexer&) = delete;

  // One pass over every partition; the first error (the pass goes on with the others).
  Status CatchUp();
  void Start();
  void Stop();

  // The partition's index, nullptr until a pass opened it.
  const PartitionIndex* Find(const std::string& topic, int32_t partition);
  // Records below the high watermarks not indexed yet, over all partitions (a gauge).
  int64_t lag();

 private:
  struct Indexed {
    std::unique_ptr<PartitionIndex> index;
    uint64_t truncations = 0;
    int64_t dropped_below = 0;
  };
  Status CatchUpPartition(const std::string& topic, int32_t p, PartitionLog& log);

  const StoreIndexerOptions options_;
  TopicStore& store_;
  std::mutex mu_;  // indexes_ (the map; each index is used by one pass at a time)
  std::mutex pass_mu_;  // one pass at a time
  std::map<std::pair<std::string, int32_t>, Indexed> indexes_;
  std::shared_ptr<leveldb::DB> db_;  // opened by the first pass (pass_mu_)
  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = true;
  std::thread thread_;
};

}  // namespace sluice::broker
