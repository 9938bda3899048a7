// LossyProxy: a TCP proxy for tests that loses acknowledgements. It forwards every request to
// the upstream server, but drops every n-th HTTP response it sees coming back (counted by the
// "HTTP/1.1 " status lines) by closing both connections instead of forwarding it. The client
// then sees a transport error for a request the server has fully processed: a lost ack.
// Threads: one accept thread and one relay thread per connection.
// Thread-safety: the accessors are thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::testing {

class LossyProxy {
 public:
  // Listens on 127.0.0.1:listen_port; nullptr if the port cannot be bound. drop_every_n == 0
  // drops nothing.
  static std::unique_ptr<LossyProxy> Start(int listen_port, int upstream_port, int drop_every_n);
  ~LossyProxy();

  int port() const { return port_; }
  int responses() const { return responses_.load(); }
  int dropped() const { return dropped_.load(); }

 private:
  LossyProxy() = default;
  void AcceptLoop();
  void Relay(int client, int upstream);

  int port_ = 0;
  int upstream_port_ = 0;
  int drop_every_n_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> responses_{0};
  std::atomic<int> dropped_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<std::thread> relays_;
};

}  // namespace sluice::testing
