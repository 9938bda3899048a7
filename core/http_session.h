// One HTTP/1.1 connection of HttpServer (core/http_server.cc); what connections share with their
// server is in core/http_server_core.h. Internal to core: included by core/http_server.cc only,
// never by callers (it includes Boost.Beast).
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
#include <atomic>
#include <climits>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/http.h"
#include "core/http_server_core.h"
#include "core/http_stream_writer.h"
#include "core/http_target.h"
#include "core/logging.h"

namespace sluice::http_internal {

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
        self->Deadline(self->core_->options.header_timeout_ms);
        self->stream_.async_handshake(net::ssl::stream_base::server,
                                      [self](beast::error_code ec) { self->OnHandshake(ec); });
      } else {
        self->WaitRequest();
      }
    });
  }

  // Dropped once the server stopped, as Answer: a handler posting after the I/O threads are
  // gone would leave a handler (holding this session, which holds the core and its io_context)
  // queued in that io_context for good, a reference cycle that is never freed.
  void Close() override {
    std::lock_guard<std::mutex> lock(core_->mu);
    if (core_->stopped) {
      return;
    }
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
    Deadline(wait);
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
    Deadline(core_->options.header_timeout_ms);
    // A header already whole in the buffer (a small request arrives in one segment) is parsed
    // here, without an asynchronous read and its completion. An incomplete one is left as it
    // was (put() takes a header all at once) for the read below.
    if (buffer_.size() > 0) {
      beast::error_code ec;
      buffer_.consume(parser_->put(buffer_.data(), ec));
      if (!ec && parser_->is_header_done()) {
        return OnHeader(ec);
      }
      if (ec && ec != bhttp::error::need_more) {
        return OnReadError(ec);
      }
    }
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
      Deadline(core_->options.body_timeout_ms);
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
    Deadline(core_->options.body_timeout_ms);
    // As ReadHeader: what of the body is buffered already is parsed here; a whole request goes
    // to the handler at once.
    if (!parser_->is_done() && buffer_.size() > 0) {
      parser_->eager(true);
      beast::error_code ec;
      buffer_.consume(parser_->put(buffer_.data(), ec));
      if (ec && ec != bhttp::error::need_more) {
        return OnReadError(ec);
      }
    }
    if (parser_->is_done()) {
      return OnRequest();
    }
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
    NoDeadline();
    std::shared_ptr<Session> self = this->shared_from_this();
    HttpResponder responder([self](HttpResponse resp) { self->Answer(std::move(resp)); });
    // Held for later (a long-poll) with a hook for a client that goes away: watch the connection.
    responder.OnWatchWanted([self] {
      std::lock_guard<std::mutex> lock(self->core_->mu);
      if (!self->core_->stopped) {  // as Close
        net::post(self->stream_.get_executor(), [self] { self->Watch(); });
      }
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
    Deadline(core_->options.body_timeout_ms + core_->options.idle_timeout_ms);
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](
                                                       beast::error_code ec, size_t n) {
      self->watching_ = false;
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
    Deadline(kLingerMs);
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
    Deadline(core_->options.body_timeout_ms);
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
      self->Deadline(self->core_->options.body_timeout_ms);
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

  // The answer is out and the watch read (Watch) still waits: the connection is closed (and
  // the watch read ends with an error) if no request starts within the idle timeout.
  void WaitIdle() { Deadline(core_->options.idle_timeout_ms); }

  void Shut() {
    if (closing_) {
      return;
    }
    closing_ = true;
    NoDeadline();
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
  size_t lingered_ = 0;
};


}  // namespace sluice::http_internal
