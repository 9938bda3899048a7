// TopicConfig: a topic's partition count and its per-topic overrides of the broker's log
// defaults (retention, flush policy), as given to POST /v1/topics and persisted in
// topics/<name>.json. Only overrides are stored, so a topic without one follows the broker's
// configured default even after that default changes (as Kafka).
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cloud-broker/log/partition_log.h"
#include "core/status.h"

namespace sluice::broker {

struct TopicConfig {
  int32_t partitions = 0;  // 0: the broker's default
  std::optional<int64_t> retention_ms;     // -1: forever
  std::optional<int64_t> retention_bytes;  // -1: unlimited
  std::optional<FlushPolicy> flush;
  std::optional<int64_t> flush_ms;
  std::optional<int64_t> flush_bytes;

  // `defaults` with this topic's overrides applied.
  LogOptions Apply(const LogOptions& defaults) const;
};

// "always" | "interval" | "never".
bool ParseFlushPolicy(const std::string& s, FlushPolicy* out);
const char* FlushPolicyName(FlushPolicy p);

// Parses the JSON object of POST /v1/topics ({name, partitions, retention_ms, retention_bytes,
// flush, flush_ms, flush_bytes}; unknown members refused). kInvalidArgument with *field set to
// the offending member. *name receives "name".
Result<TopicConfig> ParseTopicConfigJson(const std::string& json, std::string* name,
                                         std::string* field);
// The metadata file's body: {"name", "partitions", and each override}.
std::string TopicConfigJson(const std::string& name, const TopicConfig& config);

}  // namespace sluice::broker
