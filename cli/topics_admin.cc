#include "cli/topics_admin.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>

#include "cli/broker_target.h"
#include "cli/commands.h"
#include "core/cli_args.h"
#include "core/http.h"

namespace sluice::cli {
namespace {

constexpr int64_t kTimeoutMs = 15000;

const std::vector<CliFlag> kCreateFlags = {
    {"topic", true, "topic name (required)"},
    {"partitions", true, "partition count 1..1024 (default: the broker's)"},
    {"retention-ms", true, "delete segments older than this (ms; -1 keeps forever)"},
    {"retention-bytes", true, "keep at most this many bytes per partition (-1: no limit)"},
    {"flush", true, "always | interval | never"},
    {"flush-ms", true, "with flush interval: fsync at least this often (ms)"},
    {"flush-bytes", true, "with flush interval: fsync after this many bytes"},
};

const std::vector<CliFlag> kDescribeFlags = {
    {"topic", true, "topic name (required)"},
    {"json", false, "print the broker's raw JSON answer"},
};

bool ParseSigned(const std::string& s, int64_t* v) {
  size_t i = s.size() > 0 && s[0] == '-' ? 1 : 0;
  if (s.size() == i || s.size() > 19) return false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  *v = std::stoll(s);
  return true;
}

int Fail(std::ostream& err, const std::string& m, int code) {
  err << "sluice: " << m << "\n";
  return code;
}

int Send(const BrokerTarget& target, const std::string& method, const std::string& path,
         const std::string& body, int want, std::string* answer, std::ostream& err) {
  HttpClientOptions o;
  o.timeout_ms = kTimeoutMs;
  o.tls = target.tls;
  HttpClient client(target.url, o);
  Result<HttpResponse> r = client.Send(method, path, body);
  if (!r.ok()) {
    return Fail(err, "cannot reach " + target.url + ": " + r.status().message(), kExitFailed);
  }
  if (r->status != want) {
    return Fail(err, target.url + path + " answered HTTP " + std::to_string(r->status) + ": " +
                         r->body, kExitFailed);
  }
  *answer = std::move(r->body);
  return kExitOk;
}

// Prints a describe answer as a config line and a partition table.
void Render(const std::string& json, std::ostream& out) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(json.c_str());
  // An answer not of the documented shape is printed as it came (nothing looked up in it).
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("partitions") ||
      !d["partitions"].IsArray() || !d.HasMember("name") || !d["name"].IsString() ||
      !d.HasMember("config") || !d["config"].IsObject()) {
    out << json << "\n";
    return;
  }
  out << "topic: " << d["name"].GetString() << "\nconfig:";
  for (auto it = d["config"].MemberBegin(); it != d["config"].MemberEnd(); ++it) {
    out << " " << it->name.GetString() << "=";
    if (it->value.IsString()) {
      out << it->value.GetString();
    } else {
      out << it->value.GetInt64();
    }
  }
  out << "\n\nPARTITION  START_OFFSET    END_OFFSET    SIZE_BYTES  SEGMENTS\n";
  auto num = [](const rapidjson::Value& p, const char* key) -> long long {
    return p.IsObject() && p.HasMember(key) && p[key].IsInt64()
               ? static_cast<long long>(p[key].GetInt64())
               : -1;  // not in the answer
  };
  for (const auto& p : d["partitions"].GetArray()) {
    char line[128];
    std::snprintf(line, sizeof(line), "%9lld %13lld %13lld %13lld %9lld\n", num(p, "partition"),
                  num(p, "start_offset"), num(p, "end_offset"), num(p, "size_bytes"),
                  num(p, "segments"));
    out << line;
  }
}

}  // namespace

bool IsTopicsAdmin(const std::vector<std::string>& args) {
  return args.size() >= 2 && args[0] == "topics" &&
         (args[1] == "create" || args[1] == "describe" || args[1] == "list");
}

int RunTopicsAdmin(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::string sub = args[1];
  if (sub == "list") {
    std::vector<std::string> rest = {"topics"};
    rest.insert(rest.end(), args.begin() + 2, args.end());
    return RunCli(rest, out, err);
  }
  std::vector<CliFlag> flags = BrokerTargetFlags();
  for (const CliFlag& f : sub == "create" ? kCreateFlags : kDescribeFlags) flags.push_back(f);
  const std::string usage =
      sub == "create"
          ? "sluice topics create (--broker URL | --config FILE --region NAME) --topic T\n"
            "       [--partitions N] [--retention-ms MS] [--retention-bytes B]\n"
            "       [--flush always|interval|never] [--flush-ms MS] [--flush-bytes B]\n\n"
            "Creates a topic with its retention and flush policy (POST /v1/topics)."
          : "sluice topics describe (--broker URL | --config FILE --region NAME) --topic T\n\n"
            "Shows a topic's config and, per partition, start and end offsets, size and segment\n"
            "count (GET /v1/topics/{topic}).";
  std::vector<std::string> storage(args.begin() + 1, args.end());
  storage[0] = "sluice topics " + sub;
  std::vector<char*> argv;
  for (auto& s : storage) argv.push_back(s.data());
  std::string error;
  auto parsed = ParseCliArgs(static_cast<int>(argv.size()), argv.data(), flags, &error);
  if (!parsed) {
    err << "sluice: " << error << "\n" << CliUsage(usage, flags);
    return kExitUsage;
  }
  if (parsed->help) {
    out << CliUsage(usage, flags);
    return kExitOk;
  }
  if (!parsed->Has("topic") || parsed->Get("topic").empty()) {
    return Fail(err, "topics " + sub + " needs --topic", kExitUsage);
  }
  auto target = ResolveBroker(*parsed);
  if (!target.ok()) return Fail(err, target.status().message(), kExitUsage);
  std::string answer;
  if (sub == "describe") {
    int rc = Send(*target, "GET", "/v1/topics/" + UrlEncode(parsed->Get("topic")), "", 200,
                  &answer, err);
    if (rc != kExitOk) return rc;
    if (parsed->Has("json")) {
      out << answer << "\n";
    } else {
      Render(answer, out);
    }
    return kExitOk;
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("name");
  w.String(parsed->Get("topic").c_str());
  struct NumFlag {
    const char* flag;
    const char* key;
  };
  for (const NumFlag& f : {NumFlag{"partitions", "partitions"},
                           NumFlag{"retention-ms", "retention_ms"},
                           NumFlag{"retention-bytes", "retention_bytes"},
                           NumFlag{"flush-ms", "flush_ms"},
                           NumFlag{"flush-bytes", "flush_bytes"}}) {
    if (!parsed->Has(f.flag)) continue;
    int64_t v = 0;
    if (!ParseSigned(parsed->Get(f.flag), &v)) {
      return Fail(err, std::string("--") + f.flag + " must be an integer", kExitUsage);
    }
    w.Key(f.key);
    w.Int64(v);
  }
  if (parsed->Has("flush")) {
    w.Key("flush");
    w.String(parsed->Get("flush").c_str());
  }
  w.EndObject();
  int rc = Send(*target, "POST", "/v1/topics", std::string(sb.GetString(), sb.GetSize()), 201,
                &answer, err);
  if (rc != kExitOk) return rc;
  out << "created topic " << parsed->Get("topic") << "\n";
  Render(answer, out);
  return kExitOk;
}

}  // namespace sluice::cli
