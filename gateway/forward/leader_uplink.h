// LeaderUplink: the Uplink of a replicated region (regions[].urls). It learns each partition's
// leader from any of the region's brokers (GET /v1/metadata, cached; refreshed after a
// not_leader answer or a failure to reach a leader), splits each batch by partition exactly as
// the broker would (murmur2 of the key, core/partitioner.h), and sends every partition's records
// to its leader, all at once. The batch counts as stored only when every part was: otherwise
// the answer is retryable (503) and the forwarder sends the whole batch again later; the parts
// stored already are skipped by the brokers' idempotent-producer check (same producer id and
// gateway sequences), so nothing is stored twice and each device's records keep their order
// (a device's records are all in one partition).
// A permanent refusal of any part (400/413/422/451) is returned as it came; parts stored before
// it stay stored (the broker checks each part on its own).
// A region whose metadata says it is not replicated (a single broker) gets the batch whole,
// with after_seq (pipelining), like HttpUplink. Replicated parts go without after_seq: one
// batch at a time per region, since the batch each part follows went to another leader.
// Thread-safety: thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gateway/forward/uplink.h"

namespace sluice::gateway {

class LeaderUplink final : public Uplink {
 public:
  LeaderUplink(std::vector<std::string> bootstrap_urls, int64_t timeout_ms,
               const TlsClientOptions& tls = {});
  Result<UplinkResponse> SendBatch(const std::string& topic, const std::string& batch) override;
  void SendBatchAsync(const std::string& topic, std::string batch, int64_t after_seq,
                      UplinkDone done) override;
  Status Probe() override;  // GET /healthz on any bootstrap broker

  // Metadata refreshes so far (tests).
  uint64_t refreshes() const;

 private:
  struct TopicLeaders {
    std::vector<std::string> leader_urls;  // by partition; "" while a partition has none
  };
  // Reads GET /v1/metadata from the first broker that answers.
  Status Refresh();
  HttpClient& ClientFor(const std::string& url);  // mu_ held
  Result<UplinkResponse> Send(const std::string& topic, const std::string& batch,
                              int64_t after_seq);

  const std::vector<std::string> bootstrap_;
  const int64_t timeout_ms_;
  const TlsClientOptions tls_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<HttpClient>> clients_;  // by base URL
  std::map<std::string, TopicLeaders> topics_;
  std::vector<std::string> known_urls_;  // brokers the metadata named, then the bootstrap list
  bool replicated_ = true;
  bool fresh_ = false;  // metadata read since the last failure
  uint64_t refreshes_ = 0;
};

}  // namespace sluice::gateway
