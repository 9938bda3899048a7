// ConsumeSession: the state and steps of one `sluice consume` run (consume.h): broker calls,
// start-offset resolution, fetch-and-print, and the consumer-group protocol (consume_group.cc).
// Internal to cli/. Thread-safety: not thread-safe.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "core/http.h"

namespace sluice::cli {

struct ConsumeOptions {
  std::string topic;
  int64_t partition = -1;
  std::string group;
  std::string from = "beginning";  // "beginning" | "end" | "offset" | "time"
  int64_t from_value = 0;
  int64_t max = INT64_MAX;
  int64_t wait_ms = 0;
  int64_t idle_ms = 0;
  int64_t batch = 500;
  int64_t session_timeout_ms = 10000;
  std::string strategy = "range";
};

class ConsumeSession {
 public:
  ConsumeSession(const ConsumeOptions& o, const std::string& url, const TlsClientOptions& tls,
                 std::ostream& out, std::ostream& err)
      : o_(o), url_(url), client_(url, ClientOptions(o, tls)), out_(out), err_(err) {}

  int RunPartition();
  int RunGroup();

 private:
  static HttpClientOptions ClientOptions(const ConsumeOptions& o, const TlsClientOptions& tls) {
    HttpClientOptions c;
    c.timeout_ms = o.wait_ms + 15000;
    c.tls = tls;
    return c;
  }
  // Sends the request; false (after printing why) on a transport error.
  bool Call(const std::string& method, const std::string& path, const std::string& body,
            HttpResponse* r);
  int Fail(const std::string& path, const HttpResponse& r);
  // The --from choice for a partition without a committed offset.
  bool InitialOffset(int32_t p, int64_t* offset);
  // One fetch; prints its records. *n records printed; false on an error (exit 1).
  bool FetchAndPrint(int32_t p, int64_t* position, int64_t wait_ms, int64_t* n);
  // Joins (or re-joins) the group and loads the assigned partitions' start positions.
  bool Join();
  bool LoadPositions();
  // Commit/Heartbeat: false on an error (exit 1); *rejoin when the broker says to re-join.
  bool Commit(int32_t p, int64_t offset, bool* rejoin);
  bool Heartbeat(bool* rejoin);
  std::string Partitions() const { return "/v1/topics/" + UrlEncode(o_.topic) + "/partitions/"; }
  std::string GroupPath() const { return "/v1/groups/" + UrlEncode(o_.group); }

  const ConsumeOptions o_;
  const std::string url_;
  HttpClient client_;
  std::ostream& out_;
  std::ostream& err_;
  int64_t printed_ = 0;
  // Group state.
  std::string member_id_;
  int64_t generation_ = 0;
  std::vector<int32_t> assignment_;
  std::map<int32_t, int64_t> positions_;
};

}  // namespace sluice::cli
