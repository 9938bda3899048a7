#include "tests/common/fake_http_server.h"

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace sluice::testing {

FakeHttpServer::FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
  HttpServerOptions opts;
  opts.port = FreePort();
  port_ = opts.port;
  auto s = HttpServer::Start(opts, [this](HttpRequest&& req, HttpResponder respond) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    respond(handler_(req));
  });
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (s.ok()) {
    server_ = std::move(s.value());
  }
}

FakeHttpServer::~FakeHttpServer() {
  if (server_) {
    server_->Stop();
  }
}

std::vector<HttpRequest> FakeHttpServer::Requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

}  // namespace sluice::testing
