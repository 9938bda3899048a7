#include "tests/common/power_cut_env.h"

#include <unistd.h>

namespace sluice::testing {

class TrackedFile final : public leveldb::WritableFile {
 public:
  TrackedFile(leveldb::WritableFile* base, std::shared_ptr<PowerCutEnv::FileState> state,
              PowerCutEnv* env)
      : base_(base), state_(std::move(state)), env_(env) {}
  ~TrackedFile() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    delete base_;  // closing writes out the file's user-space buffer...
    if (!env_->powered_) {
      // ...which a dead disk would not have taken.
      (void)::truncate(state_->name.c_str(), static_cast<off_t>(state_->synced));
    }
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    if (!env_->powered_) {
      return leveldb::Status::OK();  // into a page cache that is gone
    }
    leveldb::Status s = base_->Append(data);
    if (s.ok()) {
      state_->written += data.size();
    }
    return s;
  }
  leveldb::Status Close() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    return env_->powered_ ? base_->Close() : leveldb::Status::OK();
  }
  leveldb::Status Flush() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    return env_->powered_ ? base_->Flush() : leveldb::Status::OK();
  }
  leveldb::Status Sync() override {
    std::lock_guard<std::mutex> lock(env_->mu_);
    if (!env_->powered_) {
      return leveldb::Status::IOError(state_->name, "power cut");
    }
    leveldb::Status s = base_->Sync();
    if (s.ok()) {
      state_->synced = state_->written;
    }
    return s;
  }

 private:
  leveldb::WritableFile* base_;
  std::shared_ptr<PowerCutEnv::FileState> state_;
  PowerCutEnv* env_;
};

PowerCutEnv::PowerCutEnv() : leveldb::EnvWrapper(leveldb::Env::Default()) {}

leveldb::Status PowerCutEnv::Track(const std::string& name, leveldb::Status opened,
                                   uint64_t size, leveldb::WritableFile** result) {
  if (!opened.ok()) {
    return opened;
  }
  auto state = std::make_shared<FileState>();
  state->name = name;
  state->written = size;
  state->synced = size;  // what was there before is taken as durable
  files_[name] = state;
  *result = new TrackedFile(*result, std::move(state), this);
  return opened;
}

leveldb::Status PowerCutEnv::NewWritableFile(const std::string& name,
                                             leveldb::WritableFile** result) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!powered_) {
    return leveldb::Status::IOError(name, "power cut");
  }
  return Track(name, target()->NewWritableFile(name, result), 0, result);
}

leveldb::Status PowerCutEnv::NewAppendableFile(const std::string& name,
                                               leveldb::WritableFile** result) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!powered_) {
    return leveldb::Status::IOError(name, "power cut");
  }
  uint64_t size = 0;
  if (!target()->GetFileSize(name, &size).ok()) {
    size = 0;
  }
  return Track(name, target()->NewAppendableFile(name, result), size, result);
}

leveldb::Status PowerCutEnv::RemoveFile(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!powered_) {
    return leveldb::Status::IOError(name, "power cut");
  }
  files_.erase(name);
  return target()->RemoveFile(name);
}

leveldb::Status PowerCutEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!powered_) {
    return leveldb::Status::IOError(from, "power cut");
  }
  leveldb::Status s = target()->RenameFile(from, to);
  if (s.ok()) {
    auto it = files_.find(from);
    files_.erase(to);
    if (it != files_.end()) {
      it->second->name = to;
      files_[to] = it->second;
      files_.erase(it);
    }
  }
  return s;
}

uint64_t PowerCutEnv::Cut() {
  std::lock_guard<std::mutex> lock(mu_);
  powered_ = false;
  uint64_t dropped = 0;
  for (auto& [name, state] : files_) {
    if (state->written > state->synced) {
      dropped += state->written - state->synced;
    }
    (void)::truncate(name.c_str(), static_cast<off_t>(state->synced));
  }
  return dropped;
}

void PowerCutEnv::Restore() {
  std::lock_guard<std::mutex> lock(mu_);
  powered_ = true;
  files_.clear();  // what survived is on disk; files written from now on are tracked anew
}

}  // namespace sluice::testing
