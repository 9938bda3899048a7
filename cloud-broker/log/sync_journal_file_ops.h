// SyncJournalFileOps: the real file system, plus a journal of what each fdatasync made durable,
// for crash tests that cut a broker's files back to their last fsync (what a power cut leaves:
// tests/integration/replication_test.cc, the checker). Before every fdatasync it notes the
// file's size (everything written before the call is durable once it returns: a lower bound
// even while other threads append) and, once the sync succeeded, appends "<path> <size>\n" to
// the journal with one write(2) (O_APPEND), so a SIGKILL leaves whole lines.
// sluice-broker enables it only when SLUICE_TEST_SYNC_JOURNAL names a journal file; it costs an
// fstat, a readlink and a write per fsync.
// Thread-safety: thread-safe.
#pragma once

#include <string>

#include "cloud-broker/log/file_ops.h"

namespace sluice::broker {

class SyncJournalFileOps final : public FileOps {
 public:
  // Opens (creates, appends to) the journal; throws std::runtime_error if it cannot (start-up).
  explicit SyncJournalFileOps(const std::string& journal_path);
  ~SyncJournalFileOps() override;

  ssize_t PWrite(int fd, const void* buf, size_t n, off_t offset) override;
  int DataSync(int fd) override;
  int Truncate(int fd, off_t size) override;

 private:
  int journal_fd_ = -1;
};

}  // namespace sluice::broker
