#include "cloud-broker/server/group_routes.h"

#include <rapidjson/document.h>

#include "cloud-broker/log/topic_store.h"
#include "cloud-broker/server/record_json.h"

namespace sluice::broker {
namespace {

std::string Done(rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

// Every 503 (storage, coordinator, too many groups) is worth a retry: it says when.
HttpResponse ErrorOf(const GroupStatus& st) {
  HttpResponse r =
      HttpResponse::Error(GroupErrcHttpStatus(st.code), GroupErrcName(st.code), st.message);
  if (r.status == 503) {
    r.headers.emplace_back("Retry-After", "1");
  }
  return r;
}

HttpResponse Invalid(const std::string& reason, const std::string& field) {
  return HttpResponse::Error(400, "invalid_request", reason, field);
}

// Parses the body as a JSON object; false (and *err set) otherwise. Iterative: a hostile body
// nested a million deep overflowed the stack of the recursive parser.
bool ParseObject(const std::string& body, rapidjson::Document* d, HttpResponse* err) {
  d->Parse<rapidjson::kParseIterativeFlag>(body.c_str(), body.size());
  if (d->HasParseError() || !d->IsObject()) {
    *err = Invalid("body must be a JSON object", "");
    return false;
  }
  return true;
}

bool GetString(const rapidjson::Document& d, const char* key, std::string* out) {
  auto it = d.FindMember(key);
  if (it == d.MemberEnd() || !it->value.IsString()) {
    return false;
  }
  *out = std::string(it->value.GetString(), it->value.GetStringLength());
  return true;
}

// The body's member_id: a string satisfying IsValidMemberId; else false with *err set.
bool GetMemberId(const rapidjson::Document& d, std::string* out, HttpResponse* err) {
  if (!GetString(d, "member_id", out)) {
    *err = Invalid("member_id is required", "member_id");
    return false;
  }
  if (!IsValidMemberId(*out)) {
    *err = Invalid("member_id must be 1.." + std::to_string(kMaxMemberIdBytes) +
                       " bytes of printable ASCII without spaces",
                   "member_id");
    return false;
  }
  return true;
}

bool GetInt(const rapidjson::Document& d, const char* key, int64_t* out) {
  auto it = d.FindMember(key);
  if (it == d.MemberEnd() || !it->value.IsInt64()) {
    return false;
  }
  *out = it->value.GetInt64();
  return true;
}

void WritePartitions(JsonWriter& w, const std::vector<TopicPartition>& tps) {
  w.StartArray();
  for (const TopicPartition& tp : tps) {
    w.StartObject();
    w.Key("topic");
    WriteJsonString(w, tp.topic.value());
    w.Key("partition");
    w.Int(tp.partition.value());
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

HttpResponse GroupRoutes::Route(const HttpRequest& req, const std::vector<std::string>& p) {
  if (p.size() < 3 || p.size() > 4) {
    return HttpResponse::Error(404, "not_found", "no such endpoint: " + req.path);
  }
  if (!IsValidGroupId(p[2])) {
    return Invalid("group id must be 1..200 characters of [A-Za-z0-9._-]", "group");
  }
  const GroupId group(p[2]);
  const std::string op = p.size() == 4 ? p[3] : "";
  const char* allowed = (op.empty() || op == "offsets" || op == "coordinator") ? "GET" : "POST";
  if (op != "" && op != "join" && op != "heartbeat" && op != "leave" && op != "commit" &&
      op != "offsets" && op != "coordinator") {
    return HttpResponse::Error(404, "not_found", "no such endpoint: " + req.path);
  }
  if (req.method != allowed) {
    HttpResponse r = HttpResponse::Error(405, "method_not_allowed",
                                         req.method + " is not allowed on " + req.path);
    r.headers.emplace_back("Allow", allowed);
    return r;
  }
  if (op.empty()) return Describe(group);
  if (op == "offsets") return Offsets(group, req);
  if (op == "coordinator") return Coordinator(group);
  if (op == "join") return Join(group, req.body);
  if (op == "heartbeat") return Heartbeat(group, req.body);
  if (op == "leave") return Leave(group, req.body);
  return Commit(group, req.body);
}

HttpResponse GroupRoutes::Join(const GroupId& group, const std::string& body) {
  rapidjson::Document d;
  HttpResponse err;
  if (!ParseObject(body, &d, &err)) return err;
  JoinRequest jr;
  std::string s;
  if (d.HasMember("member_id")) {
    if (!GetString(d, "member_id", &s)) return Invalid("member_id must be a string", "member_id");
    if (!s.empty()) {  // empty: a new member, as without one
      if (!GetMemberId(d, &s, &err)) return err;
      jr.member_id = MemberId(s);
    }
  }
  auto topics = d.FindMember("topics");
  if (topics == d.MemberEnd() || !topics->value.IsArray() || topics->value.Empty()) {
    return Invalid("topics must be a non-empty array of topic names", "topics");
  }
  for (const auto& t : topics->value.GetArray()) {
    if (!t.IsString() ||
        !TopicStore::ValidateTopicName(std::string(t.GetString(), t.GetStringLength())).ok()) {
      return Invalid("topics must be a non-empty array of topic names", "topics");
    }
    jr.topics.emplace_back(std::string(t.GetString(), t.GetStringLength()));
  }
  if (d.HasMember("strategy")) {
    if (!GetString(d, "strategy", &s) || !ParseAssignStrategy(s, &jr.strategy)) {
      return Invalid("strategy must be \"range\" or \"roundrobin\"", "strategy");
    }
  }
  if (d.HasMember("session_timeout_ms") &&
      !GetInt(d, "session_timeout_ms", &jr.session_timeout_ms)) {
    return Invalid("session_timeout_ms must be an integer", "session_timeout_ms");
  }
  JoinResult res;
  GroupStatus st = coordinator_.Join(group, jr, &res);
  if (!st.ok()) return ErrorOf(st);
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("member_id");
  WriteJsonString(w, res.member_id.value());
  w.Key("generation");
  w.Int64(res.generation);
  w.Key("assignment");
  WritePartitions(w, res.assignment);
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

HttpResponse GroupRoutes::Heartbeat(const GroupId& group, const std::string& body) {
  rapidjson::Document d;
  HttpResponse err;
  if (!ParseObject(body, &d, &err)) return err;
  std::string member;
  int64_t generation = 0;
  if (!GetMemberId(d, &member, &err)) return err;
  if (!GetInt(d, "generation", &generation)) return Invalid("generation is required", "generation");
  GroupStatus st = coordinator_.Heartbeat(group, MemberId(member), generation);
  if (!st.ok()) return ErrorOf(st);
  return HttpResponse::Json(200, "{\"generation\":" + std::to_string(generation) + "}");
}

HttpResponse GroupRoutes::Leave(const GroupId& group, const std::string& body) {
  rapidjson::Document d;
  HttpResponse err;
  if (!ParseObject(body, &d, &err)) return err;
  std::string member;
  if (!GetMemberId(d, &member, &err)) return err;
  GroupStatus st = coordinator_.Leave(group, MemberId(member));
  if (!st.ok()) return ErrorOf(st);
  return HttpResponse::Json(200, "{}");
}

HttpResponse GroupRoutes::Commit(const GroupId& group, const std::string& body) {
  rapidjson::Document d;
  HttpResponse err;
  if (!ParseObject(body, &d, &err)) return err;
  std::string member;
  int64_t generation = 0;
  if (!GetMemberId(d, &member, &err)) return err;
  if (!GetInt(d, "generation", &generation)) return Invalid("generation is required", "generation");
  auto offsets = d.FindMember("offsets");
  if (offsets == d.MemberEnd() || !offsets->value.IsArray()) {
    return Invalid("offsets must be an array of {topic,partition,offset}", "offsets");
  }
  std::vector<CommittedOffset> list;
  for (const auto& o : offsets->value.GetArray()) {
    if (!o.IsObject() || !o.HasMember("topic") || !o["topic"].IsString() ||
        !o.HasMember("partition") || !o["partition"].IsInt() || !o.HasMember("offset") ||
        !o["offset"].IsInt64()) {
      return Invalid("offsets must be an array of {topic,partition,offset}", "offsets");
    }
    // With its length: "t\u0000x" must not name topic "t" (nor reach the log).
    std::string topic(o["topic"].GetString(), o["topic"].GetStringLength());
    if (!TopicStore::ValidateTopicName(topic).ok()) {
      return Invalid("offsets: \"topic\" must be a topic name", "offsets");
    }
    list.push_back({{TopicName(std::move(topic)), PartitionId(o["partition"].GetInt())},
                    Offset(o["offset"].GetInt64())});
  }
  GroupStatus st = coordinator_.Commit(group, MemberId(member), generation, list);
  if (!st.ok()) {
    return ErrorOf(st);
  }
  return HttpResponse::Json(200, "{\"committed\":" + std::to_string(list.size()) + "}");
}

HttpResponse GroupRoutes::Offsets(const GroupId& group, const HttpRequest& req) {
  std::optional<TopicName> topic;
  auto it = req.query.find("topic");
  if (it != req.query.end() && !it->second.empty()) topic = TopicName(it->second);
  std::vector<CommittedOffset> committed;
  GroupStatus st = coordinator_.Offsets(group, topic, &committed);
  if (!st.ok()) return ErrorOf(st);
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("group");
  WriteJsonString(w, group.value());
  w.Key("offsets");
  w.StartArray();
  for (const CommittedOffset& c : committed) {
    w.StartObject();
    w.Key("topic");
    WriteJsonString(w, c.tp.topic.value());
    w.Key("partition");
    w.Int(c.tp.partition.value());
    w.Key("offset");
    w.Int64(c.offset.value());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

HttpResponse GroupRoutes::Coordinator(const GroupId& group) {
  CoordinatorInfo where;
  GroupStatus st = coordinator_.Coordinator(group, &where);
  if (!st.ok()) {
    return ErrorOf(st);
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("group");
  WriteJsonString(w, group.value());
  w.Key("broker_id");
  WriteJsonString(w, where.local ? self_id_ : where.broker_id);
  w.Key("url");
  WriteJsonString(w, where.local ? self_url_ : where.url);
  w.Key("local");  // true: this broker
  w.Bool(where.local);
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

HttpResponse GroupRoutes::Describe(const GroupId& group) {
  std::optional<GroupInfo> info;
  GroupStatus st = coordinator_.Describe(group, &info);
  if (!st.ok()) return ErrorOf(st);
  if (!info.has_value()) {
    return HttpResponse::Error(404, "unknown_group", "no group " + group.value(), "group");
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("group");
  WriteJsonString(w, group.value());
  w.Key("generation");
  w.Int64(info->generation);
  w.Key("state");
  w.String(info->state.c_str());
  w.Key("strategy");
  w.String(info->strategy.c_str());
  w.Key("members");
  w.StartArray();
  for (const MemberInfo& m : info->members) {
    w.StartObject();
    w.Key("member_id");
    WriteJsonString(w, m.member_id.value());
    w.Key("topics");
    w.StartArray();
    for (const TopicName& t : m.topics) WriteJsonString(w, t.value());
    w.EndArray();
    w.Key("session_timeout_ms");
    w.Int64(m.session_timeout_ms);
    w.Key("joined_generation");
    w.Int64(m.joined_generation);
    w.Key("assignment");
    WritePartitions(w, m.assignment);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, Done(sb));
}

}  // namespace sluice::broker
