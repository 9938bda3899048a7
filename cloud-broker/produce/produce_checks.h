// The record checks of a produce request (docs/API.md, "Produce"), run on the decoded batch
// before residency and before anything is stored: batch attributes (all 0), then per record its key
// (printable UTF-8), its Sluice headers (country present, well-formed and once; no other Sluice
// header twice; sensor, gateway_id, source printable UTF-8; gateway_seq, ingest_ts decimal) and
// its timestamp (not before 1970, not more than produce.max_future ahead of the broker's clock,
// Kafka's message.timestamp.after.max.ms). The decoder (DecodeLimits) has already bounded
// counts and sizes. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cloud-broker/produce/produce_error.h"
#include "core/record_batch.h"

namespace sluice::broker {

// max_future_ms < 0 turns the future bound off.
std::optional<ProduceError> CheckProducedBatch(const RecordBatch& batch, int64_t now_ms,
                                                 int64_t max_future_ms);

// Why DecodeBatch refused a batch: kCorruptBatch (framing, CRC), kInvalidBatch (field
// "attributes" or "records") or kInvalidRecord (with index and field "key"/"headers").
ProduceError DecodeRefusal(const Status& status, const DecodeViolation& violation);

}  // namespace sluice::broker
