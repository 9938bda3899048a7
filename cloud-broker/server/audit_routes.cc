// GET /v1/audit?from=&to=&country=&limit=&cursor=: the region's residency refusals
// (cloud-broker/residency/audit_log.h), oldest first. It reads the audit file, so it runs on the
// query pool like a query (query_routes.cc), never on an HTTP thread. Access: the admin
// operation (an audit names every producer that was refused).
#include "cloud-broker/query/query.h"
#include "cloud-broker/query/query_pool.h"
#include "cloud-broker/residency/audit_log.h"
#include "cloud-broker/server/broker_service.h"

namespace sluice::broker {
namespace {
constexpr int64_t kMaxAuditLimit = 10000;
}  // namespace

HttpResponse BrokerService::Audit(const HttpRequest& req) {
  if (options_.audit == nullptr) {
    return HttpResponse::Error(404, "not_found", "this broker keeps no audit log");
  }
  AuditQuery q;
  for (const auto& [key, value] : req.query) {
    if (key == "from" || key == "to") {
      int64_t ms;
      if (!ParseTimeParam(value, &ms)) {
        return HttpResponse::Error(400, "invalid_parameter",
                                   key + " must be epoch milliseconds or an RFC 3339 time", key);
      }
      (key == "from" ? q.from_ms : q.to_ms) = ms;
    } else if (key == "country") {
      if (value.size() > 16) {
        return HttpResponse::Error(400, "invalid_parameter", "country is at most 16 bytes",
                                   key);
      }
      q.country = value;
    } else if (key == "limit") {
      char* end = nullptr;
      const long long n = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || end != value.c_str() + value.size() || n < 1 || n > kMaxAuditLimit) {
        return HttpResponse::Error(400, "invalid_parameter",
                                   "limit must be 1.." + std::to_string(kMaxAuditLimit), key);
      }
      q.limit = static_cast<size_t>(n);
    } else if (key == "cursor") {
      char* end = nullptr;
      const long long n = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || end != value.c_str() + value.size() || n < 0) {
        return HttpResponse::Error(400, "invalid_parameter",
                                   "cursor must be a previous answer's next", key);
      }
      q.start_offset = n;
    } else {
      return HttpResponse::Error(400, "invalid_parameter", "unknown parameter " + key, key);
    }
  }
  bool more = false;
  int64_t next = -1;
  Result<std::vector<AuditEntry>> entries = options_.audit->Read(q, &more, &next);
  if (!entries.ok() && entries.status().code() == StatusCode::kInvalidArgument) {
    return HttpResponse::Error(400, "invalid_parameter", entries.status().message(), "cursor");
  }
  if (!entries.ok()) {
    LogError("audit", entries.status().ToString());
    return HttpResponse::Error(500, "storage_error", entries.status().message());
  }
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("region");
  WriteJsonString(w, policy_.region().value());
  w.Key("returned");
  w.Uint64(entries->size());
  w.Key("more");
  w.Bool(more);
  w.Key("next");  // pass as cursor (with the same filter) for the entries that follow
  if (more) {
    w.String(std::to_string(next).c_str());
  } else {
    w.Null();
  }
  w.Key("entries");
  w.StartArray();
  for (const AuditEntry& e : *entries) {
    const std::string json = AuditEntryJson(e);  // as the log stores it
    w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  }
  w.EndArray();
  w.EndObject();
  return HttpResponse::Json(200, std::string(sb.GetString(), sb.GetSize()));
}

}  // namespace sluice::broker
