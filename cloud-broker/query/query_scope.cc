#include "cloud-broker/query/query_scope.h"

#include <algorithm>

#include "core/partitioner.h"

namespace sluice::broker {

Result<std::vector<QueryScope>> QueryScopes(const TopicStore& store, const QueryFilter& filter,
                                            const IndexLookup& indexes) {
  std::vector<Topic*> topics;
  if (filter.topic.has_value()) {
    Topic* t = store.Find(*filter.topic);
    if (t == nullptr) {
      return Status::NotFound("unknown topic " + filter.topic->value());
    }
    topics.push_back(t);
  } else {
    for (Topic* t : store.Topics()) {
      if (!IsInternalTopic(t->name().value())) {
        topics.push_back(t);  // not consumer-group offsets: not events
      }
    }
  }
  std::vector<QueryScope> scopes;
  for (Topic* t : topics) {
    const int32_t n = t->partition_count();
    for (int32_t p = 0; p < n; ++p) {
      if (filter.device_id.has_value() && p != PartitionForKey(filter.device_id->value(), n)) {
        continue;
      }
      QueryScope s;
      s.topic = t->name().value();
      s.partition = p;
      s.log = t->partition(p);
      s.index = indexes ? indexes(s.topic, p) : nullptr;
      // The index's coverage first: it only grows towards the high watermark read next.
      const int64_t covered = s.index != nullptr ? s.index->covered() : 0;
      s.end = s.log->end_offset();
      s.covered_end = std::min(covered, s.end);
      if (s.covered_end <= s.log->start_offset()) {
        s.index = nullptr;  // nothing indexed that the log still holds
      }
      scopes.push_back(std::move(s));
    }
  }
  return scopes;
}

}  // namespace sluice::broker
