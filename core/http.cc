// core/http.h: shared types and the cpprestsdk client (every cpprestsdk exception is caught
// here). The server is core/http_server.cc.
#include "core/http.h"

#include <cpprest/http_client.h>
#include <pplx/threadpool.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <cctype>
#include <future>
#include <mutex>

#include "core/logging.h"

namespace sluice {

namespace http = web::http;

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
  std::mutex mu;  // guards gone and on_gone
  bool gone = false;
  std::function<void()> on_gone;
  std::function<void()> on_watch;
  Streamer streamer;  // set by the server before the handler runs
};

HttpResponder::HttpResponder(std::function<void(HttpResponse)> fn)
    : state_(std::make_shared<State>()) {
  state_->fn = std::move(fn);
}

void HttpResponder::operator()(HttpResponse response) const {
  if (state_->done.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->on_gone = nullptr;  // answered: the hook must not run any more
    state_->on_watch = nullptr;
  }
  state_->fn(std::move(response));
}

std::unique_ptr<HttpStreamWriter> HttpResponder::Stream(HttpResponse head) const {
  if (!state_->streamer || state_->done.exchange(true)) {
    return nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->on_gone = nullptr;  // answered: the hook must not run any more
    state_->on_watch = nullptr;
  }
  return state_->streamer(std::move(head));
}

void HttpResponder::SetStreamer(Streamer fn) const { state_->streamer = std::move(fn); }

void HttpResponder::OnClientGone(std::function<void()> fn) const {
  std::unique_lock<std::mutex> lock(state_->mu);
  if (state_->done.load()) {
    return;
  }
  if (state_->gone) {
    lock.unlock();
    fn();
    return;
  }
  state_->on_gone = std::move(fn);
  std::function<void()> watch = std::move(state_->on_watch);
  state_->on_watch = nullptr;
  lock.unlock();
  if (watch) {
    watch();
  }
}

void HttpResponder::OnWatchWanted(std::function<void()> fn) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->on_watch = std::move(fn);
}

void HttpResponder::ClientGone() const {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->gone = true;
    fn = std::move(state_->on_gone);
    state_->on_gone = nullptr;
  }
  if (fn && !state_->done.load()) {
    fn();
  }
}

namespace {
std::atomic<int> default_http_threads{4};
}  // namespace

void InitHttpThreads(int threads) {
  static std::once_flag once;
  std::call_once(once, [threads] {
    default_http_threads.store(std::max(1, threads));
    try {
      crossplat::threadpool::initialize_with_threads(static_cast<size_t>(std::max(1, threads)));
    } catch (const std::exception& e) {
      LogWarn("http", std::string("thread pool already initialised: ") + e.what());
    }
  });
}

int DefaultHttpThreads() { return default_http_threads.load(); }

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
  std::string bearer_token;
  std::unique_ptr<http::client::http_client> client;
};

HttpClient::HttpClient(const std::string& base_url, HttpClientOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->base_url = base_url;
  impl_->bearer_token = options.tls.bearer_token;
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
    if (!impl_->bearer_token.empty() && headers.count("Authorization") == 0) {
      req.headers().add("Authorization", "Bearer " + impl_->bearer_token);
    }
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
