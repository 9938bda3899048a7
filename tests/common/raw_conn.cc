#include "tests/common/raw_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace sluice::testing {

RawConn::RawConn(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

RawConn::~RawConn() { close(fd_); }

size_t RawConn::Send(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    pollfd p{fd_, POLLOUT, 0};
    if (poll(&p, 1, 2000) <= 0) {
      break;  // the server stopped reading
    }
    const ssize_t n = send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    off += static_cast<size_t>(n);
  }
  return off;
}

int RawConn::RecvSome(std::string* out, int64_t wait_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(wait_ms)) <= 0) {
    return 0;
  }
  char buf[65536];
  const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) {
    return -1;
  }
  out->append(buf, static_cast<size_t>(n));
  return 1;
}

std::string RawConn::ReadAll(int64_t timeout_ms, bool* closed) {
  std::string out;
  *closed = false;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!*closed && std::chrono::steady_clock::now() < end) {
    *closed = RecvSome(&out, 50) < 0;
  }
  return out;
}

std::string RawConn::ReadResponse(int64_t timeout_ms) {
  std::string out;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    const size_t hdr = out.find("\r\n\r\n");
    if (hdr != std::string::npos) {
      const size_t cl = out.find("Content-Length: ");
      const size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
      if (out.size() >= hdr + 4 + len) {
        return out;
      }
    }
    if (RecvSome(&out, 50) < 0) {
      break;
    }
  }
  return out;
}

}  // namespace sluice::testing
