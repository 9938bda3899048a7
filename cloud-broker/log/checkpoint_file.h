// Kafka's checkpoint text format, as in `leader-epoch-checkpoint` and
// `replication-offset-checkpoint`: line 1 the version (0), line 2 the number of entries, then one
// entry per line of space-separated decimal integers, every entry with the same number of fields.
// The partition log keeps three such files in its directory (partition_log.h, "Replication").
// Writes are atomic and durable (WriteFileAtomic: tmp + fsync + rename + directory fsync).
// Thread-safety: pure functions; callers serialise writes to the same path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud-broker/log/file_ops.h"
#include "core/status.h"

namespace sluice::broker {

using CheckpointEntry = std::vector<int64_t>;

// "0\n<n>\n" + each entry's fields joined by spaces, one line each.
std::string FormatCheckpoint(const std::vector<CheckpointEntry>& entries);
// Parses FormatCheckpoint's output. kCorruption (naming the line) for another version, a count
// that does not match the lines, a field that is not an integer or an entry without exactly
// `arity` fields.
Result<std::vector<CheckpointEntry>> ParseCheckpoint(const std::string& text, size_t arity);

// Replaces `path` atomically and durably with FormatCheckpoint(entries).
Status WriteCheckpointFile(const std::string& path, const std::vector<CheckpointEntry>& entries,
                           FileOps& ops);
// kNotFound if `path` does not exist; otherwise ParseCheckpoint's result (errors name the path).
Result<std::vector<CheckpointEntry>> ReadCheckpointFile(const std::string& path, size_t arity,
                                                        FileOps& ops);

}  // namespace sluice::broker
