// The consumer-group half of ConsumeSession (consume_session.h): join, positions from committed
// offsets, heartbeat, commit-after-print, re-join on rebalance, leave.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <thread>

#include "cli/commands.h"
#include "cli/consume_session.h"
#include "cli/render.h"

namespace sluice::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kEmptyPollPauseMs = 100;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// "rebalance_in_progress", "illegal_generation", ... from an error answer; "" if none.
std::string ErrorCode(const HttpResponse& r) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("error") || !d["error"].IsString()) {
    return "";
  }
  return d["error"].GetString();
}

// `s` as a quoted, escaped JSON string.
std::string JsonStr(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return sb.GetString();
}

}  // namespace

bool ConsumeSession::FindCoordinator() {
  HttpClientOptions quick = client_options_;
  quick.timeout_ms = 3000;
  for (const std::string& url : urls_) {
    HttpClient c(url, quick);
    Result<HttpResponse> r = c.Send("GET", GroupPath() + "/coordinator", "");
    if (!r.ok() || r->status != 200) {
      continue;
    }
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(r->body.c_str());
    if (d.HasParseError() || !d.IsObject()) {
      continue;
    }
    const bool local = d.HasMember("local") && d["local"].IsBool() && d["local"].GetBool();
    std::string found = d.HasMember("url") && d["url"].IsString() ? d["url"].GetString() : "";
    if (local || found.empty()) {
      found = url;  // this broker (a single-broker region may not advertise a URL)
    }
    if (found != coordinator_url_) {
      err_ << "sluice: group " << o_.group << " is coordinated by " << found << "\n";
    }
    coordinator_url_ = found;
    coordinator_ = std::make_unique<HttpClient>(found, client_options_);
    return true;
  }
  return false;
}

bool ConsumeSession::GroupCall(const std::string& method, const std::string& path,
                               const std::string& body, HttpResponse* r) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(kCoordinatorWaitMs);
  std::string last = "no broker named a coordinator";
  while (Clock::now() < deadline) {
    if (!coordinator_ && !FindCoordinator()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    Result<HttpResponse> res = coordinator_->Send(method, path, body);
    if (!res.ok()) {
      last = coordinator_url_ + ": " + res.status().message();
    } else if (res->status == 421 ||
               (res->status == 503 && ErrorCode(*res) == "coordinator_not_available")) {
      last = coordinator_url_ + " answered HTTP " + std::to_string(res->status) + ": " +
             Truncate(res->body, 200);
    } else {
      *r = std::move(res).value();
      return true;
    }
    coordinator_.reset();  // the group moved (or its coordinator is down): find it again
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  err_ << "sluice: no coordinator for group " << o_.group << " answered: " << last << "\n";
  return false;
}

bool ConsumeSession::Join() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    if (!member_id_.empty()) {
      w.Key("member_id");
      w.String(member_id_.c_str(), static_cast<rapidjson::SizeType>(member_id_.size()));
    }
    w.Key("topics");
    w.StartArray();
    w.String(o_.topic.c_str(), static_cast<rapidjson::SizeType>(o_.topic.size()));
    w.EndArray();
    w.Key("strategy");
    w.String(o_.strategy.c_str());
    w.Key("session_timeout_ms");
    w.Int64(o_.session_timeout_ms);
    w.EndObject();
    HttpResponse r;
    const std::string path = GroupPath() + "/join";
    if (!GroupCall("POST", path, sb.GetString(), &r)) return false;
    if (r.status == 404 && ErrorCode(r) == "unknown_member_id" && !member_id_.empty()) {
      member_id_.clear();  // forgotten by the broker (restart, expiry): join as a new member
      continue;
    }
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str());
    if (r.status != 200 || d.HasParseError() || !d.IsObject() || !d.HasMember("member_id") ||
        !d["member_id"].IsString() || !d.HasMember("generation") || !d["generation"].IsInt64() ||
        !d.HasMember("assignment") || !d["assignment"].IsArray()) {
      Fail(path, r);
      return false;
    }
    member_id_ = d["member_id"].GetString();
    generation_ = d["generation"].GetInt64();
    assignment_.clear();
    for (const auto& tp : d["assignment"].GetArray()) {
      if (tp.IsObject() && tp.HasMember("topic") && tp["topic"].IsString() &&
          o_.topic == tp["topic"].GetString() && tp.HasMember("partition") &&
          tp["partition"].IsInt()) {
        assignment_.push_back(tp["partition"].GetInt());
      }
    }
    std::string parts;
    for (int32_t p : assignment_) parts += (parts.empty() ? "" : ",") + std::to_string(p);
    err_ << "sluice: joined group " << o_.group << " as " << member_id_ << " generation "
         << generation_ << ", partitions [" << parts << "]\n";
    return LoadPositions();
  }
  err_ << "sluice: could not join group " << o_.group << "\n";
  return false;
}

