#include "cloud-broker/replication/etcd_client.h"

#include "cloud-broker/replication/etcd_json.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>

namespace sluice::broker {
using namespace etcd_json;  // NOLINT: the JSON helpers shared with etcd_lease_election.cc

namespace {


constexpr int kGrpcNotFound = 5;
constexpr int kGrpcUnavailable = 14;
constexpr int kGrpcDeadlineExceeded = 4;



// The end of the range of keys starting with `prefix` (etcd's "prefix" range_end).
std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char& c = reinterpret_cast<unsigned char&>(end.back());
    if (c < 0xff) {
      ++c;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}






void WriteRangeRequest(Writer& w, const std::string& key, bool prefix) {
  w.StartObject();
  Bytes(w, "key", key);
  if (prefix) {
    Bytes(w, "range_end", PrefixEnd(key));
  }
  w.EndObject();
}

void WriteOp(Writer& w, const EtcdOp& op) {
  w.StartObject();
  switch (op.kind) {
    case EtcdOp::Kind::kPut:
      w.Key("request_put");
      w.StartObject();
      Bytes(w, "key", op.key);
      Bytes(w, "value", op.value);
      if (op.lease != 0) {
        Str(w, "lease", std::to_string(op.lease));
      }
      w.EndObject();
      break;
    case EtcdOp::Kind::kDelete:
      w.Key("request_delete_range");
      WriteRangeRequest(w, op.key, op.prefix);
      break;
    case EtcdOp::Kind::kRange:
      w.Key("request_range");
      WriteRangeRequest(w, op.key, op.prefix);
      break;
  }
  w.EndObject();
}

void WriteCompare(Writer& w, const EtcdCompare& c) {
  static const char* const kOps[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
  w.StartObject();
  Bytes(w, "key", c.key);
  Str(w, "result", kOps[static_cast<int>(c.op)]);
  switch (c.target) {
    case EtcdCompare::Target::kCreateRevision:
      Str(w, "target", "CREATE");
      Str(w, "create_revision", std::to_string(c.number));
      break;
    case EtcdCompare::Target::kModRevision:
      Str(w, "target", "MOD");
      Str(w, "mod_revision", std::to_string(c.number));
      break;
    case EtcdCompare::Target::kVersion:
      Str(w, "target", "VERSION");
      Str(w, "version", std::to_string(c.number));
      break;
    case EtcdCompare::Target::kValue:
      Str(w, "target", "VALUE");
      Bytes(w, "value", c.value);
      break;
  }
  w.EndObject();
}


}  // namespace

EtcdCompare EtcdCompare::Absent(const std::string& key) {
  return EtcdCompare{key, Target::kCreateRevision, Op::kEqual, 0, ""};
}

EtcdCompare EtcdCompare::ModRevisionIs(const std::string& key, int64_t revision) {
  return EtcdCompare{key, Target::kModRevision, Op::kEqual, revision, ""};
}

EtcdCompare EtcdCompare::CreateRevisionIs(const std::string& key, int64_t revision) {
  return EtcdCompare{key, Target::kCreateRevision, Op::kEqual, revision, ""};
}

EtcdOp EtcdOp::Put(const std::string& key, const std::string& value, int64_t lease) {
  return EtcdOp{Kind::kPut, key, value, lease, false};
}

EtcdOp EtcdOp::Delete(const std::string& key) { return EtcdOp{Kind::kDelete, key, "", 0, false}; }

EtcdOp EtcdOp::Get(const std::string& key, bool prefix) {
  return EtcdOp{Kind::kRange, key, "", 0, prefix};
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::Create(std::vector<std::string> endpoints,
                                                       EtcdClientOptions options) {
  if (endpoints.empty()) {
    return Status::InvalidArgument("etcd: no endpoints");
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(endpoints), std::move(options)));
}

EtcdClient::EtcdClient(std::vector<std::string> endpoints, EtcdClientOptions options)
    : endpoints_(std::move(endpoints)), options_(std::move(options)) {
  for (const std::string& e : endpoints_) {
    HttpClientOptions o;
    o.timeout_ms = options_.request_timeout_ms;
    o.tls = options_.tls;
    clients_.push_back(std::make_unique<HttpClient>(e, o));
    o.timeout_ms = options_.campaign_timeout_ms;
    campaign_clients_.push_back(std::make_unique<HttpClient>(e, o));
  }
}

EtcdClient::~EtcdClient() = default;

Result<rapidjson::Document> EtcdClient::CallJson(const std::string& path,
                                                 const std::string& body, bool campaign) {
  Result<std::string> r = Call(path, body, campaign);
  if (!r.ok()) {
    return r.status();
  }
  return Parse(*r);
}

Result<std::string> EtcdClient::Call(const std::string& path, const std::string& body,
                                     bool campaign) {
  size_t start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    start = current_;
  }
  Status last = Status::Unavailable("etcd: no endpoint tried");
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t e = (start + i) % endpoints_.size();
    HttpClient& client = campaign ? *campaign_clients_[e] : *clients_[e];
    Result<HttpResponse> r = client.Send("POST", path, body, "application/json");
    if (!r.ok()) {
      last = Status::Unavailable("etcd " + endpoints_[e] + path + ": " + r.status().message());
      continue;
    }
    if (r->status == 200) {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = e;
      return std::move(r->body);
    }
    Result<rapidjson::Document> d = Parse(r->body);
    const int code = d.ok() ? static_cast<int>(Int(*d, "code")) : -1;
    const std::string message =
        d.ok() && d->HasMember("error") && (*d)["error"].IsString()
            ? (*d)["error"].GetString()
            : "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 200);
    if (code == kGrpcUnavailable || code == kGrpcDeadlineExceeded || r->status == 503) {
      last = Status::Unavailable("etcd " + endpoints_[e] + path + ": " + message);
      continue;  // this member has no leader or is shutting down: another may answer
    }
    if (code == kGrpcNotFound) {
      return Status::NotFound("etcd " + path + ": " + message);
    }
    return Status::InvalidArgument("etcd " + path + ": " + message);
  }
  return last;
}

