// TcpProxy: a TCP relay on 127.0.0.1 in front of one port, that a test can cut and heal, to
// partition two real processes from each other (Jepsen's network faults, on loopback): point
// one process at the proxy's port (e.g. a broker's etcd endpoint) instead of the target's.
// Cut() closes every relayed connection and refuses new ones (accepted and closed at once)
// until Heal(). One thread accepts; each connection has one thread relaying both ways.
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace sluice::testing {

class TcpProxy {
 public:
  // Listens on a free port of 127.0.0.1; nullptr if it cannot.
  static std::unique_ptr<TcpProxy> Start(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  void Cut();
  void Heal();

 private:
  TcpProxy(int listen_fd, int port, int target_port)
      : listen_fd_(listen_fd), port_(port), target_port_(target_port) {}
  void Accept();
  void Relay(int client, int upstream);
  void Track(int fd, bool add);

  const int listen_fd_;
  const int port_;
  const int target_port_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::mutex mu_;
  std::set<int> open_;  // relayed sockets, shut down by Cut
  std::vector<std::thread> relays_;
  std::thread acceptor_;
};

}  // namespace sluice::testing
