// HttpServer against careless and hostile clients, over raw sockets: every size and time a client
// controls is bounded (issue 10, items 6 and 7). Each of these passed a request or held a
// connection forever on the cpprestsdk listener this server replaced.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>
#include <chrono>
#include <string>
#include <thread>

#include "core/http.h"
#include "core/http_target.h"
#include "tests/common/test_env.h"

namespace sluice {
namespace {

class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~RawConn() { close(fd_); }
  bool ok() const { return ok_; }

  // Sends all of s unless the peer closes; returns the bytes the kernel took.
  size_t Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, 2000) <= 0) {
        break;  // the server stopped reading
      }
      const ssize_t n = send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    return off;
  }

  // Reads until the peer closes or `timeout_ms` passes; *closed tells which.
  std::string ReadAll(int64_t timeout_ms, bool* closed) {
    std::string out;
    *closed = false;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[65536];
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) {
        continue;
      }
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        *closed = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  // Reads one answer (up to its body's declared length) within timeout_ms.
  std::string ReadResponse(int64_t timeout_ms) {
    std::string out;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
      const size_t hdr = out.find("\r\n\r\n");
      if (hdr != std::string::npos) {
        const size_t cl = out.find("Content-Length: ");
        const size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
        if (out.size() >= hdr + 4 + len) {
          return out;
        }
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) {
        continue;
      }
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

struct Served {
  std::unique_ptr<HttpServer> server;
  std::shared_ptr<std::atomic<int>> handled = std::make_shared<std::atomic<int>>(0);
};

Served Serve(HttpServerOptions o) {
  Served s;
  auto handled = s.handled;
  auto r = HttpServer::Start(o, [handled](HttpRequest&& req, HttpResponder respond) {
    handled->fetch_add(1);
    respond(HttpResponse::Json(200, "{\"len\":" + std::to_string(req.body.size()) + "}"));
  });
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (r.ok()) {
    s.server = std::move(r.value());
  }
  return s;
}

TEST(HttpLimitsTest, PortZeroReportsTheBoundPort) {
  HttpServerOptions o;
  o.port = 0;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  EXPECT_GT(s.server->port(), 0);
  EXPECT_TRUE(testing::WaitHttpOk(s.server->port(), "/", 5000));
}

TEST(HttpLimitsTest, ChunkedBodyOverTheLimitIsRefusedWhileReading) {
  HttpServerOptions o;
  o.max_body_bytes = 64 * 1024;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  ASSERT_TRUE(c.ok());
  c.Send("POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  // 256 MiB in 64 KiB chunks: the old server read all of it before counting.
  const std::string chunk = "10000\r\n" + std::string(65536, 'a') + "\r\n";
  size_t sent = 0;
  for (int i = 0; i < 4096; ++i) {
    const size_t n = c.Send(chunk);
    sent += n;
    if (n < chunk.size()) {
      break;
    }
  }
  bool closed = false;
  const std::string answer = c.ReadAll(5000, &closed);
  EXPECT_NE(answer.find("413"), std::string::npos) << answer.substr(0, 200);
  EXPECT_NE(answer.find("too_large"), std::string::npos);
  EXPECT_TRUE(closed);
  EXPECT_LT(sent, size_t{64} << 20) << "the server kept reading past the limit";
  EXPECT_EQ(s.handled->load(), 0);
}

TEST(HttpLimitsTest, DeclaredBodyOverTheLimitIs413Unread) {
  HttpServerOptions o;
  o.max_body_bytes = 1024;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n");
  const std::string answer = c.ReadResponse(5000);
  EXPECT_NE(answer.find("HTTP/1.1 413"), std::string::npos) << answer;
  EXPECT_EQ(s.handled->load(), 0);
}

TEST(HttpLimitsTest, HugeHeaderLineIs431) {
  HttpServerOptions o;
  o.max_header_bytes = 8 * 1024;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  const size_t sent =
      c.Send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(50 << 20, 'a') + "\r\n\r\n");
  bool closed = false;
  const std::string answer = c.ReadAll(5000, &closed);
  EXPECT_NE(answer.find("HTTP/1.1 431"), std::string::npos) << answer.substr(0, 200);
  EXPECT_TRUE(closed);
  EXPECT_LT(sent, size_t{50} << 20) << "the server buffered the whole header line";
  EXPECT_EQ(s.handled->load(), 0);
}

TEST(HttpLimitsTest, TooManyHeaderFieldsIs431) {
  HttpServerOptions o;
  o.max_header_fields = 50;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i) {
    req += "X-" + std::to_string(i) + ": 1\r\n";
  }
  c.Send(req + "\r\n");
  const std::string answer = c.ReadResponse(5000);
  EXPECT_NE(answer.find("HTTP/1.1 431"), std::string::npos) << answer;
  EXPECT_EQ(s.handled->load(), 0);
}

TEST(HttpLimitsTest, TricklingHeaderIsCut) {
  HttpServerOptions o;
  o.header_timeout_ms = 300;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  c.Send("GET / HTTP/1.1\r\n");
  // One byte every 50 ms for up to 30 s: the old server waited for all of it.
  bool cut = false;
  for (int i = 0; i < 600 && !cut; ++i) {
    cut = c.Send("X") == 0;
    bool closed = false;
    c.ReadAll(50, &closed);
    cut = cut || closed;
  }
  EXPECT_TRUE(cut) << "a trickling header kept its connection for 30 s";
  EXPECT_EQ(s.handled->load(), 0);
}

TEST(HttpLimitsTest, IdleKeptAliveConnectionIsClosed) {
  HttpServerOptions o;
  o.idle_timeout_ms = 300;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(c.ReadResponse(5000).find("HTTP/1.1 200"), std::string::npos);
  bool closed = false;
  c.ReadAll(20000, &closed);
  EXPECT_TRUE(closed) << "an idle connection was kept for 20 s";
}

