#include "cloud-broker/log/topic_store.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <unistd.h>

#include <chrono>

#include "cloud-broker/log/fs_util.h"
#include "cloud-broker/log/segment.h"
#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "topics";
constexpr const char* kJsonSuffix = ".json";

std::string TopicsDir(const std::string& data_dir) { return data_dir + "/topics"; }
std::string LogsDir(const std::string& data_dir) { return data_dir + "/logs"; }

}  // namespace

Status TopicStore::ValidateTopicName(const std::string& name) {
  static_assert(kMaxTopicNameLength + sizeof("-1023") - 1 <= 255);
  if (name.empty() || name.size() > kMaxTopicNameLength) {
    return Status::InvalidArgument("topic name must be 1.." + std::to_string(kMaxTopicNameLength) +
                                   " characters (the broker's file names derived from it must "
                                   "fit 255 bytes)");
  }
  if (name == "." || name == "..") {
    return Status::InvalidArgument("topic name may not be \".\" or \"..\"");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("topic name may only hold [A-Za-z0-9._-]");
    }
  }
  return Status::Ok();
}

namespace {
TopicStoreOptions WithCache(TopicStoreOptions options, FileCache* cache) {
  options.log.file_cache = cache;
  return options;
}
}  // namespace

TopicStore::TopicStore(TopicStoreOptions options)
    : file_cache_(std::make_unique<FileCache>(options.max_open_files > 0
                                                  ? options.max_open_files
                                                  : FileCache::DefaultCapacity())),
      options_(WithCache(std::move(options), file_cache_.get())) {}

Result<std::unique_ptr<TopicStore>> TopicStore::Open(const TopicStoreOptions& options) {
  if (options.default_partitions < 1 || options.default_partitions > kMaxPartitions) {
    return Status::InvalidArgument("default_partitions must be 1..1024");
  }
  std::unique_ptr<TopicStore> store(new TopicStore(options));
  SLUICE_RETURN_IF_ERROR(MakeDirs(TopicsDir(options.data_dir)));
  SLUICE_RETURN_IF_ERROR(MakeDirs(LogsDir(options.data_dir)));
  SLUICE_RETURN_IF_ERROR(store->Load());
  store->maintenance_ = std::thread([s = store.get()] {
    SetCurrentThreadName("log-maintain");
    s->MaintenanceLoop();
  });
  return store;
}

TopicStore::~TopicStore() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (maintenance_.joinable()) {
    maintenance_.join();
  }
}

size_t TopicStore::RunMaintenance(bool retention) {
  size_t deleted = 0;
  for (Topic* t : Topics()) {
    for (int32_t p = 0; p < t->partition_count(); ++p) {
      PartitionLog* log = t->partition(p);
      Status st = log->MaybeFlush();
      if (!st.ok()) {
        LogError(kComponent, "timed flush of " + log->dir() + ": " + st.ToString());
      }
      if (retention) {
        deleted += log->ApplyRetention();
      }
    }
  }
  return deleted;
}

void TopicStore::MaintenanceLoop() {
  const auto tick =
      std::chrono::milliseconds(std::max<int64_t>(1, options_.flush_check_interval_ms));
  auto next_retention = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(options_.retention_check_interval_ms);
  std::unique_lock lock(stop_mu_);
  while (!stop_cv_.wait_for(lock, tick, [this] { return stop_; })) {
    lock.unlock();
    bool retention = std::chrono::steady_clock::now() >= next_retention;
    if (retention) {
      next_retention = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(options_.retention_check_interval_ms);
    }
    RunMaintenance(retention);
    lock.lock();
  }
}

Status TopicStore::Load() {
  const std::string dir = TopicsDir(options_.data_dir);
  Result<std::vector<std::string>> names = ListDir(dir);
  if (!names.ok()) {
    return names.status();
  }
  for (const std::string& file : *names) {
    if (file.size() <= 5 || file.compare(file.size() - 5, 5, kJsonSuffix) != 0) {
      continue;  // e.g. a leftover "<name>.json.tmp" from a crash mid-create
    }
    const std::string path = dir + "/" + file;
    Result<std::string> text = ReadWholeFile(path, *options_.log.file_ops);
    if (!text.ok()) {
      return text.status();
    }
    std::string name;
    std::string field;
    Result<TopicConfig> config = ParseTopicConfigJson(*text, &name, &field);
    if (!config.ok()) {
      return Status::Corruption(path + ": " + config.status().message());
    }
    if (!ValidateTopicName(name).ok() || name + kJsonSuffix != file ||
        config->partitions < 1) {
      return Status::Corruption(path + ": bad topic name or partition count");
    }
    Result<std::unique_ptr<Topic>> topic = OpenTopic(TopicName(name), *config);
    if (!topic.ok()) {
      return topic.status();
    }
    for (const auto& p : (*topic)->partitions_) {
      truncated_bytes_ += p->recovery_truncated_bytes();
    }
    topics_[name] = std::move(topic).value();
  }
  return Status::Ok();
}

