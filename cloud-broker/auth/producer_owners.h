// ProducerOwners: binds each idempotent producer id to the principal that first used it, so no
// other principal can send batches under it (issue 10: a client that posted one batch under a
// gateway's producer id with a huge gateway_seq made the broker drop that gateway's real batches
// as duplicates). A batch naming another principal's producer id is refused (403). Each principal
// may own at most `max_ids_per_principal` ids, so inventing ids cannot grow the idempotence state
// without bound or push other principals' entries out.
//
// Durable: a new claim is appended to `<data_dir>/producer-owners` and fdatasync'd before the
// batch that made it is appended, so a restart keeps every binding. Format: one line per claim,
// "<producer_id> <principal>\n"; a torn last line is ignored at load and rewritten over.
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/status.h"

namespace sluice::broker {

class ProducerOwners {
 public:
  // Opens (creating) the claims file; IOError when it cannot be read or created.
  static Result<std::unique_ptr<ProducerOwners>> Open(const std::string& data_dir,
                                                      int64_t max_ids_per_principal);
  ~ProducerOwners();

  // Ok when `principal` owns `producer_id` (claiming it now if nobody does); PermissionDenied
  // when another principal owns it; ResourceExhausted when `principal` owns the maximum already;
  // IOError when the claim could not be made durable (nothing is claimed then).
  Status Claim(int64_t producer_id, const std::string& principal);

  // The owner, or "" when unclaimed.
  std::string OwnerOf(int64_t producer_id) const;

 private:
  ProducerOwners(int fd, int64_t max_ids) : fd_(fd), max_ids_(max_ids) {}

  const int fd_;
  const int64_t max_ids_;
  mutable std::mutex mu_;
  std::unordered_map<int64_t, std::string> owner_;
  std::map<std::string, int64_t> count_;
};

}  // namespace sluice::broker