bool ConsumeSession::LoadPositions() {
  const std::string path = GroupPath() + "/offsets?topic=" + UrlEncode(o_.topic);
  HttpResponse r;
  if (!GroupCall("GET", path, "", &r)) return false;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str());
  if (r.status != 200 || d.HasParseError() || !d.IsObject() || !d.HasMember("offsets") ||
      !d["offsets"].IsArray()) {
    Fail(path, r);
    return false;
  }
  std::map<int32_t, int64_t> committed;
  for (const auto& c : d["offsets"].GetArray()) {
    if (c.IsObject() && c.HasMember("partition") && c["partition"].IsInt() &&
        c.HasMember("offset") && c["offset"].IsInt64()) {
      committed[c["partition"].GetInt()] = c["offset"].GetInt64();
    }
  }
  positions_.clear();
  for (int32_t p : assignment_) {
    auto it = committed.find(p);
    if (it != committed.end()) {
      positions_[p] = it->second;
    } else if (!InitialOffset(p, &positions_[p])) {
      return false;
    }
  }
  return true;
}

bool ConsumeSession::Commit(int32_t p, int64_t offset, bool* rejoin) {
  const std::string body =
      "{\"member_id\":" + JsonStr(member_id_) + ",\"generation\":" + std::to_string(generation_) +
      ",\"offsets\":[{\"topic\":" + JsonStr(o_.topic) + ",\"partition\":" + std::to_string(p) +
      ",\"offset\":" + std::to_string(offset) + "}]}";
  HttpResponse r;
  const std::string path = GroupPath() + "/commit";
  if (!GroupCall("POST", path, body, &r)) return false;
  if (r.status == 200) return true;
  if (r.status == 409 || r.status == 404) {
    err_ << "sluice: commit refused (" << ErrorCode(r) << "); re-joining\n";
    *rejoin = true;
    return true;
  }
  Fail(path, r);
  return false;
}

bool ConsumeSession::Heartbeat(bool* rejoin) {
  const std::string body = "{\"member_id\":" + JsonStr(member_id_) +
                           ",\"generation\":" + std::to_string(generation_) + "}";
  HttpResponse r;
  const std::string path = GroupPath() + "/heartbeat";
  if (!GroupCall("POST", path, body, &r)) return false;
  if (r.status == 200) return true;
  if (r.status == 409 || r.status == 404) {
    *rejoin = true;
    return true;
  }
  Fail(path, r);
  return false;
}

int ConsumeSession::RunGroup() {
  if (!Join()) return kExitFailed;
  const int64_t hb_interval_ms = std::max<int64_t>(1, o_.session_timeout_ms / 3);
  auto last_hb = Clock::now();
  auto last_record = Clock::now();
  bool got_last_round = true;
  while (printed_ < o_.max) {
    bool rejoin = false;
    int64_t round = 0;
    for (int32_t p : std::vector<int32_t>(assignment_)) {
      if (MsSince(last_hb) >= hb_interval_ms) {
        if (!Heartbeat(&rejoin)) return kExitFailed;
        last_hb = Clock::now();
        if (rejoin) break;
      }
      // Long-poll only when caught up, and never past the next heartbeat.
      const int64_t wait = got_last_round ? 0
                                          : std::min(o_.wait_ms, hb_interval_ms) /
                                                static_cast<int64_t>(assignment_.size());
      int64_t n = 0;
      if (!FetchAndPrint(p, &positions_[p], wait, &n)) return kExitFailed;
      if (n > 0 && !Commit(p, positions_[p], &rejoin)) return kExitFailed;
      round += n;
      if (rejoin || printed_ >= o_.max) break;
    }
    if (!rejoin && MsSince(last_hb) >= hb_interval_ms) {
      if (!Heartbeat(&rejoin)) return kExitFailed;
      last_hb = Clock::now();
    }
    if (rejoin) {
      if (!Join()) return kExitFailed;
      continue;
    }
    got_last_round = round > 0;
    if (round > 0) {
      last_record = Clock::now();
      continue;
    }
    const int64_t idle = MsSince(last_record);
    if (idle >= o_.idle_ms) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::min({kEmptyPollPauseMs, o_.idle_ms - idle, hb_interval_ms})));
  }
  HttpResponse r;
  if (GroupCall("POST", GroupPath() + "/leave", "{\"member_id\":" + JsonStr(member_id_) + "}",
                &r) &&
      r.status != 200) {
    err_ << "sluice: leave answered HTTP " << r.status << "\n";
  }
  return kExitOk;
}

}  // namespace sluice::cli
