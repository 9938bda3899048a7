// libFuzzer target: the replication protocol's decoders (cloud-broker/replication/
// replica_fetch.h), which read what another broker sends: a follower's fetch and epoch requests
// on the leader, the leader's framed fetch answer on the follower. Whatever decodes must encode
// and decode to the same thing; nothing may crash or allocate past the bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cloud-broker/replication/replica_fetch.h"

using namespace sluice::broker;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (auto req = DecodeFetchRequest(bytes); req.ok()) {
    auto again = DecodeFetchRequest(EncodeFetchRequest(*req));
    if (!again.ok() || again->partitions.size() != req->partitions.size() ||
        again->replica_id != req->replica_id) {
      std::abort();
    }
  }
  if (auto resp = DecodeFetchResponse(bytes); resp.ok()) {
    auto again = DecodeFetchResponse(EncodeFetchResponse(*resp));
    if (!again.ok() || again->partitions.size() != resp->partitions.size()) {
      std::abort();
    }
    for (size_t i = 0; i < resp->partitions.size(); ++i) {
      if (again->partitions[i].records != resp->partitions[i].records) {
        std::abort();
      }
    }
  }
  if (auto er = DecodeEpochEndRequest(bytes); er.ok()) {
    if (!DecodeEpochEndRequest(EncodeEpochEndRequest(*er)).ok()) {
      std::abort();
    }
  }
  if (auto eo = DecodeEpochEndResponse(bytes); eo.ok()) {
    if (!DecodeEpochEndResponse(EncodeEpochEndResponse(*eo)).ok()) {
      std::abort();
    }
  }
  return 0;
}
