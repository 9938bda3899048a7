// ProducerTable::Entry: one producer's state, shared by producer_table.cc and
// producer_snapshot.cc (private to cloud-broker/producers). Guarded by its own mutex `mu`.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "cloud-broker/producers/producer_table.h"

namespace sluice::broker {

class ProducerTable::Entry {
 public:
  std::mutex mu;
  std::map<std::pair<std::string, int32_t>, PartitionProducerState> partitions;
  std::map<std::string, int64_t> acked_through;  // per topic
  uint64_t failures = 0;
  std::atomic<int> running{0};  // requests between Enter and their answer, minus waiting ones
  // (topic, after_seq) of each request waiting in WaitForAcked (guarded by mu).
  std::multiset<std::pair<std::string, int64_t>> waiting;
  std::condition_variable changed;
};

}  // namespace sluice::broker