Result<std::unique_ptr<Topic>> TopicStore::OpenTopic(const TopicName& name,
                                                     TopicConfig config) const {
  std::unique_ptr<Topic> topic(new Topic(name, config));
  const LogOptions log_options = config.Apply(options_.log);
  for (int32_t p = 0; p < config.partitions; ++p) {
    std::string dir = LogsDir(options_.data_dir) + "/" + name.value() + "-" + std::to_string(p);
    Result<std::unique_ptr<PartitionLog>> log = PartitionLog::Open(dir, log_options);
    if (!log.ok()) {
      return log.status();
    }
    topic->partitions_.push_back(std::move(log).value());
  }
  return topic;
}

Topic* TopicStore::Find(const TopicName& name) const {
  std::shared_lock lock(mu_);
  auto it = topics_.find(name.value());
  return it == topics_.end() ? nullptr : it->second.get();
}

Result<Topic*> TopicStore::GetOrCreate(const TopicName& name, bool* created) {
  if (created != nullptr) {
    *created = false;
  }
  if (Topic* t = Find(name)) {
    return t;
  }
  if (!options_.auto_create) {
    return Status::NotFound("unknown topic " + name.value());
  }
  std::unique_lock lock(mu_);
  auto it = topics_.find(name.value());
  if (it != topics_.end()) {
    return it->second.get();
  }
  TopicConfig config;
  config.partitions = options_.default_partitions;
  Result<Topic*> t = CreateLocked(name, config);
  if (t.ok() && created != nullptr) {
    *created = true;
  }
  return t;
}

Result<Topic*> TopicStore::Create(const TopicName& name, int32_t partitions) {
  if (partitions < 1 || partitions > kMaxPartitions) {
    return Status::InvalidArgument("partitions must be 1..1024");
  }
  TopicConfig config;
  config.partitions = partitions;
  return Create(name, config);
}

Result<Topic*> TopicStore::Create(const TopicName& name, TopicConfig config) {
  std::unique_lock lock(mu_);
  if (topics_.count(name.value()) > 0) {
    return Status::FailedPrecondition("topic " + name.value() + " exists");
  }
  if (config.partitions == 0) {
    config.partitions = options_.default_partitions;
  }
  return CreateLocked(name, config);
}

Result<Topic*> TopicStore::CreateLocked(const TopicName& name, TopicConfig config) {
  SLUICE_RETURN_IF_ERROR(ValidateTopicName(name.value()));
  const int32_t partitions = config.partitions;
  if (partitions < 1 || partitions > kMaxPartitions) {
    return Status::InvalidArgument("partitions must be 1..1024");
  }
  if (options_.max_partitions > 0) {
    int64_t held = 0;
    for (const auto& [n, t] : topics_) {
      held += t->partition_count();
    }
    if (held + partitions > options_.max_partitions) {
      return Status::TooLarge("topic " + name.value() +
                              " would bring this broker's partitions to " +
                              std::to_string(held + partitions) + ", over the limit of " +
                              std::to_string(options_.max_partitions) +
                              " (topics.max_partitions)");
    }
  }
  FileOps& ops = *options_.log.file_ops;
  const std::string meta = TopicsDir(options_.data_dir) + "/" + name.value() + kJsonSuffix;
  Result<std::unique_ptr<Topic>> topic = OpenTopic(name, config);
  Status st = topic.ok() ? FsyncDir(LogsDir(options_.data_dir), ops) : topic.status();
  if (st.ok()) {
    st = WriteFileAtomic(meta, TopicConfigJson(name.value(), config), ops);
  }
  if (!st.ok()) {
    // Nothing may stay behind: directories without a metadata file are not a topic, and the
    // next attempt (or a restart) must find a clean slate.
    topic = Status::Internal("discarded");  // closes every log before its directory goes
    ::unlink(meta.c_str());
    ::unlink((meta + ".tmp").c_str());
    for (int32_t p = 0; p < partitions; ++p) {
      // A fresh partition holds at most its first segment's files.
      Status rm = RemoveDirOf(LogsDir(options_.data_dir) + "/" + name.value() + "-" +
                                  std::to_string(p),
                              Segment::FileNames(0));
      if (!rm.ok()) {
        LogError(kComponent, "cleaning up after a failed create of " + name.value() + ": " +
                                 rm.ToString());
      }
    }
    LogError(kComponent, "cannot create topic " + name.value() + ": " + st.ToString());
    // No kNotFound out of here: to a client that reads as "no such topic", not "try again".
    return Status(st.code() == StatusCode::kNotFound ? StatusCode::kIOError : st.code(),
                  "cannot create topic " + name.value() + ": " + st.message());
  }
  LogInfo(kComponent, "created topic " + name.value() + " with " + std::to_string(partitions) +
                          " partitions");
  Topic* raw = topic->get();
  topics_[name.value()] = std::move(topic).value();
  return raw;
}

std::vector<Topic*> TopicStore::Topics() const {
  std::shared_lock lock(mu_);
  std::vector<Topic*> out;
  for (const auto& [name, t] : topics_) {
    out.push_back(t.get());
  }
  return out;
}

}  // namespace sluice::broker
