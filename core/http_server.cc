// HttpServer (core/http.h) on Boost.Beast: HTTP/1.1 with keep-alive, optionally over TLS.
//
// Why not cpprestsdk's listener: it reads a chunked body whole before any size check, buffers
// header lines of any length, never closes idle or trickling connections, spins at the file
// descriptor limit, and cannot hand a handler the client's certificate. Here every byte and
// second a client controls is bounded before the handler runs (see HttpServerOptions).
//
// Threads: `threads` run one io_context. Each connection is a Session whose socket lives on its
// own strand, so its reads, writes and the handler call never run at once; the handler is called
// on that strand, and an HttpResponder called later from any thread posts the answer back to it.
// Lifetime: a Session holds the ServerCore (io_context, TLS context) by shared_ptr, so a
// responder kept past Stop() never touches a destroyed io_context; after Stop() answers are
// dropped.
#include <sys/resource.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>

#include "core/http.h"
#include "core/http_session.h"
#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice {
namespace {

using namespace http_internal;  // NOLINT: this file is the session's only user

int DefaultMaxConnections() {
  rlimit rl{};
  int64_t soft = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    soft = static_cast<int64_t>(rl.rlim_cur);
  }
  return static_cast<int>(std::clamp<int64_t>(soft / 2, 16, 10000));
}

class BeastServer final : public HttpServer {
 public:
  explicit BeastServer(std::shared_ptr<ServerCore> core)
      : core_(std::move(core)),
        acceptor_(net::make_strand(core_->ioc)),
        retry_(acceptor_.get_executor()),
        sweep_(acceptor_.get_executor()),
        work_(net::make_work_guard(core_->ioc)) {}
  ~BeastServer() override { Stop(); }

