#include "cloud-broker/groups/assignor.h"

#include <algorithm>
#include <set>

namespace sluice::broker {

bool ParseAssignStrategy(const std::string& text, AssignStrategy* out) {
  if (text == "range") {
    *out = AssignStrategy::kRange;
    return true;
  }
  if (text == "roundrobin") {
    *out = AssignStrategy::kRoundRobin;
    return true;
  }
  return false;
}

const char* AssignStrategyName(AssignStrategy s) {
  return s == AssignStrategy::kRange ? "range" : "roundrobin";
}

bool IsValidMemberId(const std::string& id) {
  if (id.empty() || id.size() > kMaxMemberIdBytes) {
    return false;
  }
  for (char c : id) {
    if (c < '!' || c > '~') {
      return false;
    }
  }
  return true;
}

bool IsValidGroupId(const std::string& id) {
  if (id.empty() || id.size() > 200 || id == "." || id == "..") {
    return false;
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

const char* GroupErrcName(GroupErrc code) {
  switch (code) {
    case GroupErrc::kOk:
      return "ok";
    case GroupErrc::kInvalidRequest:
      return "invalid_request";
    case GroupErrc::kUnknownTopic:
      return "unknown_topic";
    case GroupErrc::kUnknownMember:
      return "unknown_member_id";
    case GroupErrc::kRebalanceInProgress:
      return "rebalance_in_progress";
    case GroupErrc::kIllegalGeneration:
      return "illegal_generation";
    case GroupErrc::kNotAssigned:
      return "partition_not_assigned";
    case GroupErrc::kInconsistentStrategy:
      return "inconsistent_strategy";
    case GroupErrc::kStorage:
      return "storage_unavailable";
    case GroupErrc::kNotCoordinator:
      return "not_coordinator";
    case GroupErrc::kCoordinatorNotAvailable:
      return "coordinator_not_available";
    case GroupErrc::kGroupFull:
      return "group_max_size_reached";
    case GroupErrc::kTooManyGroups:
      return "too_many_groups";
  }
  return "internal";
}

int GroupErrcHttpStatus(GroupErrc code) {
  switch (code) {
    case GroupErrc::kOk:
      return 200;
    case GroupErrc::kInvalidRequest:
      return 400;
    case GroupErrc::kUnknownTopic:
    case GroupErrc::kUnknownMember:
      return 404;
    case GroupErrc::kStorage:
    case GroupErrc::kCoordinatorNotAvailable:
    case GroupErrc::kTooManyGroups:  // groups empty as sessions end: worth a retry later
      return 503;
    case GroupErrc::kNotCoordinator:
      return 421;  // Misdirected Request, as produce's not_leader
    default:
      return 409;
  }
}

namespace {

Assignment EmptyAssignment(const Subscriptions& subscriptions) {
  Assignment a;
  for (const auto& [member, topics] : subscriptions) {
    a[member];
  }
  return a;
}

void SortLists(Assignment* a) {
  for (auto& [member, list] : *a) {
    std::sort(list.begin(), list.end());
  }
}

}  // namespace

Assignment RangeAssign(const PartitionCounts& partitions, const Subscriptions& subscriptions) {
  Assignment a = EmptyAssignment(subscriptions);
  // consumersPerTopic: the map keeps members sorted, as Kafka's Collections.sort does.
  std::map<TopicName, std::vector<MemberId>> per_topic;
  for (const auto& [member, topics] : subscriptions) {
    for (const TopicName& t : std::set<TopicName>(topics.begin(), topics.end())) {
      per_topic[t].push_back(member);
    }
  }
  for (const auto& [topic, members] : per_topic) {
    auto it = partitions.find(topic);
    if (it == partitions.end() || it->second <= 0) {
      continue;
    }
    const int32_t n = it->second;
    const int32_t m = static_cast<int32_t>(members.size());
    const int32_t per = n / m;
    const int32_t extra = n % m;
    for (int32_t i = 0; i < m; ++i) {
      const int32_t start = per * i + std::min(i, extra);
      const int32_t length = per + (i + 1 > extra ? 0 : 1);
      for (int32_t p = start; p < start + length; ++p) {
        a[members[static_cast<size_t>(i)]].push_back({topic, PartitionId(p)});
      }
    }
  }
  SortLists(&a);
  return a;
}

Assignment RoundRobinAssign(const PartitionCounts& partitions, const Subscriptions& subscriptions) {
  Assignment a = EmptyAssignment(subscriptions);
  if (subscriptions.empty()) {
    return a;
  }
  std::set<TopicName> topics;
  for (const auto& [member, ts] : subscriptions) {
    topics.insert(ts.begin(), ts.end());
  }
  std::vector<MemberId> members;
  for (const auto& [member, ts] : subscriptions) {
    members.push_back(member);
  }
  size_t next = 0;  // Kafka's CircularIterator over the sorted members
  for (const TopicName& topic : topics) {
    auto it = partitions.find(topic);
    if (it == partitions.end()) {
      continue;
    }
    for (int32_t p = 0; p < it->second; ++p) {
      // Some member is subscribed to `topic` (it came from a subscription), so this ends.
      while (true) {
        const std::vector<TopicName>& sub = subscriptions.at(members[next]);
        if (std::find(sub.begin(), sub.end(), topic) != sub.end()) {
          break;
        }
        next = (next + 1) % members.size();
      }
      a[members[next]].push_back({topic, PartitionId(p)});
      next = (next + 1) % members.size();
    }
  }
  SortLists(&a);
  return a;
}

Assignment Assign(AssignStrategy strategy, const PartitionCounts& partitions,
                  const Subscriptions& subscriptions) {
  return strategy == AssignStrategy::kRange ? RangeAssign(partitions, subscriptions)
                                            : RoundRobinAssign(partitions, subscriptions);
}

}  // namespace sluice::broker
