#include "cloud-broker/residency/audit_log.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace sluice::broker {
namespace {

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

std::string Cut(const std::string& s) {
  return s.size() <= AuditLog::kMaxFieldBytes ? s : s.substr(0, AuditLog::kMaxFieldBytes);
}

}  // namespace

std::string AuditEntryJson(const AuditEntry& e) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&](const char* key, const std::string& v) {
    w.Key(key);
    const std::string cut = Cut(v);
    w.String(cut.data(), static_cast<rapidjson::SizeType>(cut.size()));
  };
  w.StartObject();
  w.Key("time_ms");
  w.Int64(e.time_ms);
  str("region", e.region);
  str("principal", e.principal);
  str("gateway_id", e.gateway_id);
  str("country", e.country);
  str("topic", e.topic);
  w.Key("records");
  w.Uint64(e.records);
  str("reason", e.reason);
  str("request_id", e.request_id);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

namespace {

bool Parse(const std::string& line, AuditEntry* e) {
  rapidjson::Document d;
  d.Parse(line.c_str(), line.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  auto str = [&](const char* key, std::string* out) {
    const auto it = d.FindMember(key);
    if (it == d.MemberEnd() || !it->value.IsString()) return false;
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return true;
  };
  const auto t = d.FindMember("time_ms");
  const auto n = d.FindMember("records");
  if (t == d.MemberEnd() || !t->value.IsInt64() || n == d.MemberEnd() || !n->value.IsUint64()) {
    return false;
  }
  e->time_ms = t->value.GetInt64();
  e->records = n->value.GetUint64();
  return str("region", &e->region) && str("principal", &e->principal) &&
         str("gateway_id", &e->gateway_id) && str("country", &e->country) &&
         str("topic", &e->topic) && str("reason", &e->reason) &&
         str("request_id", &e->request_id);
}

}  // namespace

Result<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& dir, int64_t max_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::IOError("cannot create " + dir + ": " + ec.message());
  }
  const std::string path = dir + "/refusals.jsonl";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Errno("cannot open " + path);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    Status s = Errno("cannot stat " + path);
    ::close(fd);
    return s;
  }
  // Cut a torn last line (a crash between write and fdatasync: never acknowledged).
  int64_t size = st.st_size;
  int64_t keep = size;
  char c = '\n';
  while (keep > 0 && pread(fd, &c, 1, keep - 1) == 1 && c != '\n') {
    --keep;
  }
  if (keep != size) {
    if (ftruncate(fd, keep) != 0 || fdatasync(fd) != 0) {
      Status s = Errno("cannot cut the torn tail of " + path);
      ::close(fd);
      return s;
    }
    size = keep;
  }
  // The directory entry of a new file is durable too.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd, size, max_bytes));
}

AuditLog::~AuditLog() { ::close(fd_); }

Status AuditLog::Append(const AuditEntry& entry) {
  const std::string line = AuditEntryJson(entry) + "\n";
  std::unique_lock<std::mutex> lock(mu_);
  if (!broken_.ok()) {
    return broken_;
  }
  if (size_ + static_cast<int64_t>(pending_.size() + line.size()) > max_bytes_) {
    return Status::ResourceExhausted("the audit log " + path_ + " is full (audit.max_bytes = " +
                                     std::to_string(max_bytes_) +
                                     "): archive it and restart the broker");
  }
  pending_ += line;
  const uint64_t ticket = next_ticket_++;
  // Group commit: the first waiter writes and syncs everything pending; the others wait.
  while (durable_ <= ticket && broken_.ok()) {
    if (writing_) {
      durable_cv_.wait(lock);
      continue;
    }
    writing_ = true;
    std::string batch;
    batch.swap(pending_);
    const uint64_t upto = next_ticket_;
    const int64_t at = size_;
    lock.unlock();
    Status written = Status::Ok();
    for (size_t done = 0; done < batch.size() && written.ok();) {
      const ssize_t n = pwrite(fd_, batch.data() + done, batch.size() - done,
                               at + static_cast<int64_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        written = Errno("cannot write the audit log " + path_);
      } else {
        done += static_cast<size_t>(n);
      }
    }
    if (written.ok() && fdatasync(fd_) != 0) {
      written = Errno("cannot sync the audit log " + path_);
    }
    lock.lock();
    writing_ = false;
    if (written.ok()) {
      size_ += static_cast<int64_t>(batch.size());
      durable_ = upto;
    } else {
      broken_ = written;
    }
    durable_cv_.notify_all();
  }
  if (!broken_.ok()) {
    return broken_;
  }
  ++appended_;
  return Status::Ok();
}

