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

#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/http.h"
#include "core/http_target.h"
#include "core/logging.h"
#include "core/thread_name.h"

namespace sluice {
namespace {

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

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Close() = 0;  // from any thread: posts to the session's strand
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

int DefaultMaxConnections() {
  rlimit rl{};
  int64_t soft = 1024;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    soft = static_cast<int64_t>(rl.rlim_cur);
  }
  return static_cast<int>(std::clamp<int64_t>(soft / 2, 16, 10000));
}

bhttp::response<bhttp::string_body> ToBeast(HttpResponse resp, bool keep_alive) {
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

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(std::shared_ptr<ServerCore> core, std::string peer, Args&&... args)
      : core_(std::move(core)), peer_(std::move(peer)), stream_(std::forward<Args>(args)...) {}

  ~Session() override {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->sessions.erase(this);
  }

  void Start() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls) {
        self->Lowest().expires_after(Ms(self->core_->options.header_timeout_ms));
        self->stream_.async_handshake(net::ssl::stream_base::server,
                                      [self](beast::error_code ec) { self->OnHandshake(ec); });
      } else {
        self->WaitRequest();
      }
    });
  }

  void Close() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->Shut(); });
  }

  // Posts the answer to the strand; dropped once the server stopped.
  void Answer(HttpResponse resp) {
    answer_posted_.store(true);
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->stopped) {
      return;
    }
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), r = std::move(resp)]() mutable {
                self->Write(std::move(r), self->keep_alive_);
              });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  static std::chrono::milliseconds Ms(int64_t ms) { return std::chrono::milliseconds(ms); }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      core_->log.Log(LogLevel::kInfo, kComponent, "tls",
                     "TLS handshake with " + peer_ + " failed: " + ec.message());
      return Shut();
    }
    if constexpr (kTls) {
      principal_ = PeerPrincipal(stream_.native_handle());
    }
    WaitRequest();
  }

  // Waits for a request's first bytes up to the idle timeout (the header timeout on a new
  // connection), then gives the whole header the header timeout.
  void WaitRequest() {
    if (buffer_.size() > 0) {
      return ReadHeader();
    }
    const int64_t wait = first_ ? core_->options.header_timeout_ms : core_->options.idle_timeout_ms;
    Lowest().expires_after(Ms(wait));
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](
                                                        beast::error_code ec, size_t n) {
      if (ec) {
        return self->Shut();
      }
      self->buffer_.commit(n);
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    first_ = false;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::clamp<int64_t>(core_->options.max_header_bytes, 256, UINT32_MAX)));
    parser_->body_limit(static_cast<uint64_t>(std::max<int64_t>(0, core_->options.max_body_bytes)));
    Lowest().expires_after(Ms(core_->options.header_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) {
      return OnReadError(ec);
    }
    const auto& msg = parser_->get();
    const int64_t fields = std::distance(msg.begin(), msg.end());
    if (fields > core_->options.max_header_fields) {
      return Refuse(431, "header_too_large",
                    std::to_string(fields) + " header fields, more than the limit of " +
                        std::to_string(core_->options.max_header_fields));
    }
    if (bhttp::token_list{msg[bhttp::field::expect]}.exists("100-continue")) {
      // curl and others wait for this before sending a large body.
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      Lowest().expires_after(Ms(core_->options.body_timeout_ms));
      return bhttp::async_write(stream_, *cont,
                                [self = this->shared_from_this(), cont](beast::error_code ec2,
                                                                        size_t) {
                                  if (ec2) {
                                    return self->Shut();
                                  }
                                  self->ReadBody();
                                });
    }
    ReadBody();
  }

  void ReadBody() {
    Lowest().expires_after(Ms(core_->options.body_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) {
                          return self->OnReadError(ec);
                        }
                        self->OnRequest();
                      });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return Refuse(413, "too_large",
                    "body exceeds the limit of " +
                        std::to_string(core_->options.max_body_bytes) + " bytes");
    }
    if (ec == bhttp::error::header_limit) {
      return Refuse(431, "header_too_large",
                    "request line and header fields exceed the limit of " +
                        std::to_string(core_->options.max_header_bytes) + " bytes");
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      return Refuse(400, "bad_request", "malformed HTTP request: " + ec.message());
    }
    Shut();  // the peer went away, a timeout, or a TLS failure: nobody to answer
  }

  void OnRequest() {
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    HttpRequest r;
    r.method = std::string(msg.method_string().data(), msg.method_string().size());
    const auto raw_target = msg.target();
    Status target = ParseRequestTarget(std::string_view(raw_target.data(), raw_target.size()),
                                       &r.path, &r.query);
    if (!target.ok()) {
      return Refuse(400, "bad_request", target.message());
    }
    for (const auto& f : msg) {
      std::string name(f.name_string().data(), f.name_string().size());
      for (char& c : name) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      r.headers.emplace(std::move(name),
                        std::string(f.value().data(), f.value().size()));  // the first counts
    }
    r.body = std::move(msg.body());
    r.tls_principal = principal_;
    r.peer_address = peer_;
    Dispatch(std::move(r));
  }

  void Dispatch(HttpRequest&& r) {
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (core_->closed) {
        keep_alive_ = false;
        Write(HttpResponse::Error(503, "shutting_down", "the server is stopping"), false);
        return;
      }
      ++core_->running;
    }
    // No timeout while the handler holds the request (a long-poll may park it for 30 s); the
    // write that answers it sets one again.
    Lowest().expires_never();
    std::shared_ptr<Session> self = this->shared_from_this();
    HttpResponder responder([self](HttpResponse resp) { self->Answer(std::move(resp)); });
    answered_ = false;
    answer_posted_.store(false);
    pending_ = responder;
    try {
      core_->handler(std::move(r), responder);
    } catch (const std::exception& e) {
      LogError(kComponent, std::string("handler threw: ") + e.what());
      responder(HttpResponse::Error(500, "internal", e.what()));
    }
    {
      std::lock_guard<std::mutex> lock(core_->mu);
      if (--core_->running == 0) {
        core_->idle.notify_all();
      }
    }
    if (!answer_posted_.load()) {
      Watch();  // held for later (long-poll, a commit): notice a client that goes away
    }
  }

  // While a handler holds the request, reads on, so that a client that goes away is noticed
  // (HttpResponder::ClientGone: a parked long-poll frees its slot at once, not at its deadline).
  // Bytes that arrive meanwhile (a pipelined request) are kept for the next ReadHeader. At most
  // one read is ever outstanding: once the answer is written the connection waits for this read
  // instead of starting another (resume_).
  void Watch() {
    if (answered_ || watching_ || closing_) {
      return;
    }
    watching_ = true;
    // Bounds the hold (a handler that never answers) and, through WaitIdle, the idle time after
    // the answer; the read's own timer is set here because a pending read keeps it.
    Lowest().expires_after(Ms(core_->options.body_timeout_ms + core_->options.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](
                                                       beast::error_code ec, size_t n) {
      self->watching_ = false;
      if (self->idle_timer_) {
        self->idle_timer_->cancel();
      }
      if (ec) {
        if (!self->answered_ && self->pending_) {
          self->pending_->ClientGone();
        }
        if (!self->writing_) {
          self->Shut();
        } else {
          self->shut_after_write_ = true;
        }
        return;
      }
      self->buffer_.commit(n);
      if (self->resume_) {
        self->resume_ = false;
        self->ReadHeader();
      }
    });
  }

  // Answers a request the server refuses before any handler sees it, then closes.
  void Refuse(int status, const std::string& code, const std::string& reason) {
    core_->log.Log(LogLevel::kWarn, kComponent, code,
                   "refused a request from " + peer_ + " (" + std::to_string(status) + "): " +
                       reason);
    keep_alive_ = false;
    linger_ = true;
    Write(HttpResponse::Error(status, code, reason), false);
  }

  // Discards what the client still sends (bounded: kLingerMs, kLingerBytes), then closes.
  void Linger() {
    if constexpr (!kTls) {
      beast::error_code ignored;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);  // the client sees EOF
    }
    Lowest().expires_after(Ms(kLingerMs));
    DiscardSome();
  }

  void DiscardSome() {
    auto scratch = std::make_shared<std::array<char, 16384>>();
    stream_.async_read_some(net::buffer(*scratch), [self = this->shared_from_this(), scratch](
                                                       beast::error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ >= kLingerBytes) {
        return self->Shut();
      }
      self->DiscardSome();
    });
  }

  void Write(HttpResponse resp, bool keep_alive) {
    if (closing_) {
      return;
    }
    answered_ = true;
    pending_.reset();
    writing_ = true;
    auto out = std::make_shared<bhttp::response<bhttp::string_body>>(
        ToBeast(std::move(resp), keep_alive));
    Lowest().expires_after(Ms(core_->options.body_timeout_ms));
    bhttp::async_write(stream_, *out,
                       [self = this->shared_from_this(), out, keep_alive](beast::error_code ec,
                                                                          size_t) {
                         self->writing_ = false;
                         if (self->shut_after_write_) {
                           return self->Shut();
                         }
                         if (!ec && keep_alive && self->watching_) {
                           self->resume_ = true;  // the watch read continues the connection
                           return self->WaitIdle();
                         }
                         if (!ec && !keep_alive && self->linger_) {
                           return self->Linger();
                         }
                         if (ec || !keep_alive) {
                           return self->Shut();
                         }
                         self->WaitRequest();
                       });
  }

  // The answer is out and the watch read (Watch) still waits: close the connection if no
  // request starts within the idle timeout.
  void WaitIdle() {
    if (!idle_timer_) {
      idle_timer_.emplace(stream_.get_executor());
    }
    idle_timer_->expires_after(Ms(core_->options.idle_timeout_ms));
    idle_timer_->async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec && self->resume_) {
        self->Shut();  // the pending watch read then ends with an error
      }
    });
  }

  void Shut() {
    if (closing_) {
      return;
    }
    if (idle_timer_) {
      idle_timer_->cancel();
    }
    closing_ = true;
    pending_.reset();  // its function holds this session: no cycle outlives the connection
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  std::shared_ptr<ServerCore> core_;  // first: outlives the stream
  const std::string peer_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string principal_;
  bool first_ = true;
  bool keep_alive_ = true;
  bool closing_ = false;
  bool linger_ = false;  // the request was refused unread: Linger() before closing
  // Client-gone detection while a handler holds the request (Watch): all on the strand.
  std::optional<HttpResponder> pending_;  // the unanswered request's responder
  bool answered_ = true;
  std::atomic<bool> answer_posted_{false};  // set by Answer, from any thread
  bool watching_ = false;
  bool writing_ = false;
  bool resume_ = false;
  bool shut_after_write_ = false;
  std::optional<net::steady_timer> idle_timer_;
  size_t lingered_ = 0;
};

class BeastServer final : public HttpServer {
 public:
  explicit BeastServer(std::shared_ptr<ServerCore> core)
      : core_(std::move(core)),
        acceptor_(net::make_strand(core_->ioc)),
        retry_(acceptor_.get_executor()),
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
    });
    std::vector<std::shared_ptr<SessionBase>> open;
    {
      std::unique_lock<std::mutex> lock(core_->mu);
      if (!core_->idle.wait_for(lock, std::chrono::seconds(30),
                                [&] { return core_->running == 0; })) {
        LogError(kComponent, "stop: " + std::to_string(core_->running) +
                                 " handler call(s) still running after 30 s");
      }
      core_->stopped = true;
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

  void Register(const std::shared_ptr<SessionBase>& s) {
    std::lock_guard<std::mutex> lock(core_->mu);
    core_->sessions.emplace(s.get(), s);
  }

  std::shared_ptr<ServerCore> core_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
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
