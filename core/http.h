// HTTP server and client used by the gateway, the broker, the simulator and the CLI. They wrap
// cpprestsdk behind plain structs, so no cpprestsdk header leaks into callers and no cpprestsdk
// exception crosses this interface.
//
// Server (Boost.Beast, core/http_server.cc): one handler receives every request; it answers
// through the HttpResponder, either before returning or later from another thread (the gateway
// answers 202 from its commit thread once events are durable, without holding a server thread).
// The server bounds everything a client controls before the handler sees it: the body (413,
// enforced while reading, chunked too), the header block's size and field count (431), the time
// a request's header and body may take to arrive, the idle time of a kept-alive connection and
// the number of open connections; under mutual TLS it hands the handler the client's
// authenticated identity (HttpRequest::tls_principal).
// Client: cpprestsdk.
// Thread-safety: HttpServer and HttpClient are thread-safe; a responder must be called once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/tls.h"

namespace sluice {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path, e.g. "/v1/events"
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  // Identity from the client's verified TLS certificate (core/tls.h PeerPrincipal); "" without
  // mutual TLS. Set by the server only: no header can forge it.
  std::string tls_principal;
  std::string peer_address;  // "ip:port" of the client
  // Who the application authenticated the request as (the broker's cloud-broker/auth); set by
  // the handler, never by the server or a header. "" until then.
  std::string principal;

  std::string Header(const std::string& lower_name, const std::string& def = "") const;
  std::string Query(const std::string& name, const std::string& def = "") const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // {"error": <code>, "reason": <reason>[, "field": <field>][, "index": <index>]}
  static HttpResponse Error(int status, const std::string& code, const std::string& reason,
                            const std::string& field = "", int64_t index = -1);
  static HttpResponse Json(int status, std::string body);
};

// The body of an answer written while it is produced (HttpResponder::Stream), as HTTP/1.1
// chunks: a large answer (a query's NDJSON) never sits whole in memory. Called from the one
// thread that produces the answer (a query thread), never from a server thread: Write blocks
// until the connection took the chunk, so a slow reader slows the producer instead of growing
// a buffer. Destroying a writer that was not finished closes the connection, so the client sees
// a cut body (a chunked body without its last chunk), never a shorter one that looks complete.
class HttpStreamWriter {
 public:
  virtual ~HttpStreamWriter() = default;
  // false once the client is gone, the write took longer than the server's body timeout, or
  // the server is stopping: stop producing (every later call is false too).
  virtual bool Write(std::string chunk) = 0;
  // The last chunk; the connection then serves its next request (keep-alive). False as Write.
  virtual bool Finish() = 0;
};

// Calls the wrapped function once; later calls are ignored. Copyable.
class HttpResponder {
 public:
  explicit HttpResponder(std::function<void(HttpResponse)> fn);
  void operator()(HttpResponse response) const;

  // Answers with `head`'s status, content type and headers (its body is ignored) and a body
  // written through the returned writer (Transfer-Encoding: chunked). Counts as the answer.
  // nullptr if the request was answered already or the server cannot stream.
  std::unique_ptr<HttpStreamWriter> Stream(HttpResponse head) const;
  // The server's side: how Stream starts a streamed answer.
  using Streamer = std::function<std::unique_ptr<HttpStreamWriter>(HttpResponse head)>;
  void SetStreamer(Streamer fn) const;

  // A handler that holds a request for later (a long-poll) registers `fn` to release what it
  // holds if the client goes away first. `fn` runs at most once, on a server thread, and never
  // after the answer; it runs at once if the client is already gone.
  void OnClientGone(std::function<void()> fn) const;
  // The server's side: the connection closed before the answer.
  void ClientGone() const;
  // The server's side: `fn` runs once, when a handler first registers OnClientGone, so the
  // server watches a connection only for handlers that care (a watch costs every request a read
  // attempt and a timer; ingest answered after its fsync does not need one).
  void OnWatchWanted(std::function<void()> fn) const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

using HttpHandler = std::function<void(HttpRequest&&, HttpResponder)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                              // 0: the kernel picks one (HttpServer::port())
  int64_t max_body_bytes = 8 * 1024 * 1024;  // 413 once a body (declared or read) passes it
  TlsServerOptions tls;                      // enabled: https:// (core/tls.h)
  int threads = 0;                   // I/O and handler threads; 0: InitHttpThreads' count
  int64_t max_header_bytes = 16 * 1024;  // request line + header fields; past it 431
  int max_header_fields = 100;           // past it 431
  int64_t header_timeout_ms = 10000;  // a request's line and header fields (and a TLS
                                      // handshake) must arrive within this, or the connection
                                      // is closed: no slow-header (slowloris) connection lasts
  int64_t body_timeout_ms = 60000;    // the body, and writing the answer, within this
  int64_t idle_timeout_ms = 60000;    // a kept-alive connection with no request is closed
  int max_connections = 0;  // open connections at most (more are closed at accept); 0: half of
                            // the process's open-file limit, at most 10,000
};

class HttpServer {
 public:
  // Starts listening; kUnavailable if the address cannot be bound, kInvalidArgument if the TLS
  // files cannot be loaded.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandler handler);
  virtual ~HttpServer() = default;
  virtual void Stop() = 0;
  virtual int port() const = 0;
};

// Sets the size of cpprestsdk's shared thread pool (the client's) and the default thread count
// of servers. Must run before any server or client is created; later calls have no effect.
// STYLE.md: a small pool (about 4) keeps tail latency low.
void InitHttpThreads(int threads);
int DefaultHttpThreads();

struct HttpClientOptions {
  int64_t timeout_ms = 10000;
  TlsClientOptions tls;  // used for https:// base URLs (core/tls.h)
};

class HttpClient {
 public:
  // base_url: "http://127.0.0.1:8080" or "https://broker.example:8443" (the server's certificate
  // and host name are verified; a failed handshake is a transport failure, kUnavailable).
  HttpClient(const std::string& base_url, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends a request; `path_and_query` is already URL-encoded. A transport failure or timeout is
  // kUnavailable; any HTTP status (including 4xx/5xx) is returned as a response.
  Result<HttpResponse> Send(const std::string& method, const std::string& path_and_query,
                            const std::string& body = "",
                            const std::string& content_type = "application/json",
                            const std::map<std::string, std::string>& headers = {});
  Result<HttpResponse> Get(const std::string& path_and_query) { return Send("GET", path_and_query); }

  // The same without blocking: `done` runs once, on a cpprestsdk pool thread (or inline when the
  // request cannot be started), with the response or the transport failure. Several requests
  // may be in flight at once (each on its own pooled connection). `done` must not throw.
  using Done = std::function<void(Result<HttpResponse>)>;
  void SendAsync(const std::string& method, const std::string& path_and_query, std::string body,
                 const std::string& content_type, const std::map<std::string, std::string>& headers,
                 Done done);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& s);

// Maps a status code to an HTTP status (InvalidArgument 400, TooLarge 413, PermissionDenied 451
// when it is a residency refusal is decided by the caller; Unavailable 503, ResourceExhausted 503).
int HttpStatusFor(const Status& status);

}  // namespace sluice
