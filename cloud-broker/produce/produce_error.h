// ProduceError: why a produce request was refused, typed, so that each transport (the HTTP API
// today, the Kafka protocol later) maps it to its own answer (server/produce.cc: status codes
// and JSON). Nothing was stored for the refused records (see ProduceService for the one case
// where other partitions of the same request were stored).
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sluice::broker {

enum class ProduceErrc {
  kInvalidHeader,        // a request parameter (e.g. after_seq) is malformed or misused
  kInvalidTopic,         // the topic name is not a valid name
  kCorruptBatch,         // framing, CRC, trailing bytes, no records
  kInvalidBatch,         // a batch field (attributes, record count) is refused
  kInvalidRecord,        // one record (index, field) is refused
  kResidency,            // a record's country may not be stored in this region
  kUnknownTopic,         // no such topic and auto-create is off
  kProducerNotOwned,     // the producer id belongs to another principal
  kTooManyProducerIds,   // the principal holds producers.max_ids_per_principal ids
  kOutOfOrderSequence,   // the batch it follows (after_seq) is not stored yet
  kStorageUnavailable,   // retryable: the log cannot take it now (fds, I/O)
  kInsufficientStorage,  // retryable: the disk is full
  kNotLeader,            // retryable elsewhere: another broker leads the partition
  kNotEnoughReplicas,    // retryable: too few in-sync replicas (before or after the append)
};

struct ProduceError {
  ProduceErrc code = ProduceErrc::kCorruptBatch;
  std::string message;  // for people: what is wrong and how to fix it
  std::string field;    // the offending field ("key", "headers.country", ...); empty: none
  int64_t index = -1;   // the offending record's index in the batch; -1: none
  size_t records = 0;   // records refused by this answer
  std::string country;  // kResidency: the refused record's country
  std::string gateway_id;  // kResidency: the refused record's gateway_id header ("" if none)
};

// The machine-readable name ("invalid_record", ...): the HTTP answer's "error" and the metric's
// reason.
const char* ProduceErrorName(ProduceErrc code);
// Whether the same request may succeed later unchanged (storage, ordering).
bool IsRetryable(ProduceErrc code);

}  // namespace sluice::broker
