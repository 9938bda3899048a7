// Codec benchmark: RecordBatch v2 encode/decode and CRC-32C throughput, each beside memcpy of the
// same bytes measured in the same run (the ceiling for any pass over the data).
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/crc32c.h"
#include "core/record.h"
#include "core/record_batch.h"

using namespace sluice;

int main() {
  // 1,000 records of ~200-byte JSON payloads, as a gateway forwards them.
  std::mt19937_64 rng(1);
  RecordBatch batch;
  batch.producer_id = 42;
  batch.base_sequence = 0;
  for (int i = 0; i < 1000; ++i) {
    SensorEvent e;
    e.device_id = DeviceId("de-dev-" + std::to_string(i % 300));
    e.sensor = "temperature";
    e.country = CountryCode("DE");
    e.ts_ms = 1700000000000 + i;
    e.ingest_ms = e.ts_ms + 3;
    e.gateway_id = GatewayId("gw-de-1");
    e.gateway_seq = GatewaySeq(static_cast<uint64_t>(i));
    e.source = "mqtt";
    e.payload = "{\"device_id\":\"de-dev-1\",\"value\":" + std::to_string(rng() % 1000) +
                ",\"pad\":\"" + std::string(150, 'x') + "\"}";
    batch.records.push_back(ToRecord(e));
  }
  const std::string encoded = EncodeBatch(batch);
  const double mb = static_cast<double>(encoded.size()) / 1e6;
  std::vector<char> dst(encoded.size());

  const double memcpy_mbs = bench::Rate([&] { std::memcpy(dst.data(), encoded.data(), encoded.size()); }, mb);
  volatile size_t sink = 0;
  const double enc_rps = bench::Rate([&] { sink = sink + EncodeBatch(batch).size(); }, 1000);
  const double dec_rps = bench::Rate([&] { sink = sink + DecodeBatch(encoded)->records.size(); }, 1000);
  const double crc_mbs = bench::Rate([&] { sink = sink + crc32c::Value(encoded); }, mb);
  const double bytes_per_record = static_cast<double>(encoded.size()) / 1000.0;

  std::printf("batch: 1000 records, %.0f bytes (%.0f bytes/record)\n", static_cast<double>(encoded.size()),
              bytes_per_record);
  bench::Row("RecordBatch v2 encode (MB/s)", enc_rps * bytes_per_record / 1e6, "MB/s", "memcpy", memcpy_mbs);
  bench::Row("RecordBatch v2 decode+CRC check (MB/s)", dec_rps * bytes_per_record / 1e6, "MB/s", "memcpy",
             memcpy_mbs);
  bench::Row("CRC-32C (MB/s)", crc_mbs, "MB/s", "memcpy", memcpy_mbs);
  std::printf("%-44s %12.0f records/s\n", "encode", enc_rps);
  std::printf("%-44s %12.0f records/s\n", "decode", dec_rps);
  return sink == 0 ? 1 : 0;
}
