// Test helpers for the broker suites: records shaped like the gateway's, encoded batches, and
// direct file manipulation of segment files. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/record.h"
#include "core/record_batch.h"

namespace sluice::broker::testing {

inline Record MakeRecord(const std::string& device, const std::string& country, int64_t ts_ms,
                         const std::string& payload) {
  Record r;
  r.timestamp_ms = ts_ms;
  r.key = device;
  r.value = payload;
  r.headers = {{kHeaderSensor, "temp"},      {kHeaderCountry, country},
               {kHeaderGatewayId, "gw-1"},   {kHeaderGatewaySeq, std::to_string(ts_ms % 1000)},
               // Saturating: tests pass INT64_MAX timestamps (issue 10, item 9).
               {kHeaderIngestTs, std::to_string(ts_ms > INT64_MAX - 5 ? ts_ms : ts_ms + 5)},
               {kHeaderSource, "http"}};
  return r;
}

inline std::string EncodeRecords(const std::vector<Record>& records, int64_t producer_id = -1) {
  RecordBatch b;
  b.producer_id = producer_id;
  b.records = records;
  return EncodeBatch(b);
}

// CRC-32C (Castagnoli), bit by bit: independent of core's table-driven implementation.
inline uint32_t SlowCrc32c(const std::string& data, size_t from) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = from; i < data.size(); ++i) {
    crc ^= static_cast<uint8_t>(data[i]);
    for (int k = 0; k < 8; ++k) {
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

inline uint64_t Be(const std::string& b, size_t pos, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  }
  return v;
}

}  // namespace sluice::broker::testing
