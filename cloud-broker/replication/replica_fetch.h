// The replication wire protocol between brokers of one region (Kafka's follower Fetch and
// OffsetForLeaderEpoch, over HTTP; mutual TLS and the `replica` ACL operation guard it like any
// other route):
//   POST /v1/replication/fetch        ReplicaFetchRequest (JSON) -> ReplicaFetchResponse
//   POST /v1/replication/epoch_end    EpochEndRequest (JSON)     -> EpochEndResponse (JSON)
// A fetch names, per partition, the follower's log end offset (what it has durably) and the
// leader epoch it believes current; the leader answers each partition with its high watermark,
// its log end, and raw RecordBatch bytes from that offset (whole batches, byte for byte as the
// leader stored them, offsets and leader epochs included), or an error ("not_leader",
// "fenced_leader_epoch", "unknown_partition", "offset_out_of_range").
// The response body is a frame: a 4-byte big-endian length, that many bytes of JSON header
// ({"partitions":[{..., "bytes": n}]}), then each partition's n bytes in header order.
// Every count and size in a request or response is bounded (kMax*), so a peer, even a hostile
// one that got past authentication, cannot make the other allocate without limit.
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::broker {

inline constexpr size_t kMaxReplicaFetchPartitions = 10000;
inline constexpr int64_t kMaxReplicaFetchBytes = 64LL * 1024 * 1024;  // per response
inline constexpr int64_t kMaxReplicaFetchWaitMs = 10000;

struct ReplicaFetchPartition {
  std::string topic;
  int32_t partition = 0;
  int64_t fetch_offset = 0;    // the follower's log end offset
  int32_t leader_epoch = 0;    // the epoch the follower follows
};

struct ReplicaFetchRequest {
  std::string replica_id;      // the follower broker
  int64_t incarnation = 0;     // its registration's create revision: a leader refuses
                               // (stale_broker_epoch) one that is not the registered one now
  int64_t max_bytes = 1 << 20;  // per response, at least one batch of the first partition
  int64_t wait_ms = 0;          // long-poll when nothing is new (bounded by kMaxReplicaFetchWaitMs)
  std::vector<ReplicaFetchPartition> partitions;
};

struct ReplicaFetchPartitionResult {
  std::string topic;
  int32_t partition = 0;
  std::string error;            // empty: ok
  int64_t high_watermark = 0;
  int64_t log_end_offset = 0;   // the leader's
  int64_t log_start_offset = 0;
  std::string records;          // whole batches from fetch_offset
};

struct ReplicaFetchResponse {
  std::vector<ReplicaFetchPartitionResult> partitions;
};

std::string EncodeFetchRequest(const ReplicaFetchRequest& r);
// kInvalidArgument naming the field for anything malformed or over a bound.
Result<ReplicaFetchRequest> DecodeFetchRequest(const std::string& json);
std::string EncodeFetchResponse(const ReplicaFetchResponse& r);
// kCorruption for a frame that does not add up.
Result<ReplicaFetchResponse> DecodeFetchResponse(const std::string& body);

// OffsetForLeaderEpoch (KIP-101/279): the leader's end offset of the largest epoch <= the one
// asked for, so a follower truncates exactly where its log diverged.
struct EpochEndRequest {
  std::string topic;
  int32_t partition = 0;
  int32_t leader_epoch = 0;  // the follower's latest epoch
  int32_t current_leader_epoch = 0;  // the epoch the follower follows now (fencing)
};
struct EpochEndResponse {
  std::string error;       // empty: ok
  int32_t leader_epoch = -1;  // -1: undefined (the follower truncates to its own start)
  int64_t end_offset = -1;
};
std::string EncodeEpochEndRequest(const EpochEndRequest& r);
Result<EpochEndRequest> DecodeEpochEndRequest(const std::string& json);
std::string EncodeEpochEndResponse(const EpochEndResponse& r);
Result<EpochEndResponse> DecodeEpochEndResponse(const std::string& json);

}  // namespace sluice::broker
