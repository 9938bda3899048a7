// cpprestsdk adapter behind core/http.h. Every cpprestsdk exception is caught here.
#include "core/http.h"

#include <cpprest/http_client.h>
#include <cpprest/http_listener.h>
#include <pplx/threadpool.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cctype>
#include <condition_variable>
#include <future>
#include <mutex>

#include "core/logging.h"

namespace sluice {

namespace http = web::http;
using http::experimental::listener::http_listener;
using http::experimental::listener::http_listener_config;

std::string HttpRequest::Header(const std::string& lower_name, const std::string& def) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? def : it->second;
}

std::string HttpRequest::Query(const std::string& name, const std::string& def) const {
  auto it = query.find(name);
  return it == query.end() ? def : it->second;
}

HttpResponse HttpResponse::Error(int status, const std::string& code, const std::string& reason,
                                 const std::string& field, int64_t index) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("error");
  w.String(code.c_str(), static_cast<rapidjson::SizeType>(code.size()));
  w.Key("reason");
  w.String(reason.c_str(), static_cast<rapidjson::SizeType>(reason.size()));
  if (!field.empty()) {
    w.Key("field");
    w.String(field.c_str(), static_cast<rapidjson::SizeType>(field.size()));
  }
  if (index >= 0) {
    w.Key("index");
    w.Int64(index);
  }
  w.EndObject();
  HttpResponse r;
  r.status = status;
  r.body = sb.GetString();
  if (status == 503 || status == 507 || status == 429) r.headers.emplace_back("Retry-After", "1");
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

struct HttpResponder::State {
  std::function<void(HttpResponse)> fn;
  std::atomic<bool> done{false};
};

HttpResponder::HttpResponder(std::function<void(HttpResponse)> fn)
    : state_(std::make_shared<State>()) {
  state_->fn = std::move(fn);
}

void HttpResponder::operator()(HttpResponse response) const {
  if (state_->done.exchange(true)) return;
  state_->fn(std::move(response));
}

void InitHttpThreads(int threads) {
  static std::once_flag once;
  std::call_once(once, [threads] {
    try {
      crossplat::threadpool::initialize_with_threads(static_cast<size_t>(std::max(1, threads)));
    } catch (const std::exception& e) {
      LogWarn("http", std::string("thread pool already initialised: ") + e.what());
    }
  });
}

namespace {

void Reply(http::http_request req, HttpResponse resp) {
  try {
    http::http_response out(static_cast<http::status_code>(resp.status));
    for (auto& [k, v] : resp.headers) out.headers().add(k, v);
    out.set_body(std::move(resp.body), resp.content_type);
    req.reply(out).then([](pplx::task<void> t) {
      try {
        t.get();
      } catch (const std::exception&) {
        // The client went away before the reply was sent: nothing to do.
      }
    });
  } catch (const std::exception& e) {
    LogWarn("http", std::string("reply failed: ") + e.what());
  }
}

// What a request in progress needs from its server, shared so that a body read that completes
// after Stop() (or after the server is gone) finds the gate closed instead of a dead handler.
struct ServerGate {
  HttpHandler handler;
  int64_t max_body_bytes = 0;
  std::mutex mu;
  std::condition_variable idle;
  int running = 0;  // handler calls in progress
  bool closed = false;
};

class CppRestServer final : public HttpServer {
 public:
  CppRestServer(const HttpServerOptions& o, HttpHandler h)
      : options_(o), gate_(std::make_shared<ServerGate>()) {
    gate_->handler = std::move(h);
    gate_->max_body_bytes = o.max_body_bytes;
  }
  ~CppRestServer() override { Stop(); }

  Status Open() {
    try {
      http_listener_config cfg;
      cfg.set_timeout(std::chrono::seconds(60));
      if (options_.tls.enabled()) {
        const TlsServerOptions tls = options_.tls;
        cfg.set_ssl_context_callback(
            [tls](boost::asio::ssl::context& ctx) { ConfigureServerTls(tls, ctx); });
      }
      const std::string url = std::string(options_.tls.enabled() ? "https://" : "http://") +
                              options_.host + ":" + std::to_string(options_.port) + "/";
      listener_ = std::make_unique<http_listener>(web::uri(url), cfg);
      listener_->support([this](http::http_request req) { Handle(std::move(req)); });
      listener_->open().wait();
      open_ = true;
      return Status::Ok();
    } catch (const std::exception& e) {
      return Status::Unavailable("cannot listen on " + options_.host + ":" +
                                 std::to_string(options_.port) + ": " + e.what());
    }
  }