  Status Open() {
    try {
      const net::ip::address addr = net::ip::make_address(core_->options.host == "localhost"
                                                              ? "127.0.0.1"
                                                              : core_->options.host);
      const tcp::endpoint ep(addr, static_cast<unsigned short>(core_->options.port));
      acceptor_.open(ep.protocol());
      acceptor_.set_option(net::socket_base::reuse_address(true));
      acceptor_.bind(ep);
      acceptor_.listen(net::socket_base::max_listen_connections);
      port_ = acceptor_.local_endpoint().port();
    } catch (const std::exception& e) {
      return Status::Unavailable("cannot listen on " + core_->options.host + ":" +
                                 std::to_string(core_->options.port) + ": " + e.what());
    }
    Accept();
    Sweep();
    const int n = core_->options.threads > 0 ? core_->options.threads : DefaultHttpThreads();
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([core = core_, i] {
        SetCurrentThreadName("http-" + std::to_string(i));
        core->ioc.run();
      });
    }
    open_ = true;
    return Status::Ok();
  }

  // Stops accepting, waits (up to 30 s) for handler calls in progress to return, closes every
  // connection and joins the I/O threads. The caller may then destroy what the handler uses.
  void Stop() override {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (!open_) {
      return;
    }
    open_ = false;
    {
      std::unique_lock<std::mutex> lock(core_->mu);
      core_->closed = true;
    }
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      retry_.cancel();
      sweep_.cancel();
    });
    std::vector<std::shared_ptr<SessionBase>> open;
    {
      std::unique_lock<std::mutex> lock(core_->mu);
      if (!core_->idle.wait_for(lock, std::chrono::seconds(30),
                                [&] { return core_->running == 0; })) {
        LogError(kComponent, "stop: " + std::to_string(core_->running) +
                                 " handler call(s) still running after 30 s");
      }
      for (auto& [raw, weak] : core_->sessions) {
        if (auto s = weak.lock()) {
          open.push_back(std::move(s));
        }
      }
    }
    for (auto& s : open) {
      s->Close();
    }
    open.clear();
    {
      // From here nothing more is posted (Answer, Close, stream operations check it): what was
      // posted before runs before the I/O threads return.
      std::lock_guard<std::mutex> lock(core_->mu);
      core_->stopped = true;
    }
    work_.reset();
    for (std::thread& t : threads_) {
      t.join();
    }
    threads_.clear();
    // What the handler captured (and responders it kept, which hold sessions, which hold the
    // core) must not keep the core alive: no handler is called after this.
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->handler = nullptr;
  }

  int port() const override { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept(net::make_strand(core_->ioc),
                           [this](beast::error_code ec, tcp::socket socket) {
                             OnAccept(ec, std::move(socket));
                           });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
      return;
    }
    if (ec) {
      // EMFILE/ENFILE: the connection stays in the backlog; retry after a pause instead of
      // spinning on an accept that cannot succeed.
      core_->log.Log(LogLevel::kWarn, kComponent, "accept",
                     "accept failed: " + ec.message() + "; retrying in " +
                         std::to_string(kAcceptRetryMs) + " ms");
      retry_.expires_after(std::chrono::milliseconds(kAcceptRetryMs));
      retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) {
          Accept();
        }
      });
      return;
    }
    std::string peer;
    beast::error_code pe;
    const tcp::endpoint remote = socket.remote_endpoint(pe);
    if (!pe) {
      peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    }
    bool over = false;
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      over = static_cast<int>(core_->sessions.size()) >= core_->max_connections;
    }
    if (over) {
      core_->log.Log(LogLevel::kWarn, kComponent, "max_connections",
                     "closed a connection from " + peer + ": " +
                         std::to_string(core_->max_connections) +
                         " connections are open (http.max_connections)");
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      if (core_->tls) {
        auto s = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
            core_, peer, std::move(socket), *core_->tls);
        Register(s);
        s->Start();
      } else {
        auto s = std::make_shared<Session<beast::tcp_stream>>(core_, peer, std::move(socket));
        Register(s);
        s->Start();
      }
    }
    Accept();
  }

  // Every SweepMs(): closes the sessions past their deadline (http_session.h, "Connection
  // deadlines"). A deadline is met within one sweep interval.
  void Sweep() {
    sweep_.expires_after(std::chrono::milliseconds(SweepMs()));
    sweep_.async_wait([this](beast::error_code ec) {
      if (ec || !acceptor_.is_open()) {
        return;
      }
      const int64_t now = SteadyNowNs();
      std::vector<std::shared_ptr<SessionBase>> expired;
      {
        std::lock_guard<std::mutex> lock(core_->mu);
        for (auto& [raw, weak] : core_->sessions) {
          if (auto s = weak.lock(); s != nullptr && s->Expired(now)) {
            expired.push_back(std::move(s));
          }
        }
      }
      for (auto& s : expired) {
        s->Close();
      }
      expired.clear();  // outside the lock: a session's destructor takes it
      Sweep();
    });
  }

  // A quarter of the shortest timeout, within 5..250 ms.
  int64_t SweepMs() const {
    const HttpServerOptions& o = core_->options;
    const int64_t shortest = std::min({o.header_timeout_ms, o.body_timeout_ms, o.idle_timeout_ms,
                                       static_cast<int64_t>(kLingerMs)});
    return std::clamp<int64_t>(shortest / 4, 5, 250);
  }

  void Register(const std::shared_ptr<SessionBase>& s) {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->sessions.emplace(s.get(), s);
  }

  std::shared_ptr<ServerCore> core_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  net::steady_timer sweep_;  // on the acceptor's strand
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;
  bool open_ = false;
  int port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandler handler) {
  Status tls = CheckServerTls(options.tls);
  if (!tls.ok()) {
    return tls;
  }
  auto core = std::make_shared<ServerCore>();
  core->options = options;
  core->handler = std::move(handler);
  core->max_connections =
      options.max_connections > 0 ? options.max_connections : DefaultMaxConnections();
  if (options.tls.enabled()) {
    try {
      core->tls.emplace(net::ssl::context::tls_server);
      ConfigureServerTls(options.tls, *core->tls);
    } catch (const std::exception& e) {
      return Status::InvalidArgument(std::string("TLS server files: ") + e.what());
    }
  }
  auto server = std::make_unique<BeastServer>(std::move(core));
  Status st = server->Open();
  if (!st.ok()) {
    return st;
  }
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace sluice
