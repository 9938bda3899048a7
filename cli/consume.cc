#include "cli/consume.h"

#include <cctype>

#include "cli/broker_target.h"
#include "cli/commands.h"
#include "cli/consume_session.h"
#include "core/time_util.h"

namespace sluice::cli {
namespace {

bool ParseNonNeg(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  *v = std::stoll(s);
  return true;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "sluice: " << message << "\n";
  return kExitUsage;
}

}  // namespace

std::vector<CliFlag> ConsumeFlags() {
  return {
      {"topic", true, "topic to read (required)"},
      {"partition", true, "read this one partition"},
      {"group", true, "read as a member of this consumer group (commits its offsets)"},
      {"from-offset", true, "start at this offset (a group: where it has no committed offset)"},
      {"from-time", true, "start at the first record at or after this time (epoch ms or RFC 3339)"},
      {"from", true, "start at the 'beginning' (default) or 'end' of the partition"},
      {"max", true, "stop after printing this many records"},
      {"wait-ms", true, "long-poll: how long a caught-up fetch waits for records (default 0)"},
      {"idle-ms", true, "stop when no record arrived for this long (default 0: when caught up)"},
      {"batch", true, "records per fetch at most (default 500)"},
      {"session-timeout-ms", true, "group session timeout (default 10000)"},
      {"strategy", true, "group assignor: 'range' (default) or 'roundrobin'"},
  };
}

std::string ConsumeUsage() {
  return "sluice consume (--broker URL | --config FILE --region NAME) --topic T\n"
         "       (--partition P | --group G) [--from-offset O | --from-time T | --from "
         "beginning|end]\n"
         "       [--max N] [--wait-ms W] [--idle-ms I]\n\n"
         "Prints records as JSON lines. With --group, joins the consumer group, reads its "
         "assigned\n"
         "partitions from the committed offsets and commits after printing (at-least-once).";
}

int RunConsume(const CliArgs& args, std::ostream& out, std::ostream& err) {
  ConsumeOptions o;
  o.topic = args.Get("topic");
  if (o.topic.empty()) return Usage(err, "consume needs --topic");
  if (args.Has("partition") == args.Has("group")) {
    return Usage(err, "consume needs exactly one of --partition P or --group G");
  }
  if (args.Has("partition") && !ParseNonNeg(args.Get("partition"), &o.partition)) {
    return Usage(err, "--partition must be an integer >= 0");
  }
  o.group = args.Get("group");
  if (args.Has("group") && o.group.empty()) return Usage(err, "--group must not be empty");
  const int starts = (args.Has("from-offset") ? 1 : 0) + (args.Has("from-time") ? 1 : 0) +
                     (args.Has("from") ? 1 : 0);
  if (starts > 1) return Usage(err, "give at most one of --from-offset, --from-time, --from");
  if (args.Has("from-offset")) {
    o.from = "offset";
    if (!ParseNonNeg(args.Get("from-offset"), &o.from_value)) {
      return Usage(err, "--from-offset must be an integer >= 0");
    }
  }
  if (args.Has("from-time")) {
    o.from = "time";
    const std::string t = args.Get("from-time");
    if (!ParseNonNeg(t, &o.from_value) && !ParseRfc3339Ms(t, &o.from_value)) {
      return Usage(err, "--from-time must be epoch ms or RFC 3339, got '" + t + "'");
    }
  }
  if (args.Has("from")) {
    o.from = args.Get("from");
    if (o.from != "beginning" && o.from != "end") {
      return Usage(err, "--from must be 'beginning' or 'end'");
    }
  }
  struct IntFlag {
    const char* name;
    int64_t* value;
    int64_t min;
  };
  for (const IntFlag& f : {IntFlag{"max", &o.max, 1}, IntFlag{"wait-ms", &o.wait_ms, 0},
                           IntFlag{"idle-ms", &o.idle_ms, 0}, IntFlag{"batch", &o.batch, 1},
                           IntFlag{"session-timeout-ms", &o.session_timeout_ms, 1}}) {
    if (args.Has(f.name) && (!ParseNonNeg(args.Get(f.name), f.value) || *f.value < f.min)) {
      return Usage(err,
                   std::string("--") + f.name + " must be an integer >= " + std::to_string(f.min));
    }
  }
  if (args.Has("strategy")) {
    o.strategy = args.Get("strategy");
    if (o.strategy != "range" && o.strategy != "roundrobin") {
      return Usage(err, "--strategy must be 'range' or 'roundrobin'");
    }
  }
  auto target = ResolveBroker(args);
  if (!target.ok()) return Usage(err, target.status().message());
  ConsumeSession session(o, target->url, target->urls, target->tls, out, err);
  return o.group.empty() ? session.RunPartition() : session.RunGroup();
}

}  // namespace sluice::cli