  // Stops listening, then waits (up to 30 s) for handler calls in progress to return, so the
  // caller may destroy what the handler uses as soon as Stop() returns.
  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!open_) return;
    open_ = false;
    try {
      listener_->close().wait();
    } catch (const std::exception& e) {
      LogWarn("http", std::string("close failed: ") + e.what());
    }
    std::unique_lock<std::mutex> gl(gate_->mu);
    gate_->closed = true;
    if (!gate_->idle.wait_for(gl, std::chrono::seconds(30), [&] { return gate_->running == 0; })) {
      LogError("http", "stop: " + std::to_string(gate_->running) +
                           " handler call(s) still running after 30 s");
    }
  }

  int port() const override { return options_.port; }

 private:
  void Handle(http::http_request req) {
    HttpRequest r;
    try {
      r.method = req.method();
      r.path = web::uri::decode(req.relative_uri().path());
      if (r.path.empty() || r.path.front() != '/') r.path.insert(r.path.begin(), '/');
      for (auto& [k, v] : web::uri::split_query(req.relative_uri().query())) {
        r.query[web::uri::decode(k)] = web::uri::decode(v);
      }
      for (const auto& [k, v] : req.headers()) {
        std::string name = k;
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = v;
      }
    } catch (const std::exception& e) {
      Reply(req, HttpResponse::Error(400, "bad_request", std::string("malformed request: ") + e.what()));
      return;
    }
    const uint64_t declared = req.headers().content_length();
    if (static_cast<int64_t>(declared) > gate_->max_body_bytes) {
      Reply(req, HttpResponse::Error(413, "too_large",
                                     "body of " + std::to_string(declared) + " bytes exceeds the limit of " +
                                         std::to_string(gate_->max_body_bytes) + " bytes"));
      return;
    }
    HttpResponder responder([req](HttpResponse resp) { Reply(req, std::move(resp)); });
    if (declared == 0 && r.Header("transfer-encoding").empty()) {
      Dispatch(*gate_, std::move(r), responder);
      return;
    }
    auto shared = std::make_shared<HttpRequest>(std::move(r));
    // extract_utf8string(true) hands the bytes over as they are (no charset conversion), read once
    // into the string: extract_vector() plus a copy cost a visible share of produce's CPU.
    req.extract_utf8string(true).then([gate = gate_, shared, responder](pplx::task<std::string> t) {
      try {
        std::string body = t.get();
        if (static_cast<int64_t>(body.size()) > gate->max_body_bytes) {
          responder(HttpResponse::Error(413, "too_large",
                                        "body exceeds the limit of " +
                                            std::to_string(gate->max_body_bytes) + " bytes"));
          return;
        }
        shared->body = std::move(body);
      } catch (const std::exception& e) {
        responder(HttpResponse::Error(400, "bad_request", std::string("cannot read body: ") + e.what()));
        return;
      }
      Dispatch(*gate, std::move(*shared), responder);
    });
  }

  static void Dispatch(ServerGate& gate, HttpRequest&& r, const HttpResponder& responder) {
    {
      std::lock_guard<std::mutex> lock(gate.mu);
      if (gate.closed) {
        responder(HttpResponse::Error(503, "shutting_down", "the server is stopping"));
        return;
      }
      gate.running += 1;
    }
    try {
      gate.handler(std::move(r), responder);
    } catch (const std::exception& e) {
      LogError("http", std::string("handler threw: ") + e.what());
      responder(HttpResponse::Error(500, "internal", e.what()));
    }
    std::lock_guard<std::mutex> lock(gate.mu);
    if (--gate.running == 0) {
      gate.idle.notify_all();
    }
  }

  HttpServerOptions options_;
  std::shared_ptr<ServerGate> gate_;
  std::unique_ptr<http_listener> listener_;
  std::mutex stop_mu_;
  bool open_ = false;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandler handler) {
  Status tls = CheckServerTls(options.tls);
  if (!tls.ok()) return tls;
  auto server = std::make_unique<CppRestServer>(options, std::move(handler));
  Status st = server->Open();
  if (!st.ok()) return st;
  return std::unique_ptr<HttpServer>(std::move(server));
}