Result<int64_t> EtcdClient::Put(const std::string& key, const std::string& value, int64_t lease) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Bytes(w, "key", key);
  Bytes(w, "value", value);
  if (lease != 0) {
    Str(w, "lease", std::to_string(lease));
  }
  w.EndObject();
  Result<rapidjson::Document> d = CallJson("/v3/kv/put", Text(sb), false);
  if (!d.ok()) {
    return d.status();
  }
  return Int((*d)["header"], "revision");
}

Result<std::optional<EtcdKeyValue>> EtcdClient::Get(const std::string& key) {
  Result<std::vector<EtcdKeyValue>> kvs = [&]() -> Result<std::vector<EtcdKeyValue>> {
    rapidjson::StringBuffer sb;
    Writer w(sb);
    WriteRangeRequest(w, key, false);
    Result<rapidjson::Document> d = CallJson("/v3/kv/range", Text(sb), false);
    if (!d.ok()) {
      return d.status();
    }
    return ParseKvs(*d);
  }();
  if (!kvs.ok()) {
    return kvs.status();
  }
  if (kvs->empty()) {
    return std::optional<EtcdKeyValue>();
  }
  return std::optional<EtcdKeyValue>(std::move(kvs->front()));
}

Result<std::vector<EtcdKeyValue>> EtcdClient::GetPrefix(const std::string& prefix,
                                                        int64_t* revision) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  WriteRangeRequest(w, prefix, true);
  Result<rapidjson::Document> d = CallJson("/v3/kv/range", Text(sb), false);
  if (!d.ok()) {
    return d.status();
  }
  if (revision != nullptr) {
    *revision = Int((*d)["header"], "revision");
  }
  return ParseKvs(*d);
}

Result<int64_t> EtcdClient::Delete(const std::string& key, bool prefix) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  WriteRangeRequest(w, key, prefix);
  Result<rapidjson::Document> d = CallJson("/v3/kv/deleterange", Text(sb), false);
  if (!d.ok()) {
    return d.status();
  }
  return Int(*d, "deleted");
}

Result<EtcdTxnResult> EtcdClient::Txn(const std::vector<EtcdCompare>& compares,
                                      const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("compare");
  w.StartArray();
  for (const EtcdCompare& c : compares) {
    WriteCompare(w, c);
  }
  w.EndArray();
  w.Key("success");
  w.StartArray();
  for (const EtcdOp& op : success) {
    WriteOp(w, op);
  }
  w.EndArray();
  w.Key("failure");
  w.StartArray();
  for (const EtcdOp& op : failure) {
    WriteOp(w, op);
  }
  w.EndArray();
  w.EndObject();
  Result<rapidjson::Document> d = CallJson("/v3/kv/txn", Text(sb), false);
  if (!d.ok()) {
    return d.status();
  }
  EtcdTxnResult out;
  out.succeeded = d->HasMember("succeeded") && (*d)["succeeded"].IsBool() &&
                  (*d)["succeeded"].GetBool();
  out.revision = Int((*d)["header"], "revision");
  if (d->HasMember("responses") && (*d)["responses"].IsArray()) {
    for (const auto& resp : (*d)["responses"].GetArray()) {
      if (resp.IsObject() && resp.HasMember("response_range")) {
        Result<std::vector<EtcdKeyValue>> kvs = ParseKvs(resp["response_range"]);
        if (!kvs.ok()) {
          return kvs.status();
        }
        out.ranges.push_back(std::move(kvs).value());
      }
    }
  }
  return out;
}

}  // namespace sluice::broker
