// FakeHttpServer: an in-test HTTP peer (a stand-in for a gateway or broker where the test is
// about the client) on a FreePort() port; answers with `handler` and records every request.
// Thread-safety: Requests() and the handler may run concurrently; the handler must be
// thread-safe itself.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/http.h"

namespace sluice::testing {

class FakeHttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<HttpRequest> Requests() const;

 private:
  Handler handler_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<HttpRequest> requests_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace sluice::testing
