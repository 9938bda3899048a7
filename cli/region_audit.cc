#include "cli/region_audit.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <future>
#include <vector>

#include "cli/commands.h"
#include "cli/render.h"

namespace sluice::cli {
namespace {

constexpr int64_t kHttpTimeoutMs = 15000;

struct BrokerAnswer {
  std::string url;
  Result<std::string> body = Status::Unavailable("not asked");
};

}  // namespace

int RunRegionAudit(const BrokerTarget& target, const std::string& path, bool json,
                   std::ostream& out, std::ostream& err) {
  std::vector<std::future<BrokerAnswer>> asked;
  for (const std::string& url : target.urls) {
    BrokerTarget one = target;
    one.url = url;
    asked.push_back(std::async(std::launch::async, [one, &path] {
      return BrokerAnswer{one.url, GetBody(one, path, kHttpTimeoutMs)};
    }));
  }
  int rc = kExitOk;
  rapidjson::Document merged(rapidjson::kObjectType);
  auto& alloc = merged.GetAllocator();
  rapidjson::Value entries(rapidjson::kArrayType);
  rapidjson::Value brokers(rapidjson::kArrayType);
  bool more = false;
  std::string region = target.region;
  for (auto& f : asked) {
    BrokerAnswer a = f.get();
    rapidjson::Value b(rapidjson::kObjectType);
    b.AddMember("url", rapidjson::Value(a.url.c_str(), alloc), alloc);
    rapidjson::Document d;
    if (a.body.ok()) {
      d.Parse(a.body->data(), a.body->size());
    }
    if (!a.body.ok() || d.HasParseError() || !d.IsObject() || !d.HasMember("entries") ||
        !d["entries"].IsArray()) {
      const std::string why = a.body.ok() ? "not an audit answer" : a.body.status().message();
      err << "sluice: broker " << a.url << ": " << why << " (its refusals are not shown)\n";
      b.AddMember("error", rapidjson::Value(why.c_str(), alloc), alloc);
      brokers.PushBack(b, alloc);
      rc = kExitFailed;
      continue;
    }
    more = more || (d.HasMember("more") && d["more"].IsBool() && d["more"].GetBool());
    if (region.empty() && d.HasMember("region") && d["region"].IsString()) {
      region = d["region"].GetString();  // --broker A,B names no region: the brokers do
    }
    for (auto& e : d["entries"].GetArray()) {
      rapidjson::Value copy(e, alloc);
      if (copy.IsObject()) {
        copy.AddMember("broker", rapidjson::Value(a.url.c_str(), alloc), alloc);
      }
      entries.PushBack(copy, alloc);
    }
    b.AddMember("answer", rapidjson::Value(d, alloc), alloc);
    brokers.PushBack(b, alloc);
  }
  auto time_of = [](const rapidjson::Value& e) {
    return e.IsObject() && e.HasMember("time_ms") && e["time_ms"].IsInt64()
               ? e["time_ms"].GetInt64()
               : int64_t{0};
  };
  std::vector<rapidjson::Value*> order;
  for (auto& e : entries.GetArray()) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [&](const rapidjson::Value* x,
                                                   const rapidjson::Value* y) {
    return time_of(*x) < time_of(*y);
  });
  rapidjson::Value sorted(rapidjson::kArrayType);
  for (rapidjson::Value* e : order) sorted.PushBack(rapidjson::Value(*e, alloc), alloc);
  merged.AddMember("region", rapidjson::Value(region.c_str(), alloc), alloc);
  merged.AddMember("returned", static_cast<uint64_t>(sorted.Size()), alloc);
  merged.AddMember("more", more, alloc);
  if (json) {
    merged.AddMember("brokers", brokers, alloc);
  } else {
    merged.AddMember("entries", sorted, alloc);
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  merged.Accept(w);
  const int printed =
      PrintAnswer(std::string(sb.GetString(), sb.GetSize()), json, RenderAudit, out, err);
  return printed != kExitOk ? printed : rc;
}

}  // namespace sluice::cli
