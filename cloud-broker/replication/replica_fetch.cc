#include "cloud-broker/replication/replica_fetch.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>


namespace sluice::broker {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

void I64(Writer& w, const char* key, int64_t v) {
  w.Key(key);
  w.Int64(v);
}

std::string Text(const rapidjson::StringBuffer& sb) {
  return std::string(sb.GetString(), sb.GetSize());
}

// Reads an integer member within [lo, hi]; kInvalidArgument naming `what` otherwise.
template <typename Int>
Status ReadInt(const rapidjson::Value& o, const char* name, Int lo, Int hi, Int* out,
               const std::string& what, bool required = true) {
  if (!o.HasMember(name)) {
    return required ? Status::InvalidArgument(what + name + " is missing") : Status::Ok();
  }
  const rapidjson::Value& v = o[name];
  if (!v.IsInt64() || v.GetInt64() < static_cast<int64_t>(lo) ||
      v.GetInt64() > static_cast<int64_t>(hi)) {
    return Status::InvalidArgument(what + name + " must be an integer in [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  *out = static_cast<Int>(v.GetInt64());
  return Status::Ok();
}

Status ReadString(const rapidjson::Value& o, const char* name, size_t max, std::string* out,
                  const std::string& what) {
  if (!o.HasMember(name) || !o[name].IsString() || o[name].GetStringLength() == 0 ||
      o[name].GetStringLength() > max) {
    return Status::InvalidArgument(what + name + " must be a string of 1.." +
                                   std::to_string(max) + " characters");
  }
  *out = std::string(o[name].GetString(), o[name].GetStringLength());
  return Status::Ok();
}

Status ParseObject(const std::string& json, rapidjson::Document* d) {
  d->Parse(json.c_str(), json.size());
  if (d->HasParseError() || !d->IsObject()) {
    return Status::InvalidArgument("not a JSON object");
  }
  return Status::Ok();
}

constexpr size_t kMaxId = 255;
constexpr size_t kMaxTopic = 249;
constexpr int32_t kMaxPartition = 1 << 20;

}  // namespace

std::string EncodeFetchRequest(const ReplicaFetchRequest& r) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Str(w, "replica", r.replica_id);
  I64(w, "incarnation", r.incarnation);
  I64(w, "max_bytes", r.max_bytes);
  I64(w, "wait_ms", r.wait_ms);
  w.Key("partitions");
  w.StartArray();
  for (const ReplicaFetchPartition& p : r.partitions) {
    w.StartObject();
    Str(w, "topic", p.topic);
    I64(w, "partition", p.partition);
    I64(w, "fetch_offset", p.fetch_offset);
    I64(w, "leader_epoch", p.leader_epoch);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Text(sb);
}

Result<ReplicaFetchRequest> DecodeFetchRequest(const std::string& json) {
  rapidjson::Document d;
  SLUICE_RETURN_IF_ERROR(ParseObject(json, &d));
  ReplicaFetchRequest r;
  SLUICE_RETURN_IF_ERROR(ReadString(d, "replica", kMaxId, &r.replica_id, ""));
  SLUICE_RETURN_IF_ERROR(ReadInt<int64_t>(d, "incarnation", 0, INT64_MAX, &r.incarnation, ""));
  SLUICE_RETURN_IF_ERROR(
      ReadInt<int64_t>(d, "max_bytes", 1, kMaxReplicaFetchBytes, &r.max_bytes, ""));
  SLUICE_RETURN_IF_ERROR(ReadInt<int64_t>(d, "wait_ms", 0, kMaxReplicaFetchWaitMs, &r.wait_ms, "",
                                          /*required=*/false));
  if (!d.HasMember("partitions") || !d["partitions"].IsArray() ||
      d["partitions"].Size() > kMaxReplicaFetchPartitions) {
    return Status::InvalidArgument("partitions must be an array of at most " +
                                   std::to_string(kMaxReplicaFetchPartitions));
  }
  size_t i = 0;
  for (const auto& p : d["partitions"].GetArray()) {
    const std::string what = "partitions[" + std::to_string(i++) + "].";
    if (!p.IsObject()) {
      return Status::InvalidArgument(what + " is not an object");
    }
    ReplicaFetchPartition fp;
    SLUICE_RETURN_IF_ERROR(ReadString(p, "topic", kMaxTopic, &fp.topic, what));
    SLUICE_RETURN_IF_ERROR(ReadInt<int32_t>(p, "partition", 0, kMaxPartition, &fp.partition, what));
    SLUICE_RETURN_IF_ERROR(
        ReadInt<int64_t>(p, "fetch_offset", 0, INT64_MAX, &fp.fetch_offset, what));
    SLUICE_RETURN_IF_ERROR(
        ReadInt<int32_t>(p, "leader_epoch", 0, INT32_MAX, &fp.leader_epoch, what));
    r.partitions.push_back(std::move(fp));
  }
  return r;
}

std::string EncodeFetchResponse(const ReplicaFetchResponse& r) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("partitions");
  w.StartArray();
  for (const ReplicaFetchPartitionResult& p : r.partitions) {
    w.StartObject();
    Str(w, "topic", p.topic);
    I64(w, "partition", p.partition);
    if (!p.error.empty()) {
      Str(w, "error", p.error);
    }
    I64(w, "high_watermark", p.high_watermark);
    I64(w, "log_end_offset", p.log_end_offset);
    I64(w, "log_start_offset", p.log_start_offset);
    I64(w, "bytes", static_cast<int64_t>(p.records.size()));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  const std::string header = Text(sb);
  std::string out;
  const uint32_t n = static_cast<uint32_t>(header.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out += header;
  for (const ReplicaFetchPartitionResult& p : r.partitions) {
    out += p.records;
  }
  return out;
}

Result<ReplicaFetchResponse> DecodeFetchResponse(const std::string& body) {
  if (body.size() < 4) {
    return Status::Corruption("fetch response: shorter than its header length");
  }
  const uint32_t n = (static_cast<uint32_t>(static_cast<uint8_t>(body[0])) << 24) |
                     (static_cast<uint32_t>(static_cast<uint8_t>(body[1])) << 16) |
                     (static_cast<uint32_t>(static_cast<uint8_t>(body[2])) << 8) |
                     static_cast<uint32_t>(static_cast<uint8_t>(body[3]));
  if (n > body.size() - 4) {
    return Status::Corruption("fetch response: header length " + std::to_string(n) +
                              " past the body");
  }
  rapidjson::Document d;
  Status st = ParseObject(body.substr(4, n), &d);
  if (!st.ok() || !d.HasMember("partitions") || !d["partitions"].IsArray()) {
    return Status::Corruption("fetch response: header is not {\"partitions\": [...]}");
  }
  ReplicaFetchResponse r;
  size_t pos = 4 + n;
  for (const auto& p : d["partitions"].GetArray()) {
    ReplicaFetchPartitionResult pr;
    if (!p.IsObject()) {
      // Before any member is looked up: HasMember on a non-object is undefined (found by
      // replica_fetch_fuzz: a partition given as a number).
      return Status::Corruption("fetch response: a partition is not an object");
    }
    Status s = ReadString(p, "topic", kMaxTopic, &pr.topic, "");
    int64_t bytes = 0;
    if (s.ok()) s = ReadInt<int32_t>(p, "partition", 0, kMaxPartition, &pr.partition, "");
    if (s.ok()) s = ReadInt<int64_t>(p, "high_watermark", 0, INT64_MAX, &pr.high_watermark, "");
    if (s.ok()) s = ReadInt<int64_t>(p, "log_end_offset", 0, INT64_MAX, &pr.log_end_offset, "");
    if (s.ok()) {
      s = ReadInt<int64_t>(p, "log_start_offset", 0, INT64_MAX, &pr.log_start_offset, "");
    }
    if (s.ok()) s = ReadInt<int64_t>(p, "bytes", 0, kMaxReplicaFetchBytes, &bytes, "");
    if (!s.ok()) {
      return Status::Corruption("fetch response: " + s.message());
    }
    if (p.HasMember("error") && p["error"].IsString()) {
      pr.error = p["error"].GetString();
    }
    if (static_cast<uint64_t>(bytes) > body.size() - pos) {
      return Status::Corruption("fetch response: " + pr.topic + "-" +
                                std::to_string(pr.partition) + " claims " +
                                std::to_string(bytes) + " bytes past the body");
    }
    pr.records = body.substr(pos, static_cast<size_t>(bytes));
    pos += static_cast<size_t>(bytes);
    r.partitions.push_back(std::move(pr));
  }
  if (pos != body.size()) {
    return Status::Corruption("fetch response: " + std::to_string(body.size() - pos) +
                              " trailing bytes");
  }
  return r;
}

std::string EncodeEpochEndRequest(const EpochEndRequest& r) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Str(w, "topic", r.topic);
  I64(w, "partition", r.partition);
  I64(w, "leader_epoch", r.leader_epoch);
  I64(w, "current_leader_epoch", r.current_leader_epoch);
  w.EndObject();
  return Text(sb);
}

Result<EpochEndRequest> DecodeEpochEndRequest(const std::string& json) {
  rapidjson::Document d;
  SLUICE_RETURN_IF_ERROR(ParseObject(json, &d));
  EpochEndRequest r;
  SLUICE_RETURN_IF_ERROR(ReadString(d, "topic", kMaxTopic, &r.topic, ""));
  SLUICE_RETURN_IF_ERROR(ReadInt<int32_t>(d, "partition", 0, kMaxPartition, &r.partition, ""));
  SLUICE_RETURN_IF_ERROR(ReadInt<int32_t>(d, "leader_epoch", 0, INT32_MAX, &r.leader_epoch, ""));
  SLUICE_RETURN_IF_ERROR(ReadInt<int32_t>(d, "current_leader_epoch", 0, INT32_MAX,
                                          &r.current_leader_epoch, ""));
  return r;
}

std::string EncodeEpochEndResponse(const EpochEndResponse& r) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  if (!r.error.empty()) {
    Str(w, "error", r.error);
  }
  I64(w, "leader_epoch", r.leader_epoch);
  I64(w, "end_offset", r.end_offset);
  w.EndObject();
  return Text(sb);
}

Result<EpochEndResponse> DecodeEpochEndResponse(const std::string& json) {
  rapidjson::Document d;
  Status st = ParseObject(json, &d);
  EpochEndResponse r;
  if (st.ok()) st = ReadInt<int32_t>(d, "leader_epoch", -1, INT32_MAX, &r.leader_epoch, "");
  if (st.ok()) st = ReadInt<int64_t>(d, "end_offset", -1, INT64_MAX, &r.end_offset, "");
  if (!st.ok()) {
    return Status::Corruption("epoch_end response: " + st.message());
  }
  if (d.HasMember("error") && d["error"].IsString()) {
    r.error = d["error"].GetString();
  }
  return r;
}

}  // namespace sluice::broker
