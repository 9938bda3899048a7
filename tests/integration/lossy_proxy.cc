#include "tests/integration/lossy_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace sluice::testing {
namespace {

int CountStatusLines(const char* data, size_t n) {
  static const std::string kMark = "HTTP/1.1 ";
  std::string s(data, n);
  int count = 0;
  for (size_t at = s.find(kMark); at != std::string::npos; at = s.find(kMark, at + 1)) {
    ++count;
  }
  return count;
}

bool SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) {
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::unique_ptr<LossyProxy> LossyProxy::Start(int listen_port, int upstream_port,
                                              int drop_every_n) {
  std::unique_ptr<LossyProxy> p(new LossyProxy());
  p->port_ = listen_port;
  p->upstream_port_ = upstream_port;
  p->drop_every_n_ = drop_every_n;
  p->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(p->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(listen_port));
  if (::bind(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(p->listen_fd_, 64) != 0) {
    ::close(p->listen_fd_);
    return nullptr;
  }
  p->accept_thread_ = std::thread([raw = p.get()] { raw->AcceptLoop(); });
  return p;
}

LossyProxy::~LossyProxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  if (accept_thread_.joinable()) {
    accept_thread_.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (std::thread& t : relays_) {
    t.join();
  }
}

void LossyProxy::AcceptLoop() {
  while (!stop_) {
    pollfd pf{listen_fd_, POLLIN, 0};
    if (::poll(&pf, 1, 100) <= 0) {
      continue;
    }
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      continue;
    }
    int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(upstream_port_));
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(upstream);
      ::close(client);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    relays_.emplace_back([this, client, upstream] { Relay(client, upstream); });
  }
}

void LossyProxy::Relay(int client, int upstream) {
  char buf[64 * 1024];
  while (!stop_) {
    pollfd pf[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    if (::poll(pf, 2, 100) <= 0) {
      continue;
    }
    if (pf[0].revents != 0) {
      ssize_t n = ::recv(client, buf, sizeof(buf), 0);
      if (n <= 0 || !SendAll(upstream, buf, static_cast<size_t>(n))) {
        break;
      }
    }
    if (pf[1].revents != 0) {
      ssize_t n = ::recv(upstream, buf, sizeof(buf), 0);
      if (n <= 0) {
        break;
      }
      bool drop = false;
      for (int i = CountStatusLines(buf, static_cast<size_t>(n)); i > 0; --i) {
        int k = ++responses_;
        if (drop_every_n_ > 0 && k % drop_every_n_ == 0) {
          drop = true;
        }
      }
      if (drop) {
        ++dropped_;
        break;  // the server processed the request; the client never hears the answer
      }
      if (!SendAll(client, buf, static_cast<size_t>(n))) {
        break;
      }
    }
  }
  ::close(client);
  ::close(upstream);
}

}  // namespace sluice::testing
