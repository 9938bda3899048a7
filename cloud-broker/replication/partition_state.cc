#include "cloud-broker/replication/partition_state.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>

namespace sluice::broker {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteIds(Writer& w, const char* key, const std::vector<std::string>& ids) {
  w.Key(key);
  w.StartArray();
  for (const std::string& id : ids) {
    w.String(id.c_str(), static_cast<rapidjson::SizeType>(id.size()));
  }
  w.EndArray();
}

Status ReadIds(const rapidjson::Value& d, const char* key, std::vector<std::string>* out) {
  if (!d.HasMember(key) || !d[key].IsArray()) {
    return Status::Corruption(std::string("partition state: ") + key + " is not an array");
  }
  for (const auto& v : d[key].GetArray()) {
    if (!v.IsString() || v.GetStringLength() == 0) {
      return Status::Corruption(std::string("partition state: ") + key +
                                " holds a non-string or empty id");
    }
    out->push_back(v.GetString());
  }
  return Status::Ok();
}

bool Contains(const std::vector<std::string>& v, const std::string& id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

}  // namespace

bool PartitionState::InIsr(const std::string& id) const { return Contains(isr, id); }
bool PartitionState::IsReplica(const std::string& id) const { return Contains(replicas, id); }

bool PartitionState::operator==(const PartitionState& o) const {
  return replicas == o.replicas && leader == o.leader && leader_epoch == o.leader_epoch &&
         leader_incarnation == o.leader_incarnation && isr == o.isr && controller_epoch == o.controller_epoch && version == o.version;
}

std::string RegionPrefix(const std::string& region) { return "/sluice/regions/" + region + "/"; }
std::string ControllerElection(const std::string& region) {
  return RegionPrefix(region) + "controller";
}
std::string TopicsPrefix(const std::string& region) { return RegionPrefix(region) + "topics/"; }
std::string TopicKey(const std::string& region, const std::string& topic) {
  return TopicsPrefix(region) + topic;
}
std::string PartitionsPrefix(const std::string& region) {
  return RegionPrefix(region) + "partitions/";
}
std::string PartitionKey(const std::string& region, const std::string& topic, int32_t partition) {
  return PartitionsPrefix(region) + topic + "/" + std::to_string(partition);
}

bool ParsePartitionKey(const std::string& region, const std::string& key, std::string* topic,
                       int32_t* partition) {
  const std::string prefix = PartitionsPrefix(region);
  if (key.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  const size_t slash = key.rfind('/');
  if (slash == std::string::npos || slash < prefix.size() + 1 || slash + 1 >= key.size()) {
    return false;
  }
  int32_t p = 0;
  const char* begin = key.data() + slash + 1;
  const char* end = key.data() + key.size();
  auto [ptr, ec] = std::from_chars(begin, end, p);
  if (ec != std::errc() || ptr != end || p < 0) {
    return false;
  }
  *topic = key.substr(prefix.size(), slash - prefix.size());
  *partition = p;
  return true;
}

std::string PartitionStateJson(const PartitionState& s) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  WriteIds(w, "replicas", s.replicas);
  w.Key("leader");
  w.String(s.leader.c_str(), static_cast<rapidjson::SizeType>(s.leader.size()));
  w.Key("leader_epoch");
  w.Int(s.leader_epoch);
  w.Key("leader_incarnation");
  w.Int64(s.leader_incarnation);
  WriteIds(w, "isr", s.isr);
  w.Key("controller_epoch");
  w.Int64(s.controller_epoch);
  w.Key("version");
  w.Int64(s.version);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

Result<PartitionState> ParsePartitionState(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject()) {
    return Status::Corruption("partition state: not a JSON object");
  }
  PartitionState s;
  SLUICE_RETURN_IF_ERROR(ReadIds(d, "replicas", &s.replicas));
  SLUICE_RETURN_IF_ERROR(ReadIds(d, "isr", &s.isr));
  if (!d.HasMember("leader") || !d["leader"].IsString() || !d.HasMember("leader_epoch") ||
      !d["leader_epoch"].IsInt() || !d.HasMember("controller_epoch") ||
      !d["controller_epoch"].IsInt64() || !d.HasMember("version") || !d["version"].IsInt64()) {
    return Status::Corruption("partition state: leader, leader_epoch, controller_epoch or "
                              "version missing or mistyped");
  }
  s.leader = d["leader"].GetString();
  s.leader_epoch = d["leader_epoch"].GetInt();
  s.controller_epoch = d["controller_epoch"].GetInt64();
  s.version = d["version"].GetInt64();
  if (d.HasMember("leader_incarnation")) {  // absent in states written before it existed
    if (!d["leader_incarnation"].IsInt64()) {
      return Status::Corruption("partition state: leader_incarnation is not an integer");
    }
    s.leader_incarnation = d["leader_incarnation"].GetInt64();
  }
  if (s.replicas.empty()) {
    return Status::Corruption("partition state: no replicas");
  }
  if (!s.leader.empty() && (!s.IsReplica(s.leader) || !s.InIsr(s.leader))) {
    return Status::Corruption("partition state: leader " + s.leader +
                              " is not an in-sync replica");
  }
  for (const std::string& id : s.isr) {
    if (!s.IsReplica(id)) {
      return Status::Corruption("partition state: in-sync " + id + " is not a replica");
    }
  }
  return s;
}

std::string TopicAssignmentJson(const TopicAssignment& t) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("name");
  w.String(t.name.c_str(), static_cast<rapidjson::SizeType>(t.name.size()));
  w.Key("partitions");
  w.Int(t.partitions);
  w.Key("replication_factor");
  w.Int(t.replication_factor);
  TopicConfig with_partitions = t.config;
  with_partitions.partitions = t.partitions;
  const std::string config = TopicConfigJson(t.name, with_partitions);
  w.Key("config");
  w.String(config.c_str(), static_cast<rapidjson::SizeType>(config.size()));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

Result<TopicAssignment> ParseTopicAssignment(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("name") || !d["name"].IsString() ||
      !d.HasMember("partitions") || !d["partitions"].IsInt() ||
      !d.HasMember("replication_factor") || !d["replication_factor"].IsInt()) {
    return Status::Corruption("topic assignment: name, partitions or replication_factor "
                              "missing or mistyped");
  }
  TopicAssignment t;
  t.name = d["name"].GetString();
  t.partitions = d["partitions"].GetInt();
  t.replication_factor = d["replication_factor"].GetInt();
  if (t.partitions < 1 || t.replication_factor < 1) {
    return Status::Corruption("topic assignment: partitions and replication_factor must be >= 1");
  }
  if (d.HasMember("config")) {  // absent in assignments written before overrides travelled
    if (!d["config"].IsString()) {
      return Status::Corruption("topic assignment: config is not a string");
    }
    std::string name;
    std::string field;
    Result<TopicConfig> config = ParseTopicConfigJson(
        std::string(d["config"].GetString(), d["config"].GetStringLength()), &name, &field);
    if (!config.ok()) {
      return Status::Corruption("topic assignment: config: " + config.status().message());
    }
    t.config = *config;
  }
  t.config.partitions = t.partitions;
  return t;
}

Result<std::vector<std::vector<std::string>>> AssignReplicas(std::vector<std::string> brokers,
                                                             int32_t partitions, int32_t factor,
                                                             int32_t start) {
  std::sort(brokers.begin(), brokers.end());
  brokers.erase(std::unique(brokers.begin(), brokers.end()), brokers.end());
  const int32_t n = static_cast<int32_t>(brokers.size());
  if (factor < 1 || factor > n) {
    return Status::InvalidArgument("replication factor " + std::to_string(factor) + " needs " +
                                   std::to_string(factor) + " live brokers in the region; " +
                                   std::to_string(n) + " are registered");
  }
  std::vector<std::vector<std::string>> out(static_cast<size_t>(partitions));
  for (int32_t p = 0; p < partitions; ++p) {
    for (int32_t r = 0; r < factor; ++r) {
      out[p].push_back(brokers[static_cast<size_t>((start + p + r) % n)]);
    }
  }
  return out;
}

}  // namespace sluice::broker
