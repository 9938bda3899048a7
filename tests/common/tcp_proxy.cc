#include "tests/common/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace sluice::testing {
namespace {

int ConnectTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Copies what is readable on `from` to `to`; false at EOF or on an error.
bool Pump(int from, int to) {
  char buf[16384];
  const ssize_t n = ::read(from, buf, sizeof(buf));
  if (n <= 0) {
    return false;
  }
  for (ssize_t done = 0; done < n;) {
    const ssize_t w = ::send(to, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
    if (w <= 0) {
      return false;
    }
    done += w;
  }
  return true;
}

}  // namespace

std::unique_ptr<TcpProxy> TcpProxy::Start(int target_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return nullptr;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return nullptr;
  }
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(fd, ntohs(addr.sin_port), target_port));
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->Accept(); });
  return proxy;
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  Cut();
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  std::vector<std::thread> relays;
  {
    std::lock_guard<std::mutex> lock(mu_);
    relays.swap(relays_);
  }
  for (std::thread& t : relays) {
    t.join();
  }
  ::close(listen_fd_);
}

void TcpProxy::Cut() {
  cut_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : open_) {
    ::shutdown(fd, SHUT_RDWR);  // the relay thread wakes, closes both ends and exits
  }
}

void TcpProxy::Heal() { cut_ = false; }

void TcpProxy::Track(int fd, bool add) {
  std::lock_guard<std::mutex> lock(mu_);
  if (add) {
    open_.insert(fd);
  } else {
    open_.erase(fd);
  }
}

void TcpProxy::Accept() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      continue;
    }
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      continue;
    }
    const int upstream = cut_ || stop_ ? -1 : ConnectTo(target_port_);
    if (upstream < 0) {
      ::close(client);  // cut (or the target is down): the connection is refused
      continue;
    }
    Track(client, true);
    Track(upstream, true);
    std::lock_guard<std::mutex> lock(mu_);
    relays_.emplace_back([this, client, upstream] { Relay(client, upstream); });
  }
}

void TcpProxy::Relay(int client, int upstream) {
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  while (!stop_ && !cut_) {
    if (::poll(fds, 2, 100) <= 0) {
      continue;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !Pump(client, upstream)) {
      break;
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !Pump(upstream, client)) {
      break;
    }
  }
  Track(client, false);
  Track(upstream, false);
  ::close(client);
  ::close(upstream);
}

}  // namespace sluice::testing
