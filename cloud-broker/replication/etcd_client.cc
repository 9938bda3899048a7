#include "cloud-broker/replication/etcd_client.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>

namespace sluice::broker {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr int kGrpcNotFound = 5;
constexpr int kGrpcUnavailable = 14;
constexpr int kGrpcDeadlineExceeded = 4;

void Str(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void Bytes(Writer& w, const char* key, const std::string& bytes) {
  Str(w, key, Base64Encode(bytes));
}

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

// etcd's JSON writes int64 fields as strings and omits zero values.
int64_t Int(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) {
    return 0;
  }
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) {
    return 0;
  }
  if (it->value.IsString()) {
    return std::strtoll(it->value.GetString(), nullptr, 10);
  }
  return it->value.IsInt64() ? it->value.GetInt64() : 0;
}

Result<std::string> DecodedField(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd()) {
    return std::string();
  }
  if (!it->value.IsString()) {
    return Status::Corruption(std::string("etcd: field ") + name + " is not a string");
  }
  return Base64Decode(it->value.GetString());
}

Result<EtcdKeyValue> ParseKv(const rapidjson::Value& kv) {
  if (!kv.IsObject()) {
    return Status::Corruption("etcd: a key-value is not an object");
  }
  EtcdKeyValue out;
  Result<std::string> key = DecodedField(kv, "key");
  Result<std::string> value = DecodedField(kv, "value");
  if (!key.ok()) {
    return key.status();
  }
  if (!value.ok()) {
    return value.status();
  }
  out.key = std::move(key).value();
  out.value = std::move(value).value();
  out.create_revision = Int(kv, "create_revision");
  out.mod_revision = Int(kv, "mod_revision");
  out.version = Int(kv, "version");
  out.lease = Int(kv, "lease");
  return out;
}

Result<std::vector<EtcdKeyValue>> ParseKvs(const rapidjson::Value& obj) {
  std::vector<EtcdKeyValue> out;
  auto it = obj.FindMember("kvs");
  if (it == obj.MemberEnd()) {
    return out;
  }
  if (!it->value.IsArray()) {
    return Status::Corruption("etcd: kvs is not an array");
  }
  for (const auto& kv : it->value.GetArray()) {
    Result<EtcdKeyValue> parsed = ParseKv(kv);
    if (!parsed.ok()) {
      return parsed.status();
    }
    out.push_back(std::move(parsed).value());
  }
  return out;
}

Result<rapidjson::Document> Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    return Status::Corruption("etcd: an answer that is not a JSON object: " + text.substr(0, 200));
  }
  return d;
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

std::string Text(const rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

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
  Result<std::string> r = Call("/v3/kv/put", Text(sb), false);
  if (!r.ok()) {
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
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
    Result<std::string> r = Call("/v3/kv/range", Text(sb), false);
    if (!r.ok()) {
      return r.status();
    }
    Result<rapidjson::Document> d = Parse(*r);
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
  Result<std::string> r = Call("/v3/kv/range", Text(sb), false);
  if (!r.ok()) {
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
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
  Result<std::string> r = Call("/v3/kv/deleterange", Text(sb), false);
  if (!r.ok()) {
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
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
  Result<std::string> r = Call("/v3/kv/txn", Text(sb), false);
  if (!r.ok()) {
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
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

Result<int64_t> EtcdClient::GrantLease(int64_t ttl_s) {
  Result<std::string> r =
      Call("/v3/lease/grant", "{\"TTL\":\"" + std::to_string(ttl_s) + "\"}", false);
  if (!r.ok()) {
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
  if (!d.ok()) {
    return d.status();
  }
  const int64_t id = Int(*d, "ID");
  if (id == 0) {
    return Status::Corruption("etcd: lease grant without an ID: " + r->substr(0, 200));
  }
  return id;
}

Result<int64_t> EtcdClient::KeepAlive(int64_t lease) {
  // One keep-alive per request: the gateway answers the first message of a stream only.
  Result<std::string> r =
      Call("/v3/lease/keepalive", "{\"ID\":\"" + std::to_string(lease) + "\"}", false);
  if (!r.ok()) {
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
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
  Result<std::string> r = Call("/v3/election/campaign", Text(sb), true);
  if (!r.ok()) {
    return r.status();
  }
  Result<rapidjson::Document> d = Parse(*r);
  if (!d.ok()) {
    return d.status();
  }
  if (!d->HasMember("leader") || !(*d)["leader"].IsObject()) {
    return Status::Corruption("etcd: campaign answer without a leader: " + r->substr(0, 200));
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

std::string Base64Encode(const std::string& bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(bytes[i]) << 16) |
                       (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    const bool two = i + 1 < bytes.size();
    if (two) {
      n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    }
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += two ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(const std::string& text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) {
    return Status::InvalidArgument("base64: length " + std::to_string(text.size()) +
                                   " is not a multiple of 4");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    uint32_t n = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      const int v = k >= 4 - pad ? 0 : value(c);
      if (v < 0 || (c == '=' && k < 4 - pad)) {
        return Status::InvalidArgument("base64: bad character at " + std::to_string(i + k));
      }
      n = (n << 6) | static_cast<uint32_t>(v);
    }
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

}  // namespace sluice::broker
