// The replication routes of BrokerService (cloud-broker/replication/replica_fetch.h):
//   POST /v1/replication/fetch       a follower's fetch; parked on the FetchWaiter (long-poll,
//                                    wait_ms) when nothing is new, so no HTTP thread waits
//   POST /v1/replication/epoch_end   OffsetForLeaderEpoch
// and GET /v1/metadata: the region's brokers and every partition's leader, from any broker, so
// gateways and the CLI can send each partition's records to its leader. A single-broker region
// answers with itself as leader of every partition (epoch 0).
// Peers are authenticated like any client and need the `replicate` operation.
#include "cloud-broker/auth/authorizer.h"
#include "cloud-broker/replication/replica_manager.h"
#include "cloud-broker/server/broker_service.h"
#include "cloud-broker/server/fetch_waiter.h"

namespace sluice::broker {
namespace {

void WriteIds(JsonWriter& w, const char* key, const std::vector<std::string>& ids) {
  w.Key(key);
  w.StartArray();
  for (const std::string& id : ids) {
    WriteJsonString(w, id);
  }
  w.EndArray();
}

}  // namespace

bool BrokerService::MaybeReplicationRoute(const HttpRequest& req, const HttpResponder& respond) {
  if (req.path.rfind("/v1/replication/", 0) != 0) {
    return false;
  }
  ReplicaManager* rm = options_.replication;
  if (rm == nullptr) {
    respond(HttpResponse::Error(404, "not_replicated",
                                "this broker's region is not replicated (no etcd configured)"));
    return true;
  }
  if (req.method != "POST") {
    respond(HttpResponse::Error(405, "method_not_allowed", "use POST"));
    return true;
  }
  if (req.path == "/v1/replication/epoch_end") {
    Result<EpochEndRequest> er = DecodeEpochEndRequest(req.body);
    if (!er.ok()) {
      respond(HttpResponse::Error(400, "invalid_request", er.status().message()));
      return true;
    }
    respond(HttpResponse::Json(200, EncodeEpochEndResponse(rm->EpochEnd(*er))));
    return true;
  }
  if (req.path != "/v1/replication/fetch") {
    respond(HttpResponse::Error(404, "not_found", "no such endpoint: " + req.path));
    return true;
  }
  Result<ReplicaFetchRequest> fr = DecodeFetchRequest(req.body);
  if (!fr.ok()) {
    respond(HttpResponse::Error(400, "invalid_request", fr.status().message()));
    return true;
  }
  auto request = std::make_shared<ReplicaFetchRequest>(std::move(fr).value());
  auto answer = [rm, request, respond] {
    bool has_data = false;
    HttpResponse r;
    r.status = 200;
    r.content_type = "application/vnd.sluice.replica-fetch";
    r.body = EncodeFetchResponse(rm->Fetch(*request, &has_data));
    respond(std::move(r));
  };
  bool has_data = false;
  if (request->wait_ms == 0 || options_.fetch_waiter == nullptr ||
      rm->HasDataFor(*request)) {
    answer();
    return true;
  }
  // Record the follower's progress now (it may move the high watermark), then wait. The
  // re-check reads the logs' ends and the roles' generation only: it runs under the waiter's
  // lock, which the manager's high-watermark moves take while holding the manager's lock.
  const uint64_t generation = rm->roles_generation();
  std::vector<std::pair<const PartitionLog*, int64_t>> watched;
  for (const ReplicaFetchPartition& fp : request->partitions) {
    const Topic* t = store_.Find(TopicName(fp.topic));
    const PartitionLog* log = t == nullptr ? nullptr : t->partition(fp.partition);
    if (log == nullptr) {
      answer();  // unknown here: the answer says so at once
      return true;
    }
    watched.emplace_back(log, fp.fetch_offset);
  }
  (void)rm->Fetch(*request, &has_data);
  uint64_t id = 0;
  FetchWaiter* waiter = options_.fetch_waiter;
  auto ready = [rm, generation, watched] {
    if (rm->roles_generation() != generation) {
      return true;
    }
    for (const auto& [log, offset] : watched) {
      if (log->log_end_offset() > offset) {
        return true;
      }
    }
    return false;
  };
  if (has_data || !waiter->ParkUntil(ready, request->wait_ms, answer, &id)) {
    answer();
    return true;
  }
  respond.OnClientGone([waiter, id] { waiter->Cancel(id); });
  return true;
}

HttpResponse BrokerService::Metadata(const std::string& principal) {
  auto visible = [&](const std::string& topic) {
    return options_.auth == nullptr ||
           options_.auth->Allows(principal, AclOp::kProduce, topic) ||
           options_.auth->Allows(principal, AclOp::kFetch, topic);
  };
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("region");
  WriteJsonString(w, policy_.region().value());
  w.Key("broker");
  WriteJsonString(w, options_.broker_id);
  w.Key("replicated");
  w.Bool(options_.replication != nullptr);
  if (options_.replication == nullptr) {
    w.Key("brokers");
    w.StartArray();
    w.StartObject();
    w.Key("id");
    WriteJsonString(w, options_.broker_id);
    w.Key("url");
    WriteJsonString(w, options_.advertised_url);
    w.EndObject();
    w.EndArray();
    w.Key("topics");
    w.StartArray();
    for (const Topic* t : store_.Topics()) {
      if (!visible(t->name().value())) {
        continue;
      }
      w.StartObject();
      w.Key("name");
      WriteJsonString(w, t->name().value());
      w.Key("partitions");
      w.StartArray();
      for (int32_t p = 0; p < t->partition_count(); ++p) {
        w.StartObject();
        w.Key("partition");
        w.Int(p);
        w.Key("leader");
        WriteJsonString(w, options_.broker_id);
        w.Key("leader_url");
        WriteJsonString(w, options_.advertised_url);
        w.Key("leader_epoch");
        w.Int(0);
        WriteIds(w, "replicas", {options_.broker_id});
        WriteIds(w, "isr", {options_.broker_id});
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return HttpResponse::Json(200, std::string(sb.GetString(), sb.GetSize()));
  }
  const ReplicaManager::RegionView view = options_.replication->View();
  w.Key("brokers");
  w.StartArray();
  for (const auto& [id, url] : view.brokers) {
    w.StartObject();
    w.Key("id");
    WriteJsonString(w, id);
    w.Key("url");
    WriteJsonString(w, url);
    w.EndObject();
  }
  w.EndArray();
  w.Key("topics");
  w.StartArray();
  std::string current;
  for (const auto& [key, s] : view.partitions) {
    const std::string& topic = key.first;
    if (!visible(topic)) {
      continue;
    }
    if (topic != current) {
      if (!current.empty()) {
        w.EndArray();
        w.EndObject();
      }
      current = topic;
      w.StartObject();
      w.Key("name");
      WriteJsonString(w, topic);
      w.Key("partitions");
      w.StartArray();
    }
    w.StartObject();
    w.Key("partition");
    w.Int(key.second);
    w.Key("leader");
    WriteJsonString(w, s.leader);
    auto url = view.brokers.find(s.leader);
    w.Key("leader_url");
    WriteJsonString(w, url == view.brokers.end() ? "" : url->second);
    w.Key("leader_epoch");
    w.Int(s.leader_epoch);
    WriteIds(w, "replicas", s.replicas);
    WriteIds(w, "isr", s.isr);
    w.EndObject();
  }
  if (!current.empty()) {
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(sb.GetString(), sb.GetSize()));
}

}  // namespace sluice::broker
