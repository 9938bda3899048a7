// An independent reader of a Sluice broker's on-disk partition logs, for tests that must check
// what is really on disk without trusting the broker's own decoder. It shares no code with
// core/record_batch.*, core/crc32c* or cloud-broker/**: the RecordBatch v2 parsing and CRC-32C
// are reimplemented here from the Kafka documentation
// (https://kafka.apache.org/documentation/#recordbatch), so a bug in the broker's codec cannot
// hide itself by being shared with the check.
//
// Layout read: <data_dir>/logs/<topic>-<partition>/<20-digit base offset>.log, each file holding
// RecordBatch v2 batches back to back. The partition is the number after the LAST '-' of the
// directory name (topic names may contain '-'); directories not of that form, and files not
// ending in ".log" (.index, .timeindex, ...), are ignored.
//
// Thread-safety: ReadBrokerLogs is a pure function of the files it reads; it may run while a
// broker appends (it then sees a prefix of each log, possibly ending in a torn batch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice::testing {

// One record as stored. A null key or value (Kafka length -1) reads as "", as does a null
// header value.
struct DiskRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;        // baseOffset + offsetDelta
  int64_t timestamp_ms = 0;  // baseTimestamp + timestampDelta (maxTimestamp for LogAppendTime)
  int64_t producer_id = -1;  // the batch's
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;  // in stored order

  // The value of the one header named `name`; "" if absent (the first one if repeated).
  // *count (optional) gets how many headers have that name, so a test can insist on exactly one.
  std::string Header(const std::string& name, int* count = nullptr) const;
};

struct DiskLogScan {
  // In order: topics and partitions by name and number, segments by base offset, then as stored.
  std::vector<DiskRecord> records;
  int64_t batches = 0;             // whole batches read (including empty ones)
  int64_t torn_tails = 0;          // segments that ended in a partial batch (a crash mid-append)
  std::vector<std::string> files;  // every .log file read, full paths, in the order read
};

// Reads every partition log of every topic under data_dir/logs, or of the topic named exactly
// `topic` when it is not "". A segment whose last batch is cut short (fewer than 12 bytes left, or
// a declared length running past the end of the file) ends there and counts in torn_tails: not an
// error. (As in Kafka, a corrupted batchLength that points past the end reads the same way.)
// Errors in a batch say "<file>:<byte position of the batch>: <reason>":
//   kCorruption: CRC-32C mismatch, magic other than 2, or framing that does not add up (a length
//                or count that is negative, implausible or does not fit its batch or record,
//                offset deltas not increasing or past lastOffsetDelta, bytes left over).
//   kInvalidArgument: a compressed batch (attributes bits 0-2 not 0).
//   kNotFound: data_dir/logs does not exist; kIOError: a directory or file cannot be read.
Result<DiskLogScan> ReadBrokerLogs(const std::string& data_dir, const std::string& topic = "");

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `n` bytes: what each batch's crc field
// holds over attributes..end. Exposed so tests can forge or repair batches independently.
uint32_t DiskCrc32c(const char* data, size_t n);

}  // namespace sluice::testing
