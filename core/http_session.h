// One HTTP/1.1 connection of HttpServer (core/http_server.cc), and what connections share with
// their server. Internal to core: included by core/http_server.cc only, never by callers (it
// includes Boost.Beast).
//
// A Session owns its socket (plain or TLS) on its own strand: reads, writes and the handler call
// never run at once. It bounds what the client controls (header size, field count, body size,
// the time each takes, idle time), refuses over the limits with a lingering close, dispatches a
// complete request to the handler, and answers through an HttpResponder that may be called
// from any thread. While a handler holds a request it reads on, to notice a client that leaves.
// Thread-safety: a Session runs on its strand; Answer and Close may be called from any thread.
#pragma once


#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/http.h"
#include "core/http_stream_writer.h"
#include "core/http_target.h"
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
    // Held for later (a long-poll) with a hook for a client that goes away: watch the connection.
    responder.OnWatchWanted([self] {
      net::post(self->stream_.get_executor(), [self] { self->Watch(); });
    });
    responder.SetStreamer([self](HttpResponse head) -> std::unique_ptr<HttpStreamWriter> {
      return std::make_unique<SessionStreamWriter<Session>>(self, std::move(head));
    });
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
  }

  // While a handler holds the request, reads on, so that a client that goes away is noticed
  // (HttpResponder::ClientGone: a parked long-poll frees its slot at once, not at its deadline).
  // Bytes that arrive meanwhile (a pipelined request) are kept for the next ReadHeader. At most
  // one read is ever outstanding: once the answer is written the connection waits for this read
  // instead of starting another (resume_).
  void Watch() {
    if (!pending_ || watching_ || closing_) {  // answered, or nothing held
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
        if (self->pending_) {  // still unanswered
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
    pending_.reset();
    writing_ = true;
    auto out = std::make_shared<bhttp::response<bhttp::string_body>>(
        ToBeast(std::move(resp), keep_alive));
    Lowest().expires_after(Ms(core_->options.body_timeout_ms));
    bhttp::async_write(stream_, *out,
                       [self = this->shared_from_this(), out, keep_alive](beast::error_code ec,
                                                                          size_t) {
                         self->AfterAnswer(ec, keep_alive);
                       });
  }

  // An answer is written (or failed): the connection goes on with its next request, or closes.
  void AfterAnswer(beast::error_code ec, bool keep_alive) {
    writing_ = false;
    if (shut_after_write_) {
      return Shut();
    }
    if (!ec && keep_alive && watching_) {
      resume_ = true;  // the watch read continues the connection
      return WaitIdle();
    }
    if (!ec && !keep_alive && linger_) {
      return Linger();
    }
    if (ec || !keep_alive) {
      return Shut();
    }
    WaitRequest();
  }

  // A streamed answer (HttpResponder::Stream, core/http_stream_writer.h): each operation runs
  // on the strand, posted by the writer, which waits for it.
  template <class>
  friend class SessionStreamWriter;

  bool ServerStopped() {
    std::lock_guard<std::mutex> lock(core_->mu);
    return core_->stopped;
  }

  // Posts one operation of a streamed answer; false once the server stopped.
  bool PostStreamOp(std::optional<HttpResponse> head, std::string chunk, bool last,
                    std::shared_ptr<std::promise<bool>> done) {
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->stopped) {
      return false;
    }
    net::post(stream_.get_executor(), [self = this->shared_from_this(), head = std::move(head),
                                       chunk = std::move(chunk), last, done]() mutable {
      if (self->closing_) {
        done->set_value(false);
        return;
      }
      self->Lowest().expires_after(Ms(self->core_->options.body_timeout_ms));
      if (head.has_value()) {
        self->StartStream(std::move(*head), std::move(chunk), last, std::move(done));
      } else {
        self->WriteChunk(std::move(chunk), last, std::move(done));
      }
    });
    return true;
  }

  void StartStream(HttpResponse head, std::string chunk, bool last,
                   std::shared_ptr<std::promise<bool>> done) {
    pending_.reset();
    writing_ = true;
    auto msg = std::make_shared<bhttp::response<bhttp::empty_body>>();
    msg->version(11);
    msg->result(static_cast<unsigned>(head.status));
    msg->set(bhttp::field::content_type, head.content_type);
    for (auto& [k, v] : head.headers) {
      msg->insert(k, v);
    }
    msg->keep_alive(keep_alive_);
    msg->chunked(true);
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*msg);
    bhttp::async_write_header(
        stream_, *sr,
        [self = this->shared_from_this(), msg, sr, chunk = std::move(chunk), last,
         done = std::move(done)](beast::error_code ec, size_t) mutable {
          if (ec) {
            return self->StreamFailed(ec, done);
          }
          self->WriteChunk(std::move(chunk), last, std::move(done));
        });
  }

  void WriteChunk(std::string chunk, bool last, std::shared_ptr<std::promise<bool>> done) {
    if (chunk.empty()) {
      if (last) {
        return WriteLastChunk(std::move(done));
      }
      done->set_value(true);
      return;
    }
    auto data = std::make_shared<std::string>(std::move(chunk));
    net::async_write(stream_, bhttp::make_chunk(net::buffer(*data)),
                     [self = this->shared_from_this(), data, last, done = std::move(done)](
                         beast::error_code ec, size_t) mutable {
                       if (ec) {
                         return self->StreamFailed(ec, done);
                       }
                       if (last) {
                         return self->WriteLastChunk(std::move(done));
                       }
                       done->set_value(true);
                     });
  }

  void WriteLastChunk(std::shared_ptr<std::promise<bool>> done) {
    net::async_write(stream_, bhttp::make_chunk_last(),
                     [self = this->shared_from_this(), done = std::move(done)](
                         beast::error_code ec, size_t) {
                       done->set_value(!ec);
                       self->AfterAnswer(ec, self->keep_alive_);
                     });
  }

  void StreamFailed(beast::error_code ec, const std::shared_ptr<std::promise<bool>>& done) {
    core_->log.Log(LogLevel::kInfo, kComponent, "stream",
                   "a streamed answer to " + peer_ + " was cut: " + ec.message());
    done->set_value(false);
    writing_ = false;
    Shut();
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
  std::optional<HttpResponder> pending_;  // the unanswered request's responder; empty once answered
  bool watching_ = false;
  bool writing_ = false;
  bool resume_ = false;
  bool shut_after_write_ = false;
  std::optional<net::steady_timer> idle_timer_;
  size_t lingered_ = 0;
};


}  // namespace sluice::http_internal
