#include "cli/query_all_regions.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <future>
#include <map>
#include <vector>

#include "cli/broker_target.h"
#include "cli/commands.h"
#include "cli/record_spans.h"
#include "cli/render.h"
#include "core/http.h"

namespace sluice::cli {
namespace {

constexpr int64_t kHttpTimeoutMs = 15000;

// One region's answer: its pages (several with --all), or why it could not be asked.
struct RegionAnswer {
  std::string region;
  std::vector<std::string> pages;
  std::string error;
};

RegionAnswer Ask(const BrokerTarget& target, const std::string& path, const std::string& sep,
                 bool all_pages) {
  RegionAnswer a;
  a.region = target.region;
  std::string cursor;
  while (true) {
    const std::string page = cursor.empty() ? path : path + sep + "cursor=" + UrlEncode(cursor);
    Result<std::string> body = GetBody(target, page, kHttpTimeoutMs);
    if (!body.ok()) {
      a.error = body.status().message();
      return a;
    }
    a.pages.push_back(std::move(body).value());
    cursor = NextCursor(a.pages.back());
    if (!all_pages || cursor.empty()) return a;
  }
}

// The first page's counts_by_country (the whole match's), or false without them.
bool CountsOf(const std::string& body, std::map<std::string, int64_t>* counts) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  auto it = d.FindMember("counts_by_country");
  if (it == d.MemberEnd() || !it->value.IsObject()) return false;
  for (auto c = it->value.MemberBegin(); c != it->value.MemberEnd(); ++c) {
    if (c->value.IsInt64()) (*counts)[c->name.GetString()] = c->value.GetInt64();
  }
  return true;
}

// `s` as a JSON string literal.
std::string JsonString(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

int RunQueryAllRegions(const CliArgs& args, const std::string& path, const std::string& sep,
                       const std::string& output, bool aggregate, std::ostream& out,
                       std::ostream& err) {
  if (args.Has("cursor")) {
    err << "sluice: --cursor belongs to one region's answer; not with --all-regions\n";
    return kExitUsage;
  }
  Result<std::vector<BrokerTarget>> targets = ResolveAllRegions(args);
  if (!targets.ok()) {
    err << "sluice: " << targets.status().message() << "\n";
    return kExitUsage;
  }
  // Every region at once (regions are far apart: one slow region does not wait for the others),
  // printed in the policy's order.
  std::vector<std::future<RegionAnswer>> asked;
  for (const BrokerTarget& t : *targets) {
    const bool all_pages = !aggregate && args.Has("all");
    asked.push_back(std::async(std::launch::async, [&t, &path, &sep, all_pages] {
      return Ask(t, path, sep, all_pages);
    }));
  }
  std::vector<RegionAnswer> answers;
  for (auto& f : asked) {
    answers.push_back(f.get());
  }
  int rc = kExitOk;
  if (output == "json") {
    out << "{\"regions\":[";
    for (size_t i = 0; i < answers.size(); ++i) {
      const RegionAnswer& a = answers[i];
      out << (i > 0 ? "," : "") << "{\"region\":" << JsonString(a.region);
      if (!a.error.empty()) {
        out << ",\"error\":" << JsonString(a.error) << "}";
        rc = kExitFailed;
        continue;
      }
      out << ",\"answers\":[";
      for (size_t p = 0; p < a.pages.size(); ++p) {
        out << (p > 0 ? "," : "") << a.pages[p];
      }
      out << "]}";
    }
    out << "]}\n";
    return rc;
  }
  if (output == "ndjson") {
    for (const RegionAnswer& a : answers) {
      if (!a.error.empty()) {
        err << "sluice: region " << a.region << ": " << a.error << "\n";
        rc = kExitFailed;
        continue;
      }
      for (const std::string& page : a.pages) {
        auto spans = FindRecordSpans(page);
        if (!spans.ok()) {
          err << "sluice: region " << a.region << ": " << spans.status().message() << "\n";
          rc = kExitFailed;
          break;
        }
        for (const RecordSpan& r : *spans) {
          // {"region":"R", + the record's own members: each line says where it is stored.
          out << "{\"region\":" << JsonString(a.region)
              << (r.record.size() > 2 ? "," : "") << r.record.substr(1) << "\n";
        }
      }
    }
    return rc;
  }
  std::vector<std::vector<std::string>> summary = {{"REGION", "COUNTRY", "RECORDS"}};
  bool counted = false;
  for (const RegionAnswer& a : answers) {
    out << "=== region " << a.region << " ===\n";
    if (!a.error.empty()) {
      out << "unavailable: " << a.error << "\n\n";
      summary.push_back({a.region, "-", "unavailable"});
      rc = kExitFailed;
      continue;
    }
    for (size_t p = 0; p < a.pages.size(); ++p) {
      Status st = aggregate ? RenderAggregate(a.pages[p], out)
                            : RenderQuery(a.pages[p], out, /*header=*/p == 0);
      if (!st.ok()) {
        err << "sluice: region " << a.region << ": " << st.message() << "\n";
        rc = kExitFailed;
        break;
      }
    }
    out << "\n";
    std::map<std::string, int64_t> counts;
    if (!aggregate && CountsOf(a.pages.front(), &counts)) {
      counted = true;
      for (const auto& [country, n] : counts) {
        summary.push_back({a.region, country, std::to_string(n)});
      }
      if (counts.empty()) summary.push_back({a.region, "-", "0"});
    }
  }
  if (counted) {
    out << "=== counts per country per region (each region read in place; nothing copied) ===\n"
        << FormatTable(summary, {false, false, true});
  }
  return rc;
}

}  // namespace sluice::cli
