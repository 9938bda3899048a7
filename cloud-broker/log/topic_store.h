// TopicStore: the broker's topics and their partition logs under `<data_dir>`:
//   <data_dir>/topics/<name>.json          {"name", "partitions", overrides} (topic_config.h)
//   <data_dir>/logs/<name>-<partition>/    PartitionLog segments
// A topic's metadata file is its commit point: it is written (durably) after its partition
// directories exist, and on open only topics with a metadata file are loaded. A create that
// fails (e.g. EMFILE: kUnavailable) removes what it made, so the next attempt starts clean.
// Open files: the store's FileCache holds at most max_open_files segment files of all its
// partitions (file_cache.h).
// Threads: one maintenance thread: timed fsyncs (flush_ms) every flush_check_interval_ms and
// retention every retention_check_interval_ms; stopped by the destructor.
// Thread-safety: thread-safe. Topic and PartitionLog pointers stay valid for the store's life.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cloud-broker/log/file_cache.h"
#include "cloud-broker/log/partition_log.h"
#include "cloud-broker/log/topic_config.h"
#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::broker {

inline constexpr int32_t kMaxPartitions = 1024;
// Every file name the broker derives from a topic name must fit NAME_MAX (255 bytes): the longest
// is "topics/<name>.json.tmp" (9 bytes more than the name; a partition directory
// "<name>-1023" adds 5). Kafka allows 249 characters, which could never be created here.
inline constexpr size_t kMaxTopicNameLength = 255 - (sizeof(".json.tmp") - 1);

// The topic a replicated region keeps consumer groups' committed offsets in (written by the
// brokers themselves, cloud-broker/replication/replicated_offsets.h): clients may read it, with
// the rights to, but neither create it nor produce to it, and queries over all topics skip it.
inline constexpr const char* kConsumerOffsetsTopic = "__consumer_offsets";
inline bool IsInternalTopic(std::string_view name) { return name == kConsumerOffsetsTopic; }

struct TopicStoreOptions {
  std::string data_dir;
  LogOptions log;
  bool auto_create = true;
  int32_t default_partitions = 4;
  int64_t flush_check_interval_ms = 50;
  int64_t retention_check_interval_ms = 300000;  // Kafka's log.retention.check.interval.ms
  size_t max_open_files = 0;  // log.max_open_files; 0: FileCache::DefaultCapacity()
  // topics.max_partitions: partitions of all topics together at most; a create (or an
  // auto-create) past it is kTooLarge and leaves nothing behind. 0: no limit (a replicated
  // region checks its own limit where it creates topics, and its brokers take every replica
  // assigned to them).
  int64_t max_partitions = 0;
};

class Topic {
 public:
  const TopicName& name() const { return name_; }
  int32_t partition_count() const { return static_cast<int32_t>(partitions_.size()); }
  // The overrides it was created with (partitions always set).
  const TopicConfig& config() const { return config_; }
  // nullptr when p is out of range.
  PartitionLog* partition(int32_t p) const {
    return p >= 0 && p < partition_count() ? partitions_[static_cast<size_t>(p)].get() : nullptr;
  }

 private:
  friend class TopicStore;
  Topic(TopicName name, TopicConfig config) : name_(std::move(name)), config_(config) {}
  TopicName name_;
  TopicConfig config_;
  std::vector<std::unique_ptr<PartitionLog>> partitions_;
};

class TopicStore {
 public:
  // Opens the store, loading and recovering every topic on disk.
  static Result<std::unique_ptr<TopicStore>> Open(const TopicStoreOptions& options);
  ~TopicStore();

  // nullptr if the topic does not exist.
  Topic* Find(const TopicName& name) const;
  // Finds the topic or, with auto_create, creates it with default_partitions (kNotFound
  // otherwise). *created (if given) tells whether this call created it.
  Result<Topic*> GetOrCreate(const TopicName& name, bool* created = nullptr);
  // Creates a topic; kFailedPrecondition if it exists, kInvalidArgument on a bad name or count.
  Result<Topic*> Create(const TopicName& name, int32_t partitions);
  Result<Topic*> Create(const TopicName& name, TopicConfig config);
  // One maintenance pass now (timed flushes and retention); returns segments deleted.
  size_t RunMaintenance(bool retention);
  // All topics, sorted by name.
  std::vector<Topic*> Topics() const;
  const FileCache& file_cache() const { return *file_cache_; }
  // Bytes cut from torn log tails while opening.
  uint64_t recovery_truncated_bytes() const { return truncated_bytes_; }
  const TopicStoreOptions& options() const { return options_; }

  // Kafka's rule, with the length the broker's file names allow: 1..kMaxTopicNameLength (246)
  // characters of [A-Za-z0-9._-], not "." or "..".
  static Status ValidateTopicName(const std::string& name);

 private:
  explicit TopicStore(TopicStoreOptions options);
  Result<std::unique_ptr<Topic>> OpenTopic(const TopicName& name, TopicConfig config) const;
  Status Load();
  Result<Topic*> CreateLocked(const TopicName& name, TopicConfig config);
  void MaintenanceLoop();

  std::unique_ptr<FileCache> file_cache_;  // before options_ and topics_: they use it
  const TopicStoreOptions options_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<Topic>> topics_;
  uint64_t truncated_bytes_ = 0;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread maintenance_;
};

}  // namespace sluice::broker