// cpprestsdk reports a refused client certificate as a failed status line and a refused server
// certificate as a handshake error; say what that usually means.
static std::string TlsHint(const std::string& what, const std::string& error) {
  if (what.find("https://") == std::string::npos) return "";
  if (error.find("handshake") != std::string::npos) {
    return " (TLS handshake failed: is the server's certificate signed by the CA given, for this "
           "host name?)";
  }
  if (error.find("status line") != std::string::npos) {
    return " (the server closed the TLS connection: does it require a client certificate this "
           "client did not present, or one its CA did not sign?)";
  }
  return "";
}

struct HttpClient::Impl {
  std::string base_url;
  std::unique_ptr<http::client::http_client> client;
};

HttpClient::HttpClient(const std::string& base_url, HttpClientOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->base_url = base_url;
  try {
    http::client::http_client_config cfg;
    cfg.set_timeout(std::chrono::milliseconds(options.timeout_ms));
    if (base_url.rfind("https://", 0) == 0) {
      const TlsClientOptions tls = options.tls;
      cfg.set_ssl_context_callback(
          [tls](boost::asio::ssl::context& ctx) { ConfigureClientTls(tls, ctx); });
    }
    impl_->client = std::make_unique<http::client::http_client>(web::uri(base_url), cfg);
  } catch (const std::exception& e) {
    LogError("http", "invalid base url '" + base_url + "': " + e.what());
  }
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Send(const std::string& method, const std::string& path_and_query,
                                      const std::string& body, const std::string& content_type,
                                      const std::map<std::string, std::string>& headers) {
  // One request path: the blocking call waits for the asynchronous one.
  std::promise<Result<HttpResponse>> answer;
  std::future<Result<HttpResponse>> got = answer.get_future();
  SendAsync(method, path_and_query, body, content_type, headers,
            [&answer](Result<HttpResponse> r) { answer.set_value(std::move(r)); });
  return got.get();
}

void HttpClient::SendAsync(const std::string& method, const std::string& path_and_query,
                           std::string body, const std::string& content_type,
                           const std::map<std::string, std::string>& headers, Done done) {
  const std::string what = method + " " + impl_->base_url + path_and_query;
  if (!impl_->client) {
    done(Status::InvalidArgument("invalid base url '" + impl_->base_url + "'"));
    return;
  }
  pplx::task<http::http_response> sent;
  try {
    http::http_request req(method);
    req.set_request_uri(path_and_query);
    for (const auto& [k, v] : headers) req.headers().add(k, v);
    if (!body.empty() || method == "POST" || method == "PUT") {
      req.set_body(std::move(body), content_type);
    }
    sent = impl_->client->request(req);
  } catch (const std::exception& e) {
    done(Status::Unavailable(what + ": " + e.what()));
    return;
  }
  auto out = std::make_shared<HttpResponse>();
  sent.then([out](http::http_response resp) {
        out->status = resp.status_code();
        out->content_type = resp.headers().content_type();
        for (const auto& [k, v] : resp.headers()) out->headers.emplace_back(k, v);
        return resp.extract_vector();
      })
      .then([out, done = std::move(done), what](pplx::task<std::vector<unsigned char>> t) {
        // Task-based continuation: it runs whether or not an earlier step threw.
        try {
          std::vector<unsigned char> bytes = t.get();
          out->body.assign(bytes.begin(), bytes.end());
        } catch (const std::exception& e) {
          done(Status::Unavailable(what + ": " + e.what() + TlsHint(what, e.what())));
          return;
        }
        done(std::move(*out));
      });
}

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int HttpStatusFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorruption: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kTooLarge: return 413;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
    case StatusCode::kIOError: return 503;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

}  // namespace sluice
