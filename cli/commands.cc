#include "cli/commands.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include <rapidjson/document.h>

#include "cli/broker_target.h"
#include "cli/consume.h"
#include "cli/query_all_regions.h"
#include "cli/region_audit.h"
#include "cli/record_spans.h"
#include "cli/render.h"
#include "cli/topics_admin.h"
#include "core/cli_args.h"
#include "core/clock.h"
#include "core/http.h"
#include "core/strong_types.h"
#include "core/time_util.h"

namespace sluice::cli {
namespace {

constexpr int64_t kHttpTimeoutMs = 15000;
constexpr int64_t kFetchPageMax = 500;

const std::vector<CliFlag> kTargetFlags = BrokerTargetFlags();

struct Command {
  std::string usage;
  std::vector<CliFlag> flags;
  std::function<int(const CliArgs&, std::ostream&, std::ostream&)> run;
};

bool ParseInt(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  *v = std::stoll(s);
  return true;
}

// GETs `path` from the broker: the body on 200, else the exit code after printing why.
int Get(const BrokerTarget& target, const std::string& path, std::string* body,
        std::ostream& err) {
  Result<std::string> r = GetBody(target, path, kHttpTimeoutMs);
  if (!r.ok()) {
    err << "sluice: " << r.status().message() << "\n";
    return kExitFailed;
  }
  *body = std::move(r).value();
  return kExitOk;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "sluice: " << message << "\n";
  return kExitUsage;
}

int Resolve(const CliArgs& args, BrokerTarget* target, std::ostream& err) {
  auto t = ResolveBroker(args);
  if (!t.ok()) return Usage(err, t.status().message());
  *target = *t;
  return kExitOk;
}

// --from/--to: epoch ms, RFC 3339, "now", or relative to now like -1h, -30m, -2d, -90s.
bool ResolveTime(const std::string& s, int64_t now_ms, int64_t* out) {
  if (ParseInt(s, out) || ParseRfc3339Ms(s, out)) {
    return true;
  }
  if (s == "now") {
    *out = now_ms;
    return true;
  }
  if (s.size() < 3 || s[0] != '-') {
    return false;
  }
  int64_t n = 0;
  if (!ParseInt(s.substr(1, s.size() - 2), &n) || n < 0 || n > 100LL * 365 * 24 * 3600) {
    return false;
  }
  const int64_t unit = s.back() == 's' ? 1000 : s.back() == 'm' ? 60'000
                     : s.back() == 'h' ? 3'600'000 : s.back() == 'd' ? 86'400'000 : 0;
  if (unit == 0) {
    return false;
  }
  *out = now_ms - n * unit;
  return true;
}


// sluice query --bucket/--group-by/--field: GET /v1/query/aggregate with the query's filter.
int RunAggregate(const CliArgs& args, std::string path, std::string sep, std::ostream& out,
                 std::ostream& err) {
  path.replace(0, std::string("/v1/query").size(), "/v1/query/aggregate");
  auto add = [&](const std::string& key, const std::string& value) {
    path += sep + key + "=" + UrlEncode(value);
    sep = "&";
  };
  if (args.Has("bucket")) add("bucket", args.Get("bucket"));
  if (args.Has("group-by")) add("group_by", args.Get("group-by"));
  if (args.Has("field")) add("field", args.Get("field"));
  for (const char* flag : {"limit", "all", "cursor"}) {
    if (args.Has(flag)) return Usage(err, std::string("--") + flag + " does not apply to aggregates");
  }
  const bool json = args.Has("json") || (args.Has("output") && args.Get("output") == "json");
  if (args.Has("all-regions")) {
    return RunQueryAllRegions(args, path, sep, json ? "json" : "table", true, out, err);
  }
  BrokerTarget target;
  if (int rc = Resolve(args, &target, err); rc != kExitOk) return rc;
  std::string body;
  if (int rc = Get(target, path, &body, err); rc != kExitOk) return rc;
  return PrintAnswer(body, json, RenderAggregate, out, err);
}

int RunQuery(const CliArgs& args, std::ostream& out, std::ostream& err) {
  std::string path = "/v1/query";
  std::string sep = "?";
  auto add = [&](const std::string& key, const std::string& value) {
    path += sep + key + "=" + UrlEncode(value);
    sep = "&";
  };
  if (args.Has("device")) add("device_id", args.Get("device"));
  if (args.Has("country")) {
    std::string cc = args.Get("country");
    std::transform(cc.begin(), cc.end(), cc.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    if (!IsCountryCodeShape(cc)) return Usage(err, "--country must be a 2-letter code");
    add("country", cc);
  }
  if (args.Has("sensor")) add("sensor", args.Get("sensor"));
  const int64_t now_ms = SystemClock::Instance().NowMs();
  for (const char* flag : {"from", "to"}) {
    if (!args.Has(flag)) continue;
    int64_t ms = 0;
    if (!ResolveTime(args.Get(flag), now_ms, &ms)) {
      return Usage(err, std::string("--") + flag +
                            " must be epoch ms, RFC 3339, now, or relative like -1h (s, m, h, "
                            "d), got '" + args.Get(flag) + "'");
    }
    // Absolute times go as given (the broker parses RFC 3339 itself); relative ones resolved.
    const std::string& given = args.Get(flag);
    int64_t ignored = 0;
    add(flag, ParseInt(given, &ignored) || ParseRfc3339Ms(given, &ignored) ? given
                                                                            : std::to_string(ms));
  }
  if (args.Has("topic")) add("topic", args.Get("topic"));
  if (args.Has("bucket") || args.Has("group-by") || args.Has("field")) {
    return RunAggregate(args, path, sep, out, err);  // the filter so far, then the aggregate
  }
  if (args.Has("limit")) {
    int64_t limit = 0;
    if (!ParseInt(args.Get("limit"), &limit)) return Usage(err, "--limit must be an integer >= 0");
    add("limit", args.Get("limit"));
  }
  std::string output = args.Has("json") ? "json" : "table";
  if (args.Has("output")) output = args.Get("output");
  if (output != "table" && output != "json" && output != "ndjson") {
    return Usage(err, "--output must be table, json or ndjson");
  }
  // The table and JSON carry the exact count and counts per country (cheap with the broker's
  // index); --no-count skips them, and NDJSON prints records only.
  if (output != "ndjson" && !args.Has("no-count")) add("count", "exact");
  if (args.Has("all-regions")) {
    return RunQueryAllRegions(args, path, sep, output, false, out, err);
  }
  BrokerTarget target;
  if (int rc = Resolve(args, &target, err); rc != kExitOk) return rc;
  std::string cursor = args.Has("cursor") ? args.Get("cursor") : "";
  for (bool first = true;; first = false) {
    std::string body;
    const std::string page = cursor.empty() ? path : path + sep + "cursor=" + UrlEncode(cursor);
    if (int rc = Get(target, page, &body, err); rc != kExitOk) return rc;
    if (output == "json") {
      out << body << (body.empty() || body.back() != '\n' ? "\n" : "");
    } else if (output == "ndjson") {
      auto spans = FindRecordSpans(body);
      if (!spans.ok()) {
        err << "sluice: query answer: " << spans.status().message() << "\n";
        return kExitFailed;
      }
      for (const RecordSpan& r : *spans) out << r.record << "\n";
    } else {
      Status st = RenderQuery(body, out, /*header=*/first);
      if (!st.ok()) {
        err << "sluice: " << st.message() << "\n";
        return kExitFailed;
      }
    }
    cursor = NextCursor(body);
    if (!args.Has("all") || cursor.empty()) break;
  }
  return kExitOk;
}

int RunTopics(const CliArgs& args, std::ostream& out, std::ostream& err) {
  BrokerTarget target;
  if (int rc = Resolve(args, &target, err); rc != kExitOk) return rc;
  std::string body;
  if (int rc = Get(target, "/v1/topics", &body, err); rc != kExitOk) return rc;
  return PrintAnswer(body, args.Has("json"), RenderTopics, out, err);
}

int RunFetch(const CliArgs& args, std::ostream& out, std::ostream& err) {
  if (!args.Has("topic") || args.Get("topic").empty()) return Usage(err, "fetch needs --topic");
  int64_t partition = 0;
  if (!ParseInt(args.Get("partition"), &partition)) {
    return Usage(err, "fetch needs --partition N (an integer >= 0)");
  }
  int64_t offset = 0;
  if (args.Has("offset") && !ParseInt(args.Get("offset"), &offset)) {
    return Usage(err, "--offset must be an integer >= 0");
  }
  int64_t max = kFetchPageMax;
  if (args.Has("max") && (!ParseInt(args.Get("max"), &max) || max < 1)) {
    return Usage(err, "--max must be an integer >= 1");
  }
  BrokerTarget target;
  if (int rc = Resolve(args, &target, err); rc != kExitOk) return rc;
  const std::string base = "/v1/topics/" + UrlEncode(args.Get("topic")) + "/partitions/" +
                           std::to_string(partition) + "/records";
  int64_t printed = 0;
  while (printed < max) {
    const int64_t want = std::min(max - printed, kFetchPageMax);
    std::string body;
    const std::string path =
        base + "?offset=" + std::to_string(offset) + "&max_records=" + std::to_string(want);
    if (int rc = Get(target, path, &body, err); rc != kExitOk) return rc;
    auto page = ParseFetchPage(body);
    if (!page.ok()) {
      err << "sluice: " << page.status().message() << "\n";
      return kExitFailed;
    }
    for (const std::string& r : page->records) out << r << "\n";
    printed += static_cast<int64_t>(page->records.size());
    if (page->records.empty() || page->next_offset <= offset ||
        page->next_offset >= page->end_offset) {
      break;
    }
    offset = page->next_offset;
  }
  return kExitOk;
}

// sluice audit: GET /v1/audit, one refusal per line (--json: the broker's answer).
int RunAudit(const CliArgs& args, std::ostream& out, std::ostream& err) {
  std::string path = "/v1/audit?limit=" + (args.Has("limit") ? UrlEncode(args.Get("limit"))
                                                             : std::string("1000"));
  for (const char* key : {"from", "to", "country", "cursor"}) {
    if (args.Has(key)) {
      std::string value = args.Get(key);
      if (std::string(key) == "from" || std::string(key) == "to") {
        int64_t ms = 0;
        if (!ResolveTime(value, SystemClock::Instance().NowMs(), &ms)) {
          return Usage(err, std::string("--") + key +
                                " must be epoch ms, RFC 3339, now, or relative like -1h");
        }
        value = std::to_string(ms);
      }
      path += std::string("&") + key + "=" + UrlEncode(value);
    }
  }
  BrokerTarget target;
  if (int rc = Resolve(args, &target, err); rc != kExitOk) return rc;
  if (target.urls.size() > 1) {
    // Each broker keeps the refusals it answered: the region's are the union.
    if (args.Has("cursor")) {
      return Usage(err, "--cursor belongs to one broker's audit log: give --broker URL");
    }
    return RunRegionAudit(target, path, args.Has("json"), out, err);
  }
  std::string body;
  if (int rc = Get(target, path, &body, err); rc != kExitOk) return rc;
  return PrintAnswer(body, args.Has("json"), RenderAudit, out, err);
}

std::map<std::string, Command> Commands() {
  std::vector<CliFlag> query = kTargetFlags;
  query.insert(query.end(), {{"device", true, "only this device id"},
                             {"country", true, "only this country (ISO 3166-1 alpha-2)"},
                             {"from", true, "from this time (epoch ms or RFC 3339)"},
                             {"to", true, "up to this time (epoch ms or RFC 3339)"},
                             {"sensor", true, "only this sensor"},
                             {"limit", true, "records per page (broker default 100)"},
                             {"topic", true, "only this topic"},
                             {"cursor", true, "start after this `next` cursor of an earlier page"},
                             {"all", false, "follow `next` cursors: every page"},
                             {"no-count", false, "skip the exact count and counts per country"},
                             {"output", true, "table (default), json (the broker's answer) or "
                                              "ndjson (one record per line)"},
                             {"bucket", true, "aggregate: counts per 1m, 1h or 1d (needs --from "
                                              "and --to)"},
                             {"group-by", true, "aggregate: counts per country, device or sensor"},
                             {"field", true, "aggregate: min/max/avg/sum of this numeric payload "
                                             "field"},
                             {"json", false, "same as --output json"},
                             {"all-regions", false,
                              "ask every region of the residency policy (--config) and label "
                              "each answer with its region, then counts per country per "
                              "region; nothing is copied between regions"}});
  std::vector<CliFlag> topics = kTargetFlags;
  topics.push_back({"json", false, "print the broker's raw JSON answer"});
  std::vector<CliFlag> fetch = kTargetFlags;
  fetch.insert(fetch.end(), {{"topic", true, "topic to read (required)"},
                             {"partition", true, "partition to read (required)"},
                             {"offset", true, "first offset (default 0)"},
                             {"max", true, "records to print at most (default 500)"}});
  std::vector<CliFlag> audit = kTargetFlags;
  audit.insert(audit.end(), {{"from", true, "refusals from this time (epoch ms, RFC 3339, -1h)"},
                             {"to", true, "refusals before this time"},
                             {"country", true, "only refusals of this country"},
                             {"limit", true, "at most this many (default 1000, at most 10000)"},
                             {"cursor", true, "continue after an earlier answer (its next)"},
                             {"json", false, "print the broker's raw JSON answer"}});
  std::vector<CliFlag> consume = kTargetFlags;  // sluice consume (cli/consume.cc)
  for (const CliFlag& f : ConsumeFlags()) consume.push_back(f);
  return {
      {"query",
       {"sluice query (--broker URL | --config FILE --region NAME | --config FILE "
        "--all-regions) [filters]\n\n"
        "Asks a broker which records match (GET /v1/query), in time order, and prints the\n"
        "matched count, counts per country and a page of records (--all: every page).\n"
        "--from/--to take epoch ms, RFC 3339, now, or relative times like -1h, -30m, -2d.\n"
        "--bucket, --group-by or --field ask for aggregates instead (GET /v1/query/aggregate).",
        query, RunQuery}},
      {"topics",
       {"sluice topics (--broker URL | --config FILE --region NAME)\n\n"
        "Lists a broker's topics and partitions with their offsets (GET /v1/topics).",
        topics, RunTopics}},
      {"fetch",
       {"sluice fetch (--broker URL | --config FILE --region NAME) --topic T --partition P\n"
        "       [--offset O] [--max N]\n\n"
        "Reads records of one partition from an offset and prints one JSON object per line.",
        fetch, RunFetch}},
      {"consume", {ConsumeUsage(), consume, RunConsume}},
      {"audit",
       {"sluice audit (--broker URL | --config FILE --region NAME) [--from T] [--to T]\n"
        "       [--country CC] [--limit N] [--cursor C]\n\n"
        "Lists the region's residency refusals from its audit log (GET /v1/audit): time,\n"
        "principal, gateway, country, records and reason of every batch refused.",
        audit, RunAudit}},
  };
}

}  // namespace

int PrintAnswer(const std::string& body, bool json,
                Status (*render)(const std::string&, std::ostream&), std::ostream& out,
                std::ostream& err) {
  if (json) {
    out << body << (body.empty() || body.back() != '\n' ? "\n" : "");
    return kExitOk;
  }
  Status st = render(body, out);
  if (!st.ok()) {
    err << "sluice: " << st.message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

std::string TopUsage() {
  return "usage: sluice COMMAND [options]\n\n"
         "commands:\n"
         "  query    records matching a device/country/time filter, with counts per country\n"
         "  topics   a broker's topics and partitions; topics create|describe TOPIC admin\n"
         "  fetch    records of one partition, as JSON lines\n"
         "  consume  records of a partition or as a consumer group, as JSON lines\n"
         "  audit    the region's residency refusals (its audit log)\n\n"
         "`sluice COMMAND --help` shows each command's options.\n";
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << TopUsage();
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << TopUsage();
    return kExitOk;
  }
  if (IsTopicsAdmin(args)) {  // storage: sluice topics create|list|describe (topics_admin.cc)
    return RunTopicsAdmin(args, out, err);
  }
  const auto commands = Commands();
  auto it = commands.find(args[0]);
  if (it == commands.end()) {
    err << "sluice: unknown command '" << args[0] << "'\n" << TopUsage();
    return kExitUsage;
  }
  const Command& cmd = it->second;
  std::vector<std::string> storage = args;
  storage[0] = "sluice " + args[0];
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  std::string error;
  auto parsed = ParseCliArgs(static_cast<int>(argv.size()), argv.data(), cmd.flags, &error);
  if (!parsed) {
    err << "sluice: " << error << "\n" << CliUsage(cmd.usage, cmd.flags);
    return kExitUsage;
  }
  if (parsed->help) {
    out << CliUsage(cmd.usage, cmd.flags);
    return kExitOk;
  }
  if (!parsed->positional.empty()) {
    return Usage(err, "unexpected argument '" + parsed->positional[0] + "'");
  }
  return cmd.run(*parsed, out, err);
}

}  // namespace sluice::cli
