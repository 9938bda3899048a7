// GroupRoutes: the consumer-group endpoints of the broker's HTTP API (docs/API.md, "Consumer
// groups"): /v1/groups/{g}[/join|/heartbeat|/leave|/commit|/offsets|/coordinator]. JSON in, JSON out; each
// GroupErrc becomes its HTTP status and `"error"` code. BrokerService::Route hands it every path
// under /v1/groups.
// Thread-safety: thread-safe (stateless; the GroupCoordinator is thread-safe).
#pragma once

#include <string>
#include <vector>

#include "cloud-broker/groups/group_coordinator.h"
#include "core/http.h"

namespace sluice::broker {

class GroupRoutes {
 public:
  // self_id/self_url: how GET .../coordinator names this broker when it is the coordinator.
  GroupRoutes(GroupCoordinator& coordinator, std::string self_id, std::string self_url)
      : coordinator_(coordinator), self_id_(std::move(self_id)), self_url_(std::move(self_url)) {}

  // `parts` is the split path; parts[0] == "v1", parts[1] == "groups".
  HttpResponse Route(const HttpRequest& request, const std::vector<std::string>& parts);

 private:
  HttpResponse Join(const GroupId& group, const std::string& body);
  HttpResponse Heartbeat(const GroupId& group, const std::string& body);
  HttpResponse Leave(const GroupId& group, const std::string& body);
  HttpResponse Commit(const GroupId& group, const std::string& body);
  HttpResponse Offsets(const GroupId& group, const HttpRequest& request);
  HttpResponse Describe(const GroupId& group);
  HttpResponse Coordinator(const GroupId& group);

  GroupCoordinator& coordinator_;
  const std::string self_id_;
  const std::string self_url_;
};

}  // namespace sluice::broker
