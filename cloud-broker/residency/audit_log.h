// AuditLog: the durable record of every residency refusal of a broker's region (issue 13):
// time, who sent it (the authenticated principal, e.g. the client certificate's subject, and the
// gateway id the records name), country, topic, records, reason and the request id. A refusal is
// answered 451 only once its entry is on disk (written and fdatasync'd, group-committed across
// concurrent refusals); if the entry cannot be written the produce is answered 503 instead, so
// no refusal goes unrecorded. `GET /v1/audit` and `sluice audit` read it.
//
// On disk: <dir>/refusals.jsonl, one JSON object per line, appended. A line torn by a crash is
// cut at the next Open (it was never acknowledged). Bounded: past `max_bytes` Append refuses
// (kResourceExhausted: 503, counted) rather than dropping old entries; an operator archives the
// file and restarts the broker (config: audit.max_bytes).
// Thread-safety: thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::broker {

struct AuditEntry {
  int64_t time_ms = 0;
  std::string region;
  std::string principal;   // who the broker authenticated ("anonymous" without auth)
  std::string gateway_id;  // the `gateway_id` header of the refused record ("" if none)
  std::string country;     // the refused record's country ("" if it had none)
  std::string topic;
  uint64_t records = 0;    // records in the refused batch (none of them stored)
  std::string reason;
  std::string request_id;
};

// One entry as the JSON object the log stores (one line of it, without the newline) and GET
// /v1/audit answers; each string field cut to AuditLog::kMaxFieldBytes.
std::string AuditEntryJson(const AuditEntry& e);

struct AuditQuery {
  std::optional<int64_t> from_ms;  // time_ms >= from
  std::optional<int64_t> to_ms;    // time_ms < to
  std::optional<std::string> country;
  size_t limit = 1000;
  // Resume here: a previous page's next offset (the byte offset of a line start), else -1.
  int64_t start_offset = -1;
};

class AuditLog {
 public:
  static constexpr size_t kMaxFieldBytes = 512;  // longer fields are cut (a client sends them)

  // Opens (creating) <dir>/refusals.jsonl; cuts a torn last line. kIOError.
  static Result<std::unique_ptr<AuditLog>> Open(const std::string& dir, int64_t max_bytes);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Returns once the entry is durable. kResourceExhausted past max_bytes; kIOError if it
  // cannot be written (then every later Append fails too: the file's end is unknown).
  Status Append(const AuditEntry& entry);

  // The entries matching `q`, oldest first, at most q.limit; *more tells whether others
  // matching follow, and *next_offset (if given) where the first of them starts (pass it as
  // start_offset for the next page; -1 without more). Without start_offset and with from_ms
  // the read starts near from_ms, found by a binary search over the file's lines (entries are
  // appended in time order; kSeekSlackMs of earlier entries are read too, for a clock that
  // stepped back), and with to_ms it stops at the first entry kSeekSlackMs past it, so a page of
  // an hour does not read the whole log. *scanned_bytes (if
  // given) gets how many bytes of lines were read. kInvalidArgument for a start_offset that is
  // not a line start of the log; kIOError/kCorruption (a malformed line other than a torn last
  // one).
  Result<std::vector<AuditEntry>> Read(const AuditQuery& q, bool* more,
                                       int64_t* next_offset = nullptr,
                                       int64_t* scanned_bytes = nullptr) const;
  static constexpr int64_t kSeekSlackMs = 60'000;

  uint64_t entries_appended() const;

 private:
  AuditLog(std::string path, int fd, int64_t size, int64_t max_bytes)
      : path_(std::move(path)), fd_(fd), size_(size), max_bytes_(max_bytes) {}

  const std::string path_;
  const int fd_;
  mutable std::mutex mu_;
  std::condition_variable durable_cv_;
  int64_t size_;  // bytes in the file (written ones)
  const int64_t max_bytes_;
  std::string pending_;        // lines waiting for the next group commit
  uint64_t next_ticket_ = 0;   // given to each Append
  uint64_t durable_ = 0;       // tickets below this are on disk
  bool writing_ = false;       // a leader is writing and syncing
  Status broken_ = Status::Ok();
  uint64_t appended_ = 0;
};

}  // namespace sluice::broker