namespace {

// The offset of the first line starting at or after `pos` (the file's size if none), reading
// from `in`; *time_ms gets that line's time (or -1 if it has none or cannot be parsed).
int64_t NextLineStart(std::ifstream& in, int64_t pos, int64_t size, int64_t* time_ms) {
  *time_ms = -1;
  in.clear();
  int64_t at = pos;
  if (pos > 0) {
    in.seekg(pos - 1);
    std::string skip;
    std::getline(in, skip);  // the rest of the line `pos - 1` is in (its '\n' included)
    at = pos - 1 + static_cast<int64_t>(skip.size()) + 1;
  } else {
    in.seekg(0);
  }
  if (at >= size) {
    return size;
  }
  std::string line;
  if (std::getline(in, line)) {
    const size_t key = line.find("\"time_ms\":");
    if (key != std::string::npos) {
      *time_ms = std::strtoll(line.c_str() + key + 10, nullptr, 10);
    }
  }
  return at;
}

}  // namespace

Result<std::vector<AuditEntry>> AuditLog::Read(const AuditQuery& q, bool* more,
                                               int64_t* next_offset,
                                               int64_t* scanned_bytes) const {
  int64_t size;
  {
    std::lock_guard<std::mutex> lock(mu_);
    size = size_;  // durable, whole lines only
  }
  *more = false;
  if (next_offset != nullptr) *next_offset = -1;
  std::vector<AuditEntry> out;
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    return Errno("cannot read " + path_);
  }
  int64_t start = 0;
  if (q.start_offset >= 0) {
    if (q.start_offset > size) {
      return Status::InvalidArgument("cursor " + std::to_string(q.start_offset) +
                                     " is past the end of the audit log");
    }
    if (q.start_offset > 0) {
      in.seekg(q.start_offset - 1);
      if (in.get() != '\n') {
        return Status::InvalidArgument("cursor " + std::to_string(q.start_offset) +
                                       " is not the start of an entry");
      }
    }
    start = q.start_offset;
  } else if (q.from_ms.has_value()) {
    // Binary search for a line start whose time is before from - slack: lo always is one (or 0).
    const int64_t target = *q.from_ms - kSeekSlackMs;
    int64_t lo = 0;
    int64_t hi = size;
    while (hi - lo > 4096) {
      const int64_t mid = lo + (hi - lo) / 2;
      int64_t t = -1;
      const int64_t line = NextLineStart(in, mid, size, &t);
      if (line >= hi || t < 0) {
        hi = mid;
      } else if (t < target) {
        lo = line;
      } else {
        hi = mid;
      }
    }
    start = lo;
  }
  in.clear();
  in.seekg(start);
  std::string line;
  int64_t read = start;
  while (read < size && std::getline(in, line)) {
    const int64_t at = read;
    read += static_cast<int64_t>(line.size()) + 1;
    AuditEntry e;
    if (!Parse(line, &e)) {
      return Status::Corruption("malformed audit entry at byte " + std::to_string(at) + " of " +
                                path_);
    }
    if (q.to_ms && e.time_ms >= *q.to_ms + kSeekSlackMs) {
      break;  // appended in time order: nothing later can be before `to` (within the slack)
    }
    if ((q.from_ms && e.time_ms < *q.from_ms) || (q.to_ms && e.time_ms >= *q.to_ms) ||
        (q.country && e.country != *q.country)) {
      continue;
    }
    if (out.size() == q.limit) {
      *more = true;
      if (next_offset != nullptr) *next_offset = at;
      read = at;
      break;
    }
    out.push_back(std::move(e));
  }
  if (scanned_bytes != nullptr) *scanned_bytes = read - start;
  return out;
}

uint64_t AuditLog::entries_appended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return appended_;
}

}  // namespace sluice::broker
