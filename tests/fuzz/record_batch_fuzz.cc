// libFuzzer target: the Kafka RecordBatch v2 decoder (core/record_batch.h), which reads every
// produce body a client sends, with the broker's bounds. A batch that decodes must encode again and decode to the same
// records.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/record_batch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  size_t consumed = 0;
  const sluice::DecodeLimits limits;  // the broker's bounds: no input may cost more than they allow
  sluice::Result<sluice::RecordBatch> batch = sluice::DecodeBatch(bytes, &consumed, &limits);
  if (!batch.ok()) {
    return 0;
  }
  if (consumed > size) {
    std::abort();
  }
  const std::string again = sluice::EncodeBatch(*batch);
  sluice::Result<sluice::RecordBatch> round = sluice::DecodeBatch(again);
  if (!round.ok() || round->records.size() != batch->records.size()) {
    std::abort();
  }
  for (size_t i = 0; i < batch->records.size(); ++i) {
    if (round->records[i].key != batch->records[i].key ||
        round->records[i].value != batch->records[i].value ||
        round->records[i].headers.size() != batch->records[i].headers.size()) {
      std::abort();
    }
  }
  return 0;
}
