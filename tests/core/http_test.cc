#include "core/http.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "tests/common/test_env.h"

namespace sluice {
namespace {

HttpServerOptions Options(int port, int64_t max_body_bytes) {
  HttpServerOptions o;
  o.port = port;
  o.max_body_bytes = max_body_bytes;
  return o;
}

TEST(HttpTest, RoundTripWithQueryHeadersAndBinaryBody) {
  const int port = testing::FreePort();
  auto server = HttpServer::Start(Options(port, 1024), [](HttpRequest&& r, HttpResponder respond) {
    HttpResponse resp;
    resp.content_type = "text/plain";
    resp.body = r.method + " " + r.path + " q=" + r.Query("q") + " h=" + r.Header("x-test") +
                " len=" + std::to_string(r.body.size());
    respond(resp);
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  std::string body("a\0b", 3);
  auto resp = client.Send("POST", "/v1/x%20y?q=" + UrlEncode("a b&c"), body,
                          "application/octet-stream", {{"X-Test", "1"}});
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "POST /v1/x y q=a b&c h=1 len=3");
}

TEST(HttpTest, EveryByteValueSurvivesTheBody) {
  // Record batches are binary: no charset conversion may touch them on the way in.
  const int port = testing::FreePort();
  std::string received;
  auto server = HttpServer::Start(Options(port, 1 << 20), [&](HttpRequest&& r, HttpResponder respond) {
    received = r.body;
    respond(HttpResponse::Json(200, "{}"));
  });
  ASSERT_TRUE(server.ok());
  std::string body;
  for (int rep = 0; rep < 64; ++rep) {
    for (int b = 0; b < 256; ++b) body.push_back(static_cast<char>((b * 7 + rep) & 0xFF));
  }
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto resp = client.Send("POST", "/", body, "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(received, body);
}

TEST(HttpTest, OversizeBodyGets413WithoutReachingHandler) {
  const int port = testing::FreePort();
  bool reached = false;
  auto server = HttpServer::Start(Options(port, 10), [&](HttpRequest&&, HttpResponder respond) {
    reached = true;
    respond(HttpResponse::Json(200, "{}"));
  });
  ASSERT_TRUE(server.ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto resp = client.Send("POST", "/", std::string(11, 'x'));
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 413);
  EXPECT_NE(resp->body.find("\"error\":\"too_large\""), std::string::npos);
  EXPECT_FALSE(reached);
}

TEST(HttpTest, AsynchronousResponderFromAnotherThread) {
  const int port = testing::FreePort();
  std::vector<std::thread> threads;
  std::mutex mu;
  auto server = HttpServer::Start(Options(port, 1024), [&](HttpRequest&&, HttpResponder respond) {
    std::lock_guard<std::mutex> lock(mu);
    threads.emplace_back([respond] {
      respond(HttpResponse::Json(202, "{\"accepted\":1}"));
      respond(HttpResponse::Json(500, "{}"));  // second call is ignored
    });
  });
  ASSERT_TRUE(server.ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto resp = client.Send("POST", "/v1/events", "{}");
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 202);
  EXPECT_EQ(resp->body, "{\"accepted\":1}");
  (*server)->Stop();
  for (auto& t : threads) t.join();
}

// A streamed answer (HttpResponder::Stream) written from another thread arrives whole, in
// order, with its status, type and headers; the kept-alive connection then serves the next
// request. A writer destroyed before Finish cuts the connection: the client sees an incomplete
// chunked body, never a shorter answer that looks whole.
TEST(HttpTest, StreamedAnswerArrivesWholeAndAnUnfinishedOneIsCut) {
  const int port = testing::FreePort();
  std::vector<std::thread> threads;
  std::mutex mu;
  auto server = HttpServer::Start(Options(port, 1024), [&](HttpRequest&& r, HttpResponder respond) {
    if (r.path == "/plain") {
      respond(HttpResponse::Json(200, "{\"plain\":true}"));
      return;
    }
    const bool finish = r.path == "/whole";
    std::lock_guard<std::mutex> lock(mu);
    threads.emplace_back([respond, finish] {
      HttpResponse head;
      head.content_type = "application/x-ndjson";
      head.headers.push_back({"X-Streamed", "yes"});
      std::unique_ptr<HttpStreamWriter> w = respond.Stream(head);
      ASSERT_NE(w, nullptr);
      EXPECT_EQ(respond.Stream(head), nullptr) << "answered once";
      for (int i = 0; i < 2000; ++i) {
        ASSERT_TRUE(w->Write("{\"line\":" + std::to_string(i) + "}\n" + std::string(500, ' ')));
      }
      if (finish) {
        EXPECT_TRUE(w->Finish());
        EXPECT_FALSE(w->Write("late")) << "nothing after the last chunk";
      }
    });
  });
  ASSERT_TRUE(server.ok());
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto whole = client.Send("GET", "/whole");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(whole->content_type, "application/x-ndjson");
  std::string want;
  for (int i = 0; i < 2000; ++i) {
    want += "{\"line\":" + std::to_string(i) + "}\n" + std::string(500, ' ');
  }
  EXPECT_EQ(whole->body.size(), want.size());
  EXPECT_TRUE(whole->body == want);
  bool header = false;
  for (const auto& [k, v] : whole->headers) header |= (k == "X-Streamed" && v == "yes");
  EXPECT_TRUE(header);
  auto next = client.Send("GET", "/plain");  // the same pooled connection
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->body, "{\"plain\":true}");

  std::string body;
  EXPECT_EQ(testing::HttpGet(port, "/cut", &body, 20000), -1)
      << "an unfinished stream must not read as a whole answer (" << body.size() << " bytes)";
  (*server)->Stop();
  for (auto& t : threads) t.join();
}

// A client that stops reading and leaves: the writer's Write turns false within the body
// timeout, so the producer (a query thread) stops instead of blocking for ever.
TEST(HttpTest, StreamToAClientThatLeftStopsTheWriter) {
  const int port = testing::FreePort();
  HttpServerOptions o = Options(port, 1024);
  o.body_timeout_ms = 1000;
  std::promise<int> written;
  std::thread producer;
  auto server = HttpServer::Start(o, [&](HttpRequest&&, HttpResponder respond) {
    producer = std::thread([respond, &written] {
      std::unique_ptr<HttpStreamWriter> w = respond.Stream(HttpResponse{});
      int n = 0;
      while (n < 1'000'000 && w->Write(std::string(64 * 1024, 'x'))) ++n;
      written.set_value(n);
    });
  });
  ASSERT_TRUE(server.ok());
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  char buf[4096];
  ASSERT_GT(read(fd, buf, sizeof(buf)), 0);  // the answer started; read no more
  std::future<int> n = written.get_future();
  EXPECT_EQ(n.wait_for(std::chrono::seconds(20)), std::future_status::ready)
      << "a writer blocked on a client that does not read";
  close(fd);
  if (n.valid()) {
    EXPECT_LT(n.get(), 1'000'000);
  }
  (*server)->Stop();
  producer.join();
}

TEST(HttpTest, UnreachablePeerIsUnavailable) {
  HttpClient client("http://127.0.0.1:" + std::to_string(testing::FreePort()), {2000});
  auto resp = client.Get("/healthz");
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kUnavailable);
}

TEST(HttpTest, PortTakenByAnotherSocketIsUnavailable) {
  // Another process's listener is modelled by a plain socket: cpprestsdk shares one acceptor per
  // host:port inside a process, so two in-process listeners would not exercise the OS bind.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  auto handler = [](HttpRequest&&, HttpResponder r) { r(HttpResponse{}); };
  auto server = HttpServer::Start(Options(port, 1024), handler);
  EXPECT_FALSE(server.ok());
  if (!server.ok()) {
    EXPECT_EQ(server.status().code(), StatusCode::kUnavailable);
  }
  close(fd);
}

TEST(HttpTest, ErrorBodyEscapesJson) {
  auto r = HttpResponse::Error(400, "invalid_event", "bad \"quote\"", "device_id", 3);
  EXPECT_EQ(r.body,
            "{\"error\":\"invalid_event\",\"reason\":\"bad \\\"quote\\\"\",\"field\":\"device_id\","
            "\"index\":3}");
}

}  // namespace
}  // namespace sluice
