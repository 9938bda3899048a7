// A minimal HTTP/1.1 GET over a POSIX socket for tests (HttpGet, WaitHttpOk): one request per
// connection ("Connection: close"), Content-Length, chunked or read-to-EOF bodies. It does not
// depend on the code under test (core/http.h), so a harness failure is not a product failure.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <string>

#include "tests/common/test_env.h"

namespace sluice::testing {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Waits for `events` on fd until deadline; false on timeout or error.
bool PollUntil(int fd, short events, int64_t deadline_ms) {
  while (true) {
    int64_t left = deadline_ms - NowMs();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r > 0) {
      return true;
    }
    if (r < 0 && errno != EINTR) {
      return false;
    }
  }
}

std::string Lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

// Decodes a chunked body; false if it is malformed or incomplete.
bool Dechunk(const std::string& in, std::string* out) {
  size_t pos = 0;
  out->clear();
  while (true) {
    size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) {
      return false;
    }
    size_t size = 0;
    try {
      size = std::stoul(in.substr(pos, eol - pos), nullptr, 16);
    } catch (...) {
      return false;
    }
    pos = eol + 2;
    if (size == 0) {
      return true;
    }
    if (pos + size > in.size()) {
      return false;
    }
    out->append(in, pos, size);
    pos += size + 2;  // chunk data + CRLF
  }
}

}  // namespace

int HttpGet(int port, const std::string& path_and_query, std::string* body, int64_t timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (r != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  if (r != 0) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (!PollUntil(fd, POLLOUT, deadline) ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ::close(fd);
      return -1;
    }
  }
  const std::string request = "GET " + path_and_query + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                              std::to_string(port) + "\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    if (!PollUntil(fd, POLLOUT, deadline)) {
      ::close(fd);
      return -1;
    }
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      ::close(fd);
      return -1;
    }
    if (n > 0) {
      sent += static_cast<size_t>(n);
    }
  }
  // Read until EOF, or until the Content-Length / final chunk has arrived.
  std::string resp;
  char buf[65536];
  int status = -1;
  size_t header_end = std::string::npos;
  int64_t content_length = -1;
  bool chunked = false;
  while (true) {
    if (header_end == std::string::npos) {
      header_end = resp.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string head = Lower(resp.substr(0, header_end));
        if (head.rfind("http/1.", 0) != 0 || head.size() < 12) {
          ::close(fd);
          return -1;
        }
        status = std::atoi(head.c_str() + 9);
        size_t cl = head.find("\r\ncontent-length:");
        if (cl != std::string::npos) {
          content_length = std::atoll(head.c_str() + cl + 17);
        }
        chunked = head.find("transfer-encoding: chunked") != std::string::npos;
      }
    }
    if (header_end != std::string::npos) {
      const size_t body_start = header_end + 4;
      if (!chunked && content_length >= 0 &&
          resp.size() >= body_start + static_cast<size_t>(content_length)) {
        break;
      }
      std::string ignored;
      if (chunked && resp.size() >= body_start + 5 &&
          resp.compare(resp.size() - 5, 5, "0\r\n\r\n") == 0 &&
          Dechunk(resp.substr(body_start), &ignored)) {
        break;
      }
    }
    if (!PollUntil(fd, POLLIN, deadline)) {
      ::close(fd);
      return -1;
    }
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) {
      break;  // EOF
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        continue;
      }
      ::close(fd);
      return -1;
    }
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (header_end == std::string::npos) {
    return -1;
  }
  std::string raw = resp.substr(header_end + 4);
  if (chunked) {
    std::string decoded;
    if (!Dechunk(raw, &decoded)) {
      return -1;
    }
    raw = std::move(decoded);
  } else if (content_length >= 0) {
    raw.resize(static_cast<size_t>(content_length));
  }
  if (body != nullptr) {
    *body = std::move(raw);
  }
  return status;
}

bool WaitHttpOk(int port, const std::string& path, int64_t timeout_ms) {
  return WaitFor([&] { return HttpGet(port, path, nullptr, 2000) == 200; }, timeout_ms, 50);
}

}  // namespace sluice::testing
