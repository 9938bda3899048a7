// A raw TCP connection to 127.0.0.1 for tests that must send what no HTTP client would (huge
// header lines, trickled bytes, endless chunked bodies) and watch how the server answers.
// Thread-safety: one thread per RawConn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sluice::testing {

class RawConn {
 public:
  explicit RawConn(int port);
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool ok() const { return ok_; }

  // Sends all of s unless the peer closes or stops reading for 2 s; returns the bytes the kernel
  // took.
  size_t Send(const std::string& s);
  // Reads until the peer closes or `timeout_ms` passes; *closed tells which.
  std::string ReadAll(int64_t timeout_ms, bool* closed);
  // Reads one answer (up to its body's declared Content-Length) within timeout_ms.
  std::string ReadResponse(int64_t timeout_ms);

 private:
  // Waits up to wait_ms for bytes and appends them: 1 read some, 0 none yet, -1 peer closed.
  int RecvSome(std::string* out, int64_t wait_ms);

  int fd_ = -1;
  bool ok_ = false;
};

}  // namespace sluice::testing
