#include "cli/consume_session.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <thread>

#include "cli/commands.h"
#include "cli/render.h"

namespace sluice::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kEmptyPollPauseMs = 100;  // when the broker answers an empty fetch at once
constexpr int64_t kMaxWaitMs = 30000;       // the broker's wait_ms limit (docs/API.md)

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

}  // namespace

bool ConsumeSession::Call(const std::string& method, const std::string& path,
                          const std::string& body, HttpResponse* r) {
  for (size_t tried = 0;; ++tried) {
    Result<HttpResponse> res = client_->Send(method, path, body);
    if (res.ok()) {
      *r = std::move(res).value();
      return true;
    }
    err_ << "sluice: cannot reach " << url_ << ": " << res.status().message() << "\n";
    if (tried + 1 >= urls_.size()) {
      return false;
    }
    // Another broker of the region serves the same reads (up to its high watermark).
    auto it = std::find(urls_.begin(), urls_.end(), url_);
    url_ = (it == urls_.end() || std::next(it) == urls_.end()) ? urls_.front() : *std::next(it);
    client_ = std::make_unique<HttpClient>(url_, client_options_);
    err_ << "sluice: reading from " << url_ << " instead\n";
  }
}

int ConsumeSession::Fail(const std::string& path, const HttpResponse& r) {
  err_ << "sluice: " << url_ << path << " answered HTTP " << r.status << ": "
       << Truncate(r.body, 300) << "\n";
  return kExitFailed;
}

bool ConsumeSession::InitialOffset(int32_t p, int64_t* offset) {
  if (o_.from == "offset") {
    *offset = o_.from_value;
    return true;
  }
  HttpResponse r;
  rapidjson::Document d;
  if (o_.from == "time") {
    const std::string path =
        Partitions() + std::to_string(p) + "/offset?timestamp=" + std::to_string(o_.from_value);
    if (!Call("GET", path, "", &r)) return false;
    d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str());
    if (r.status != 200 || d.HasParseError() || !d.IsObject() || !d.HasMember("offset") ||
        !d["offset"].IsInt64()) {
      Fail(path, r);
      return false;
    }
    *offset = d["offset"].GetInt64();
    return true;
  }
  if (!Call("GET", "/v1/topics", "", &r)) return false;
  d.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str());
  if (r.status == 200 && !d.HasParseError() && d.IsObject() && d.HasMember("topics") &&
      d["topics"].IsArray()) {
    for (const auto& t : d["topics"].GetArray()) {
      if (!t.IsObject() || !t.HasMember("name") || !t["name"].IsString() ||
          o_.topic != t["name"].GetString() || !t.HasMember("partitions")) {
        continue;
      }
      for (const auto& part : t["partitions"].GetArray()) {
        if (part.IsObject() && part.HasMember("partition") && part["partition"].IsInt() &&
            part["partition"].GetInt() == p) {
          const char* key = o_.from == "end" ? "end_offset" : "start_offset";
          if (part.HasMember(key) && part[key].IsInt64()) {
            *offset = part[key].GetInt64();
            return true;
          }
        }
      }
    }
  }
  err_ << "sluice: " << url_ << " has no partition " << o_.topic << "-" << p << "\n";
  return false;
}

bool ConsumeSession::FetchAndPrint(int32_t p, int64_t* position, int64_t wait_ms, int64_t* n) {
  *n = 0;
  const int64_t want = std::min(o_.batch, o_.max - printed_);
  std::string path = Partitions() + std::to_string(p) +
                     "/records?offset=" + std::to_string(*position) +
                     "&max_records=" + std::to_string(want);
  if (wait_ms > 0) path += "&wait_ms=" + std::to_string(std::min(wait_ms, kMaxWaitMs));
  HttpResponse r;
  if (!Call("GET", path, "", &r)) return false;
  if (r.status == 416) {
    rapidjson::Document range;
    range.Parse<rapidjson::kParseIterativeFlag>(r.body.c_str());
    if (urls_.size() > 1 && !range.HasParseError() && range.IsObject() &&
        range.HasMember("end_offset") && range["end_offset"].IsInt64() &&
        *position > range["end_offset"].GetInt64()) {
      // A replicated region, ahead of this broker: a replica whose high watermark lags the one
      // read before (another broker, or this one after a restart). Nothing to print yet; never
      // skip or re-read because of it (Kafka's OFFSET_NOT_AVAILABLE, KIP-392).
      return true;
    }
    // The position fell out of the log (retention): restart at the --from choice.
    int64_t reset = 0;
    if (!InitialOffset(p, &reset)) return false;
    err_ << "sluice: offset " << *position << " of " << o_.topic << "-" << p
         << " is out of range; continuing at " << reset << "\n";
    if (reset == *position) return true;
    *position = reset;
    return true;
  }
  if (r.status != 200) {
    Fail(path, r);
    return false;
  }
  Result<FetchPage> page = ParseFetchPage(r.body);
  if (!page.ok()) {
    err_ << "sluice: " << page.status().message() << "\n";
    return false;
  }
  for (const std::string& rec : page->records) out_ << rec << "\n";
  out_.flush();  // printed before any commit of these offsets
  *n = static_cast<int64_t>(page->records.size());
  printed_ += *n;
  if (page->next_offset > *position) *position = page->next_offset;
  return true;
}

int ConsumeSession::RunPartition() {
  int64_t position = 0;
  if (!InitialOffset(static_cast<int32_t>(o_.partition), &position)) return kExitFailed;
  auto last_record = Clock::now();
  while (printed_ < o_.max) {
    int64_t n = 0;
    if (!FetchAndPrint(static_cast<int32_t>(o_.partition), &position, o_.wait_ms, &n)) {
      return kExitFailed;
    }
    if (n > 0) {
      last_record = Clock::now();
      continue;
    }
    const int64_t idle = MsSince(last_record);
    if (idle >= o_.idle_ms) break;
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min(kEmptyPollPauseMs, o_.idle_ms - idle)));
  }
  return kExitOk;
}

}  // namespace sluice::cli
