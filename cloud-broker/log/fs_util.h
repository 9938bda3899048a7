// Small POSIX file-system helpers for the broker's log and metadata: directory creation and
// listing, durable atomic file replacement (tmp + fsync + rename + directory fsync).
// Thread-safety: pure functions; callers serialise writes to the same path.
#pragma once

#include <string>
#include <vector>

#include "cloud-broker/log/file_ops.h"
#include "core/status.h"

namespace sluice::broker {

// mkdir -p; ok if the directory exists.
Status MakeDirs(const std::string& path);
// Opens go through `ops` (fault injection); errors map as ErrnoStatus (EMFILE: kUnavailable).
// fsyncs a directory so entries created, renamed or removed in it are durable.
Status FsyncDir(const std::string& path, FileOps& ops = FileOps::Default());
// Replaces `path` with `contents` atomically and durably: a reader sees the old or the new file,
// never a mix, and after return the new contents survive a crash.
Status WriteFileAtomic(const std::string& path, const std::string& contents,
                       FileOps& ops = FileOps::Default());
// kNotFound only if the file does not exist.
Result<std::string> ReadWholeFile(const std::string& path, FileOps& ops = FileOps::Default());
// rm -r; ok if it does not exist.
Status RemoveAll(const std::string& path);
// Removes `dir` when it holds at most `names` (unlink each, then rmdir), which needs no file
// descriptor: the clean-up after a create failed with EMFILE must not need one. Anything else in
// it falls back to RemoveAll. Ok if it does not exist.
Status RemoveDirOf(const std::string& dir, const std::vector<std::string>& names);
// Names (not paths) of the entries of `dir`, sorted. kNotFound if dir does not exist.
Result<std::vector<std::string>> ListDir(const std::string& dir);

}  // namespace sluice::broker
