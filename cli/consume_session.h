// ConsumeSession: the state and steps of one `sluice consume` run (consume.h): broker calls,
// start-offset resolution, fetch-and-print, and the consumer-group protocol (consume_group.cc).
// Internal to cli/. Thread-safety: not thread-safe.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
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
  // `urls`: every broker of the region (a replicated one has several; any serves reads), `url`
  // (one of them) first.
  ConsumeSession(const ConsumeOptions& o, const std::string& url,
                 const std::vector<std::string>& urls, const TlsClientOptions& tls,
                 std::ostream& out, std::ostream& err)
      : o_(o),
        url_(url),
        urls_(urls.empty() ? std::vector<std::string>{url} : urls),
        client_options_(ClientOptions(o, tls)),
        client_(std::make_unique<HttpClient>(url, client_options_)),
        out_(out),
        err_(err) {}

  int RunPartition();
  int RunGroup();

 private:
  static HttpClientOptions ClientOptions(const ConsumeOptions& o, const TlsClientOptions& tls) {
    HttpClientOptions c;
    c.timeout_ms = o.wait_ms + 15000;
    c.tls = tls;
    return c;
  }
  // Sends the request; on a transport error tries the region's other brokers in turn; false
  // (after printing why) when none answers.
  bool Call(const std::string& method, const std::string& path, const std::string& body,
            HttpResponse* r);
  // A consumer-group request, sent to the group's coordinator: found with GET
  // /v1/groups/{g}/coordinator on any broker, and found again when it answers 421
  // not_coordinator, 503 coordinator_not_available or not at all (a failover), for up to
  // kCoordinatorWaitMs. The new coordinator does not know this member: the caller re-joins on
  // its unknown_member_id, and the committed offsets are where the old one left them.
  bool GroupCall(const std::string& method, const std::string& path, const std::string& body,
                 HttpResponse* r);
  bool FindCoordinator();
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

  static constexpr int64_t kCoordinatorWaitMs = 30000;

  const ConsumeOptions o_;
  std::string url_;  // the broker reads go to
  const std::vector<std::string> urls_;
  const HttpClientOptions client_options_;
  std::unique_ptr<HttpClient> client_;
  std::string coordinator_url_;
  std::unique_ptr<HttpClient> coordinator_;
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
