// What HttpServer's connections (core/http_session.h) share with their server
// (core/http_server.cc): the ServerCore (options, handler, io_context, TLS context, the open
// sessions), SessionBase with its deadline, and the limits of a connection. Internal to core
// (it includes Boost.Beast).
// Thread-safety: ServerCore's mutable fields under its `mu`; a deadline is an atomic.
#pragma once

#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/http.h"
#include "core/logging.h"

namespace sluice::http_internal {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

constexpr const char* kComponent = "http";
constexpr int64_t kAcceptRetryMs = 100;  // back-off after EMFILE/ENFILE at accept
// After refusing a request whose body was not read, the server reads and discards what the client
// is still sending for at most this long and this much before closing (nginx's lingering close):
// closing with unread bytes makes the kernel send a reset, and a client still writing its body
// would see "connection reset" instead of the 413. Bounded, so it costs no memory and little time.
constexpr int64_t kLingerMs = 1000;
constexpr size_t kLingerBytes = 4 << 20;

// Connection deadlines: each session keeps one deadline (steady-clock nanoseconds) for what it
// waits for now (the TLS handshake, a request's first bytes, its header, its body, writing the
// answer, the lingering close), and the server's sweeper (http_server.cc) closes every session
// whose deadline passed. Why not Beast's per-operation stream timers: each read and write armed
// a timer and cancelled it again, an extra completion and a timer-queue update per operation, a
// cost of every request on the front door's hot path.
inline int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline constexpr int64_t kNoDeadline = INT64_MAX;

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Close() = 0;  // from any thread: posts to the session's strand
  // Past its deadline at `now_ns` (the sweeper then closes it).
  bool Expired(int64_t now_ns) const {
    return deadline_ns_.load(std::memory_order_relaxed) < now_ns;
  }

 protected:
  void Deadline(int64_t ms) {
    deadline_ns_.store(SteadyNowNs() + ms * 1'000'000, std::memory_order_relaxed);
  }
  void NoDeadline() { deadline_ns_.store(kNoDeadline, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> deadline_ns_{kNoDeadline};
};

// What sessions share with the server; outlives the server while a responder holds a session.
struct ServerCore {
  HttpServerOptions options;
  HttpHandler handler;
  int max_connections = 0;
  net::io_context ioc;
  std::optional<net::ssl::context> tls;

  std::mutex mu;
  std::condition_variable idle;
  int running = 0;       // handler calls in progress
  bool closed = false;   // Stop() began: no new handler calls
  bool stopped = false;  // the I/O threads are gone: answers are dropped
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  RateLimitedLog log{5000};
};

inline bhttp::response<bhttp::string_body> ToBeast(HttpResponse resp, bool keep_alive) {
  bhttp::response<bhttp::string_body> out;
  out.version(11);
  out.result(static_cast<unsigned>(resp.status));
  out.set(bhttp::field::content_type, resp.content_type);
  for (auto& [k, v] : resp.headers) {
    out.insert(k, v);
  }
  out.keep_alive(keep_alive);
  out.body() = std::move(resp.body);
  out.prepare_payload();
  return out;
}

}  // namespace sluice::http_internal
