// HttpServer/HttpClient over TLS with a throwaway PKI (tests/common/test_pki.h): a verified
// server, mutual TLS, and each way a handshake must fail.
#include <gtest/gtest.h>

#include "core/http.h"
#include "core/tls.h"
#include "tests/common/test_env.h"
#include "tests/common/test_pki.h"

namespace sluice {
namespace {

class HttpTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(testing::MakeTestPki(dir_.path(), &pki_, &error)) << error;
  }

  std::unique_ptr<HttpServer> Serve(bool require_client_cert) {
    HttpServerOptions o;
    o.port = testing::FreePort();
    o.tls.cert_file = pki_.server_cert;
    o.tls.key_file = pki_.server_key;
    if (require_client_cert) {
      o.tls.client_ca_file = pki_.ca;
    }
    auto s = HttpServer::Start(o, [](HttpRequest&& r, HttpResponder respond) {
      respond(HttpResponse::Json(200, "{\"path\":\"" + r.path + "\"}"));
    });
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s.value()) : nullptr;
  }

  Result<HttpResponse> Get(const std::string& host, int port, TlsClientOptions tls) {
    HttpClientOptions o;
    o.timeout_ms = 5000;
    o.tls = std::move(tls);
    HttpClient c("https://" + host + ":" + std::to_string(port), o);
    return c.Get("/v1/x");
  }

  testing::TempDir dir_;
  testing::TestPki pki_;
};

TEST_F(HttpTlsTest, ClientTrustingTheCaGetsAnAnswer) {
  auto server = Serve(false);
  ASSERT_NE(server, nullptr);
  auto r = Get("127.0.0.1", server->port(), {pki_.ca, "", ""});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"path\":\"/v1/x\"}");
  // Plain HTTP to the TLS port gets nothing useful.
  HttpClientOptions plain;
  plain.timeout_ms = 3000;
  HttpClient c("http://127.0.0.1:" + std::to_string(server->port()), plain);
  auto p = c.Get("/v1/x");
  EXPECT_TRUE(!p.ok() || p->status != 200);
}

TEST_F(HttpTlsTest, UntrustedServerCertificateIsRefused) {
  auto server = Serve(false);
  ASSERT_NE(server, nullptr);
  // Verified against the system CAs (which never signed the test CA), then against another CA.
  auto sys = Get("127.0.0.1", server->port(), {"", "", ""});
  EXPECT_FALSE(sys.ok());
  EXPECT_EQ(sys.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(sys.status().message().find("TLS handshake failed"), std::string::npos)
      << sys.status().message();
  auto rogue = Get("127.0.0.1", server->port(), {pki_.rogue_ca, "", ""});
  EXPECT_FALSE(rogue.ok());
}

TEST_F(HttpTlsTest, CertificateForAnotherHostIsRefused) {
  // Signed by the trusted CA, but issued to "gw-test", not to 127.0.0.1.
  HttpServerOptions o;
  o.port = testing::FreePort();
  o.tls.cert_file = pki_.client_cert;
  o.tls.key_file = pki_.client_key;
  auto s = HttpServer::Start(o, [](HttpRequest&&, HttpResponder r) { r(HttpResponse()); });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto r = Get("127.0.0.1", o.port, {pki_.ca, "", ""});
  EXPECT_FALSE(r.ok());
  // The right certificate answers under its other name too.
  auto server = Serve(false);
  ASSERT_NE(server, nullptr);
  auto named = Get("localhost", server->port(), {pki_.ca, "", ""});
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->status, 200);
}

TEST_F(HttpTlsTest, MutualTlsAdmitsOnlyClientsTheCaSigned) {
  auto server = Serve(true);
  ASSERT_NE(server, nullptr);
  auto ok = Get("127.0.0.1", server->port(), {pki_.ca, pki_.client_cert, pki_.client_key});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->status, 200);
  auto none = Get("127.0.0.1", server->port(), {pki_.ca, "", ""});
  EXPECT_FALSE(none.ok());
  auto rogue = Get("127.0.0.1", server->port(), {pki_.ca, pki_.rogue_cert, pki_.rogue_key});
  EXPECT_FALSE(rogue.ok());
}

TEST_F(HttpTlsTest, BadFilesFailAtStartWithTheFileNamed) {
  HttpServerOptions o;
  o.port = testing::FreePort();
  o.tls.cert_file = pki_.server_cert;
  o.tls.key_file = pki_.client_key;  // not the certificate's key
  auto s = HttpServer::Start(o, [](HttpRequest&&, HttpResponder r) { r(HttpResponse()); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find(pki_.client_key), std::string::npos) << s.status().message();
  o.tls.key_file = dir_.path() + "/missing.key";
  auto m = HttpServer::Start(o, [](HttpRequest&&, HttpResponder r) { r(HttpResponse()); });
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("missing.key"), std::string::npos) << m.status().message();
  EXPECT_FALSE(CheckClientTls({dir_.path() + "/nope.pem", "", ""}).ok());
}

TEST_F(HttpTlsTest, HandlerSeesTheClientCertificatesIdentity) {
  HttpServerOptions o;
  o.tls = {pki_.server_cert, pki_.server_key, pki_.ca};
  auto s = HttpServer::Start(o, [](HttpRequest&& r, HttpResponder respond) {
    respond(HttpResponse::Json(200, "{\"principal\":\"" + r.tls_principal + "\"}"));
  });
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto r = Get("127.0.0.1", (*s)->port(), {pki_.ca, pki_.client_cert, pki_.client_key});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "{\"principal\":\"gw-test\"}");
  // A header cannot forge it: the server sets the field, never a header.
  HttpClientOptions co;
  co.tls = {pki_.ca, pki_.client_cert, pki_.client_key};
  HttpClient c("https://127.0.0.1:" + std::to_string((*s)->port()), co);
  auto forged = c.Send("GET", "/", "", "application/json", {{"X-Principal", "admin"}});
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->body, "{\"principal\":\"gw-test\"}");
}

TEST_F(HttpTlsTest, Tls12CbcSuitesAreRefused) {
  auto server = Serve(false);
  ASSERT_NE(server, nullptr);
  const std::string addr = "127.0.0.1:" + std::to_string(server->port());
  // The test certificates are ECDSA. An AEAD suite handshakes; a CBC one does not (s_client exits non-zero on a failed handshake).
  EXPECT_EQ(testing::RunCommand({"/bin/sh", "-c",
                                 "openssl s_client -connect " + addr +
                                     " -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 -CAfile " +
                                     pki_.ca + " </dev/null"},
                                dir_.Sub("gcm.log"), 10000),
            0);
  for (const char* cbc : {"ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"}) {
    EXPECT_NE(testing::RunCommand({"/bin/sh", "-c",
                                   "openssl s_client -connect " + addr + " -tls1_2 -cipher " +
                                       cbc + " </dev/null"},
                                  dir_.Sub("cbc.log"), 10000),
              0)
        << cbc << " was accepted";
  }
}

TEST(TlsHostTest, LoopbackAndUrlHosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.3.4.5"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.7"));
  EXPECT_FALSE(IsLoopbackHost("broker.example"));
  EXPECT_EQ(UrlHost("https://broker.example:8443/x"), "broker.example");
  EXPECT_EQ(UrlHost("http://127.0.0.1:9092"), "127.0.0.1");
  EXPECT_EQ(UrlHost("https://[::1]:8443"), "::1");
  EXPECT_EQ(UrlHost("http://host"), "host");
}

}  // namespace
}  // namespace sluice
