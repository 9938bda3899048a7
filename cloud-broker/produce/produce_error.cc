#include "cloud-broker/produce/produce_error.h"

namespace sluice::broker {

const char* ProduceErrorName(ProduceErrc code) {
  switch (code) {
    case ProduceErrc::kInvalidHeader:
      return "invalid_header";
    case ProduceErrc::kInvalidTopic:
      return "invalid_topic";
    case ProduceErrc::kCorruptBatch:
      return "corrupt_batch";
    case ProduceErrc::kInvalidBatch:
      return "invalid_batch";
    case ProduceErrc::kInvalidRecord:
      return "invalid_record";
    case ProduceErrc::kResidency:
      return "residency";
    case ProduceErrc::kUnknownTopic:
      return "unknown_topic";
    case ProduceErrc::kProducerNotOwned:
      return "producer_not_owned";
    case ProduceErrc::kTooManyProducerIds:
      return "too_many_producer_ids";
    case ProduceErrc::kOutOfOrderSequence:
      return "out_of_order_sequence";
    case ProduceErrc::kStorageUnavailable:
      return "storage_unavailable";
    case ProduceErrc::kInsufficientStorage:
      return "insufficient_storage";
    case ProduceErrc::kNotLeader:
      return "not_leader";
    case ProduceErrc::kNotEnoughReplicas:
      return "not_enough_replicas";
  }
  return "unknown";
}

bool IsRetryable(ProduceErrc code) {
  return code == ProduceErrc::kOutOfOrderSequence || code == ProduceErrc::kStorageUnavailable ||
         code == ProduceErrc::kInsufficientStorage || code == ProduceErrc::kTooManyProducerIds ||
         code == ProduceErrc::kNotLeader || code == ProduceErrc::kNotEnoughReplicas;
}

}  // namespace sluice::broker