TEST(HttpLimitsTest, SilentNewConnectionIsClosedAfterTheHeaderTimeout) {
  HttpServerOptions o;
  o.header_timeout_ms = 300;
  o.idle_timeout_ms = 60000;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  bool closed = false;
  c.ReadAll(20000, &closed);
  EXPECT_TRUE(closed);
}

TEST(HttpLimitsTest, ConnectionsPastTheCapAreClosedAndOthersStillServed) {
  HttpServerOptions o;
  o.max_connections = 4;
  Served s = Serve(o);
  ASSERT_NE(s.server, nullptr);
  std::vector<std::unique_ptr<RawConn>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<RawConn>(s.server->port()));
    ASSERT_TRUE(held.back()->ok());
  }
  // The server registers a connection when it accepts it; give it the four first.
  held[0]->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_NE(held[0]->ReadResponse(5000).find("HTTP/1.1 200"), std::string::npos);
  RawConn extra(s.server->port());
  bool closed = false;
  extra.ReadAll(5000, &closed);
  EXPECT_TRUE(closed) << "a fifth connection was kept open past max_connections = 4";
  // A held connection still works.
  held[1]->Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(held[1]->ReadResponse(5000).find("HTTP/1.1 200"), std::string::npos);
  // Once one closes, a new connection is served.
  held.pop_back();
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        RawConn again(s.server->port());
        again.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        return again.ReadResponse(1000).find("HTTP/1.1 200") != std::string::npos;
      },
      10000));
}

TEST(HttpLimitsTest, MalformedRequestIs400) {
  Served s = Serve({});
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  c.Send("GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string answer = c.ReadResponse(5000);
  EXPECT_NE(answer.find("HTTP/1.1 400"), std::string::npos) << answer;
  RawConn d(s.server->port());
  d.Send("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_NE(d.ReadResponse(5000).find("HTTP/1.1 400"), std::string::npos);
  EXPECT_EQ(s.handled->load(), 0);
}

TEST(HttpLimitsTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Served s = Serve({});
  ASSERT_NE(s.server, nullptr);
  RawConn c(s.server->port());
  for (int i = 0; i < 3; ++i) {
    c.Send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_NE(c.ReadResponse(5000).find("{\"len\":3}"), std::string::npos);
  }
  EXPECT_EQ(s.handled->load(), 3);
}

TEST(HttpTargetTest, DecodesPathAndQuery) {
  std::string path;
  std::map<std::string, std::string> q;
  ASSERT_TRUE(ParseRequestTarget("/v1/x%20y?q=a%20b%26c&flag&e=", &path, &q).ok());
  EXPECT_EQ(path, "/v1/x y");
  EXPECT_EQ(q["q"], "a b&c");
  EXPECT_EQ(q.count("flag"), 1u);
  EXPECT_EQ(q["e"], "");
  EXPECT_FALSE(ParseRequestTarget("/a%2", &path, &q).ok());
  EXPECT_FALSE(ParseRequestTarget("/a%g0", &path, &q).ok());
  EXPECT_FALSE(ParseRequestTarget("http://h/a", &path, &q).ok());
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// A handler that holds every request until the test answers it (as a long-poll does).
struct Held {
  std::mutex mu;
  std::vector<HttpResponder> waiting;
  std::atomic<int> gone{0};
};

std::unique_ptr<HttpServer> ServeHeld(std::shared_ptr<Held> held, HttpServerOptions o = {}) {
  auto r = HttpServer::Start(o, [held](HttpRequest&&, HttpResponder respond) {
    respond.OnClientGone([held] { held->gone.fetch_add(1); });
    std::lock_guard<std::mutex> lock(held->mu);
    held->waiting.push_back(respond);
  });
  EXPECT_TRUE(r.ok());
  return r.ok() ? std::move(r.value()) : nullptr;
}

TEST(HttpClientGoneTest, AClientThatLeavesAHeldRequestIsReported) {
  auto held = std::make_shared<Held>();
  auto server = ServeHeld(held);
  ASSERT_NE(server, nullptr);
  {
    RawConn c(server->port());
    c.Send("GET /v1/topics/t/partitions/0/records?wait_ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(held->mu);
          return held->waiting.size() == 1;
        },
        5000));
  }  // the client closes its connection
  // Reported long before any 30 s deadline (the old server never reported it).
  EXPECT_TRUE(testing::WaitFor([&] { return held->gone.load() == 1; }, 5000));
}

TEST(HttpClientGoneTest, AHeldRequestIsAnsweredAndTheConnectionGoesOn) {
  auto held = std::make_shared<Held>();
  HttpServerOptions o;
  o.idle_timeout_ms = 500;
  auto server = ServeHeld(held, o);
  ASSERT_NE(server, nullptr);
  RawConn c(server->port());
  for (int round = 1; round <= 2; ++round) {
    c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          std::lock_guard<std::mutex> lock(held->mu);
          return static_cast<int>(held->waiting.size()) == round;
        },
        5000));
    {
      std::lock_guard<std::mutex> lock(held->mu);
      held->waiting.back()(HttpResponse::Json(200, "{\"round\":" + std::to_string(round) + "}"));
    }
    EXPECT_NE(c.ReadResponse(5000).find("{\"round\":" + std::to_string(round) + "}"),
              std::string::npos);
  }
  EXPECT_EQ(held->gone.load(), 0);  // answered: never reported gone
  // Idle after a held answer: closed after the idle timeout like any other connection.
  bool closed = false;
  c.ReadAll(20000, &closed);
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace sluice
