// Helpers for the replication tests of the partition log: tagged batches, file slurping, the
// records of a log, and copying a leader's batches into a follower as a fetcher would.
// Thread-safety: pure functions.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cloud-broker/log/partition_log.h"
#include "tests/cloud-broker/test_records.h"

namespace sluice::broker::testing {

// A batch of `n` records whose values are "<tag>/<i>"; its partitionLeaderEpoch is `epoch`.
inline std::string Tagged(const std::string& tag, int n, int32_t epoch = -1) {
  std::vector<Record> recs;
  for (int i = 0; i < n; ++i) {
    recs.push_back(MakeRecord("dev-1", "DE", 1'700'000'000'000 + i,
                              tag + "/" + std::to_string(i) + std::string(40, '.')));
  }
  RecordBatch b;
  b.partition_leader_epoch = epoch;
  b.records = recs;
  return EncodeBatch(b);
}

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every file of `dir` with the extension `ext` (".log"): name -> bytes.
inline std::map<std::string, std::string> FilesWith(const std::string& dir,
                                                    const std::string& ext) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ext) {
      out[e.path().filename().string()] = Slurp(e.path().string());
    }
  }
  return out;
}

// "offset:value-prefix" of every readable record, for comparing logs.
inline std::vector<std::string> Values(const PartitionLog& log, int64_t from = -1) {
  Result<LogReadResult> r =
      log.Read(from < 0 ? log.start_offset() : from, 1'000'000, 64 << 20);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::string> out;
  if (r.ok()) {
    for (const LogRecord& rec : r->records) {
      const std::string& v = *rec.record.value;
      out.push_back(std::to_string(rec.offset) + ":" + v.substr(0, v.find('.')));
    }
  }
  return out;
}

// Copies the leader's batches from the follower's log end on, as a fetcher would. Returns how
// many batches it appended.
inline int CatchUp(const PartitionLog& leader, PartitionLog& follower, size_t max_bytes = 700) {
  int n = 0;
  while (follower.log_end_offset() < leader.log_end_offset()) {
    Result<LogBatches> got = leader.ReadBatches(follower.log_end_offset(), max_bytes);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || got->batches.empty()) {
      break;
    }
    for (std::string& b : got->batches) {
      Result<int64_t> base = follower.AppendAsFollower(std::move(b));
      EXPECT_TRUE(base.ok()) << base.status().ToString();
      if (!base.ok()) {
        return n;
      }
      ++n;
    }
  }
  return n;
}

inline LogOptions SmallLog() {
  LogOptions o;
  o.segment_bytes = 1024;
  o.index_interval_bytes = 300;
  return o;
}

}  // namespace sluice::broker::testing
