// BrokerService::Admit: authentication (401) and ACLs (403) in front of every route
// (cloud-broker/auth/authorizer.h). Each route names the operation and resource it needs; topic
// creation is checked in CreateTopic, where the name is parsed from the body, and the topic list
// shows only the topics the principal may fetch.
#include "cloud-broker/auth/authorizer.h"
#include "cloud-broker/server/broker_service.h"

namespace sluice::broker {
namespace {

constexpr const char* kComponent = "auth";

struct Access {
  bool check = false;  // false: being authenticated is enough
  AclOp op = AclOp::kFetch;
  std::string resource;
};

Access RequiredAccess(const HttpRequest& req) {
  const std::vector<std::string> p = SplitPath(req.path);
  Access a;
  if (p.size() < 2 || p[0] != "v1") {
    return a;  // /healthz, /metrics, and 404s
  }
  if (p[1] == "query") {
    return {true, AclOp::kQuery, ""};
  }
  if (p[1] == "audit") {
    return {true, AclOp::kAdmin, ""};  // it names every refused producer
  }
  if (p[1] == "replication") {
    return {true, AclOp::kReplicate, ""};  // follower fetches: only the region's brokers
  }
  if (p[1] == "groups" && p.size() >= 3) {
    return {true, AclOp::kGroup, p[2]};
  }
  if (p[1] == "topics" && p.size() >= 3) {
    const bool produce = p.size() == 4 && p[3] == "records" && req.method == "POST";
    return {true, produce ? AclOp::kProduce : AclOp::kFetch, p[2]};
  }
  return a;  // GET /v1/topics (filtered), POST /v1/topics (checked in CreateTopic)
}

}  // namespace

bool BrokerService::Admit(HttpRequest& request, const HttpResponder& respond) {
  if (options_.auth == nullptr || request.path == "/healthz") {
    // /healthz is for load balancers and supervisors, which hold no credentials.
    request.principal = kAnonymous;
    return true;
  }
  Result<std::string> who = options_.auth->Authenticate(request);
  if (!who.ok()) {
    refusal_log_.Log(LogLevel::kWarn, kComponent, "unauthenticated",
                     "refused " + request.method + " " + request.path + " from " +
                         request.peer_address + ": " + who.status().message());
    metrics_.AuthRefusal("unauthenticated");
    HttpResponse r = HttpResponse::Error(401, "unauthenticated", who.status().message());
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    respond(std::move(r));
    return false;
  }
  request.principal = std::move(who).value();
  const Access need = RequiredAccess(request);
  if (need.check && !options_.auth->Allows(request.principal, need.op, need.resource)) {
    const std::string what = need.resource.empty() ? std::string(AclOpName(need.op))
                                                   : std::string(AclOpName(need.op)) + " on " +
                                                         need.resource;
    refusal_log_.Log(LogLevel::kWarn, kComponent, "forbidden",
                     "refused " + request.method + " " + request.path + ": principal " +
                         request.principal + " may not " + what);
    metrics_.AuthRefusal("forbidden");
    respond(HttpResponse::Error(403, "forbidden",
                                "principal " + request.principal + " may not " + what));
    return false;
  }
  return true;
}

}  // namespace sluice::broker
