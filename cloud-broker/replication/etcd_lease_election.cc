// EtcdClient: leases and elections (etcd_client.h); KV and transactions are in etcd_client.cc.
#include "cloud-broker/replication/etcd_client.h"
#include "cloud-broker/replication/etcd_json.h"

namespace sluice::broker {

using namespace etcd_json;  // NOLINT: the JSON helpers shared with etcd_client.cc

Result<int64_t> EtcdClient::GrantLease(int64_t ttl_s) {
  Result<rapidjson::Document> d =
      CallJson("/v3/lease/grant", "{\"TTL\":\"" + std::to_string(ttl_s) + "\"}", false);
  if (!d.ok()) {
    return d.status();
  }
  const int64_t id = Int(*d, "ID");
  if (id == 0) {
    return Status::Corruption("etcd: a lease grant answer without an ID");
  }
  return id;
}

Result<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  // One keep-alive per request: the gateway answers the first message of a stream only.
  Result<rapidjson::Document> d =
      CallJson("/v3/lease/keepalive", "{\"ID\":\"" + std::to_string(lease) + "\"}", false);
  if (!d.ok()) {
    return d.status();
  }
  const rapidjson::Value& result = d->HasMember("result") ? (*d)["result"] : *d;
  const int64_t ttl = Int(result, "TTL");
  if (ttl <= 0) {
    return Status::NotFound("etcd: lease " + std::to_string(lease) + " expired");
  }
  return ttl;
}

Status EtcdClient::RevokeLease(int64_t lease) {
  Result<std::string> r =
      Call("/v3/lease/revoke", "{\"ID\":\"" + std::to_string(lease) + "\"}", false);
  return r.ok() ? Status::Ok() : r.status();
}

Result<EtcdKeyValue> EtcdClient::Campaign(const std::string& name, int64_t lease,
                                          const std::string& value) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Bytes(w, "name", name);
  Str(w, "lease", std::to_string(lease));
  Bytes(w, "value", value);
  w.EndObject();
  Result<rapidjson::Document> d = CallJson("/v3/election/campaign", Text(sb), true);
  if (!d.ok()) {
    return d.status();
  }
  if (!d->HasMember("leader") || !(*d)["leader"].IsObject()) {
    return Status::Corruption("etcd: a campaign answer without a leader");
  }
  const rapidjson::Value& l = (*d)["leader"];
  EtcdKeyValue out;
  Result<std::string> key = DecodedField(l, "key");
  if (!key.ok()) {
    return key.status();
  }
  out.key = std::move(key).value();
  out.value = value;
  out.create_revision = Int(l, "rev");
  out.lease = Int(l, "lease");
  return out;
}

Result<std::optional<EtcdKeyValue>> EtcdClient::Leader(const std::string& name) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Bytes(w, "name", name);
  w.EndObject();
  Result<std::string> r = Call("/v3/election/leader", Text(sb), false);
  if (!r.ok()) {
    if (r.status().message().find("election: no leader") != std::string::npos) {
      return std::optional<EtcdKeyValue>();
    }
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
  if (!d.ok()) {
    return d.status();
  }
  if (!d->HasMember("kv")) {
    return std::optional<EtcdKeyValue>();
  }
  Result<EtcdKeyValue> kv = ParseKv((*d)["kv"]);
  if (!kv.ok()) {
    return kv.status();
  }
  return std::optional<EtcdKeyValue>(std::move(kv).value());
}

Status EtcdClient::Resign(const std::string& name, const EtcdKeyValue& leader_key) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("leader");
  w.StartObject();
  Bytes(w, "name", name);
  Bytes(w, "key", leader_key.key);
  Str(w, "rev", std::to_string(leader_key.create_revision));
  Str(w, "lease", std::to_string(leader_key.lease));
  w.EndObject();
  w.EndObject();
  Result<std::string> r = Call("/v3/election/resign", Text(sb), false);
  return r.ok() ? Status::Ok() : r.status();
}


}  // namespace sluice::broker
