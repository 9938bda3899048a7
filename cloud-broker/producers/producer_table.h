// ProducerTable: the broker's idempotent-producer state (Kafka's producer state manager, kept per
// partition as Redpanda's rm_stm). For every (producer id, topic, partition) it remembers the
// highest gateway sequence stored (the `gateway_seq` header of each record) and the last
// kRecentBatches appended batches (sequence range -> offset range), so that
//   - a retried record whose sequence is <= the highest stored is skipped, not appended again
//     (a gateway sends the records of one partition in increasing sequence order), and
//   - a retried batch that is entirely stored is answered with its ORIGINAL offsets.
// Durability: the state is not written anywhere of its own; RebuildFromLog() derives it from the
// partition logs at start-up (every stored batch carries producer_id and each record its
// gateway_seq), so it survives restarts exactly as the log does.
// Memory: at most max_producers producers; the least recently used one is evicted beyond that
// (counted in sluice_broker_producer_evictions_total). An evicted producer's retries are no
// longer deduplicated until the broker restarts (size the cap above the number of gateways).
// Pipelining (several batches of one producer in flight, Kafka's max.in.flight with its
// OutOfOrderSequence check): a request may say it follows an earlier batch that is still
// unacknowledged (`Sluice-After-Seq: N`, N = that batch's last gateway_seq). It is stored only
// once a request of this producer on this topic that ended at or after N has SUCCEEDED as a whole
// (AckedThrough), so a later batch can never be stored before an earlier one that failed (which
// would reorder a device's records, and make the per-partition dedup above skip the earlier
// batch's records on its retry). WaitForAcked waits, without the producer lock, for that success
// or for a failure of this producer, while another request of this producer is running (Enter:
// from arrival to answer) and otherwise only 100 ms (the batch it follows may still be on its
// way on another connection), so a waiting request holds a server thread only briefly for a batch
// that never comes; the caller refuses with 409 when the success does not come. The mark
// is in memory only: after a restart a pipelined request waits for its predecessor again, and a
// request without the header (its predecessor was acknowledged) never waits.
// Thread-safety: thread-safe. Lock(pid) serialises the produce requests of one producer (check +
// append + record must be atomic with respect to its own retries); different producers run in
// parallel.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "core/metrics.h"
#include "core/record.h"
#include "core/status.h"

namespace sluice::broker {

class TopicStore;

inline constexpr size_t kRecentBatches = 5;  // as Kafka's max.in.flight idempotence window

// One appended batch of one producer on one partition.
struct AppendedRange {
  int64_t first_seq = -1;
  int64_t last_seq = -1;
  int64_t base_offset = -1;
  int64_t last_offset = -1;
};

struct PartitionProducerState {
  int64_t last_seq = -1;  // highest gateway_seq stored; -1: none
  std::deque<AppendedRange> recent;
};

class ProducerTable {
 public:
  class Entry;
  // Held while a produce request of this producer runs; gives access to its partitions' state.
  class Guard {
   public:
    PartitionProducerState& State(const std::string& topic, int32_t partition);
    // Records an appended batch: raises last_seq and remembers the range.
    void Appended(const std::string& topic, int32_t partition, const AppendedRange& r);
    // The recent batch covering exactly [first_seq, last_seq] on that partition, or nullptr.
    const AppendedRange* FindExact(const std::string& topic, int32_t partition,
                                   int64_t first_seq, int64_t last_seq);
    // Highest last gateway_seq of a request of this producer on `topic` that succeeded whole.
    int64_t AckedThrough(const std::string& topic);
    // A request ending at `last_seq` succeeded whole: raises AckedThrough, wakes waiters.
    void MarkAcked(const std::string& topic, int64_t last_seq);
    // A request of this producer failed: wakes waiters so they answer 409 at once.
    void MarkFailed();
    // Releases the producer lock until AckedThrough(topic) >= after_seq, a request of this
    // producer fails, or `timeout_ms` passes; holds the lock again on return. True if reached.
    bool WaitForAcked(const std::string& topic, int64_t after_seq, int64_t timeout_ms);

   private:
    friend class ProducerTable;
    ProducerTable* table_ = nullptr;
    std::shared_ptr<Entry> entry_;
    std::unique_lock<std::mutex> lock_;
  };

  // Counts one request of a producer as running while it lives (see WaitForAcked).
  class Running {
   public:
    Running() = default;
    Running(Running&&) = default;
    Running& operator=(Running&&) = default;
    ~Running();

   private:
    friend class ProducerTable;
    std::shared_ptr<Entry> entry_;
  };

  // max_waiters: requests that may wait in WaitForAcked at once, across producers; keep it below
  // the server's thread count so a waiting request can never hold the last thread the request it
  // waits for needs (beyond it, a pipelined request that would wait is refused with 409 at once).
  explicit ProducerTable(size_t max_producers, MetricsRegistry* metrics = nullptr,
                         int max_waiters = 3);
  ~ProducerTable();

  Guard Lock(int64_t producer_id);
  Running Enter(int64_t producer_id);
  // Requests of this producer running now (entered, not waiting in WaitForAcked).
  int running(int64_t producer_id);

  // Scans every partition of every topic in `store` (segment files, batch by batch) and records
  // each producer batch. Call before serving. Returns the number of batches seen.
  Result<uint64_t> RebuildFromLog(const TopicStore& store);  // producer_rebuild.cc
  // Replaces what every producer has for one partition with what its log holds now (a replica
  // that just became leader: it appended as a follower, and truncation may have cut batches
  // this table still remembered). Call before the partition takes produce requests.
  Result<uint64_t> RebuildPartition(const std::string& topic, int32_t partition,
                                    const std::string& partition_dir);

  // Snapshots (producer_snapshot.cc): written at a clean stop, loaded at start instead of
  // RebuildFromLog when every partition's log still ends where the snapshot says. The file is
  // deleted when loaded. False (with *why_not) when it cannot be used: the table is then empty.
  Status WriteSnapshot(const TopicStore& store, const std::string& path);
  Result<bool> LoadSnapshot(const TopicStore& store, const std::string& path,
                            std::string* why_not);

  // Counts records a produce skipped as already stored (sluice_broker_duplicates_total).
  void CountDuplicates(uint64_t n);
  uint64_t duplicates() const { return duplicates_.load(); }

  size_t size() const;
  uint64_t evictions() const { return evictions_.load(); }
  // Pipelined requests that had to wait for the batch they follow (sluice_broker_pipeline_waits).
  uint64_t pipeline_waits() const { return pipeline_waits_.load(); }

 private:
  std::shared_ptr<Entry> EntryFor(int64_t producer_id);  // creates it, LRU-evicts beyond the cap
  Result<bool> LoadSnapshotFile(const TopicStore& store, const std::string& path,
                                std::string* why_not);

  mutable std::mutex mu_;
  const size_t max_producers_;
  std::list<int64_t> lru_;  // front: most recently used
  std::map<int64_t, std::pair<std::shared_ptr<Entry>, std::list<int64_t>::iterator>> entries_;
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> duplicates_{0};
  std::atomic<uint64_t> pipeline_waits_{0};
  const int max_waiters_;
  std::atomic<int> waiters_{0};
  Counter* evictions_metric_ = nullptr;
  Counter* duplicates_metric_ = nullptr;
  Counter* pipeline_waits_metric_ = nullptr;
  Gauge* size_metric_ = nullptr;
};

// The record's gateway_seq header as a number, or -1 if absent or malformed.
int64_t GatewaySeqOf(const Record& record);

}  // namespace sluice::broker
