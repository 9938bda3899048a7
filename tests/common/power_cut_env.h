// A LevelDB Env that can simulate a power cut at any moment: it remembers, for every file
// written through it, how much its last Sync() covered. Cut() truncates each file to that
// (dropping what only the page cache held) and from then on the "disk" is gone: writes vanish,
// Sync() and file creation, removal and renaming fail, so nothing is acknowledged as durable
// after the cut. Restore() powers it back on for the next open. This is how LevelDB and RocksDB
// test their own crash safety (FaultInjectionTestEnv); a real power cut of this machine is not
// available to tests. Reads, locks and threads are the default Env's. Directory entries are
// taken as durable (LevelDB syncs the directory with its MANIFEST).
// Thread-safety: safe for concurrent use, as leveldb requires.
#pragma once

#include <leveldb/env.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace sluice::testing {

class PowerCutEnv final : public leveldb::EnvWrapper {
 public:
  PowerCutEnv();

  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& name,
                                    leveldb::WritableFile** result) override;
  leveldb::Status RemoveFile(const std::string& name) override;
  leveldb::Status RenameFile(const std::string& from, const std::string& to) override;

  // The power cut: truncates every tracked file to its last synced size; returns the bytes
  // dropped. Until Restore(), writes are dropped and everything that would persist fails.
  uint64_t Cut();
  void Restore();

  struct FileState {
    std::string name;
    uint64_t written = 0;  // bytes appended
    uint64_t synced = 0;   // bytes covered by the last Sync()
  };

 private:
  friend class TrackedFile;
  leveldb::Status Track(const std::string& name, leveldb::Status opened, uint64_t size,
                        leveldb::WritableFile** result);

  std::mutex mu_;  // held across every tracked write and sync, so Cut() sees a settled state
  bool powered_ = true;
  std::map<std::string, std::shared_ptr<FileState>> files_;
};

}  // namespace sluice::testing
