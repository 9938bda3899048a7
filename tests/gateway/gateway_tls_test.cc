// TLS between real processes: a broker that requires mutual TLS, a gateway forwarding to it
// over https with its own certificate (records arrive), a gateway whose certificate another CA
// signed (nothing arrives, it keeps the records and counts the failures), and the start-up
// rule that plaintext to or from a non-loopback address must be asked for.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "core/http.h"
#include "tests/common/test_env.h"
#include "tests/common/test_pki.h"

namespace sluice::testing {
namespace {

class GatewayTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(MakeTestPki(dir_.Sub("pki"), &pki_, &error)) << error;
  }

  std::unique_ptr<ChildProcess> StartBroker(int port) {
    // Mutual TLS turns the broker's auth on (deny by default): every certificate the CA signed
    // may produce and read here; the ACLs themselves are tested in broker_auth_test.cc.
    const std::string acls = dir_.Sub("acls.yaml");
    WriteFile(acls,
              "acls:\n  - principal: \"*\"\n    operations: [produce, fetch, query, admin]\n"
              "    topics: [\"*\"]\n");
    auto b = ChildProcess::Start(
        {BinPath("sluice-broker"), "--config", SourcePath("config/broker-eu-central.yaml"),
         "--set", "http.port=" + std::to_string(port), "--set",
         "broker.data_dir=" + dir_.Sub("broker"), "--set", "http.tls.cert_file=" + pki_.server_cert,
         "--set", "http.tls.key_file=" + pki_.server_key, "--set",
         "http.tls.client_ca_file=" + pki_.ca, "--set", "auth.acl_file=" + acls},
        dir_.Sub("broker.log"));
    return b;
  }

  std::unique_ptr<ChildProcess> StartGateway(const std::string& name, int port, int broker_port,
                                             const std::string& cert, const std::string& key) {
    return ChildProcess::Start(
        {BinPath("sluice-gateway"), "--config", SourcePath("config/gateway-de.yaml"), "--set",
         "gateway.id=" + name, "--set", "gateway.data_dir=" + dir_.Sub(name), "--set",
         "http.port=" + std::to_string(port), "--set", "mqtt.enabled=false", "--set",
         "residency.policy_file=" +
             WritePolicyWithBrokers(dir_.Sub(name + "-residency.yaml"),
                                    "https://127.0.0.1:" + std::to_string(broker_port),
                                    "https://127.0.0.1:1"),
         "--set", "forward.tls.ca_file=" + pki_.ca, "--set",
         "forward.tls.cert_file=" + cert, "--set", "forward.tls.key_file=" + key, "--set",
         "forward.backoff_initial=50ms", "--set", "forward.backoff_max=200ms"},
        dir_.Sub(name + ".log"));
  }

  // A metric of the broker, read over mutual TLS with the test client's certificate.
  double BrokerMetric(int port, const std::string& name) {
    HttpClientOptions o;
    o.tls = {pki_.ca, pki_.client_cert, pki_.client_key};
    HttpClient c("https://127.0.0.1:" + std::to_string(port), o);
    auto r = c.Get("/metrics");
    return r.ok() && r->status == 200 ? MetricSum(r->body, name) : -1;
  }

  double GatewayMetric(int port, const std::string& name) {
    std::string body;
    return HttpGet(port, "/metrics", &body) == 200 ? MetricSum(body, name) : -1;
  }

  void Post(int port, int n, const std::string& device) {
    HttpClient c("http://127.0.0.1:" + std::to_string(port));
    for (int i = 0; i < n; ++i) {
      auto r = c.Send("POST", "/v1/events",
                      "{\"device_id\":\"" + device + "\",\"v\":" + std::to_string(i) + "}");
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 202) << r->body;
    }
  }

  TempDir dir_;
  TestPki pki_;
};

TEST_F(GatewayTlsTest, GatewayWithTheCasCertificateDeliversOverMutualTls) {
  const int bport = FreePort();
  auto broker = StartBroker(bport);
  ASSERT_NE(broker, nullptr);
  ASSERT_TRUE(WaitFor([&] { return BrokerMetric(bport, "sluice_broker_records_appended_total") >= 0; },
                      15000))
      << broker->ReadLog();
  // Without a client certificate the broker answers nothing, not even /healthz.
  {
    HttpClientOptions o;
    o.timeout_ms = 3000;
    o.tls = {pki_.ca, "", ""};
    HttpClient anonymous("https://127.0.0.1:" + std::to_string(bport), o);
    EXPECT_FALSE(anonymous.Get("/healthz").ok());
  }
  const int gport = FreePort();
  auto gw = StartGateway("gw-good", gport, bport, pki_.client_cert, pki_.client_key);
  ASSERT_NE(gw, nullptr);
  ASSERT_TRUE(WaitHttpOk(gport, "/healthz", 15000)) << gw->ReadLog();
  Post(gport, 5, "dev-tls");
  EXPECT_TRUE(WaitFor([&] { return GatewayMetric(gport, "sluice_gateway_forwarded_total") >= 5; },
                      20000))
      << gw->ReadLog();
  EXPECT_EQ(BrokerMetric(bport, "sluice_broker_records_appended_total"), 5.0);
  // The CLI reads them back over mutual TLS; without a client certificate it cannot.
  const std::string url = "https://127.0.0.1:" + std::to_string(bport);
  std::string qlog = dir_.Sub("query.log");
  EXPECT_EQ(RunCommand({BinPath("sluice"), "query", "--broker", url, "--ca-file", pki_.ca,
                        "--cert", pki_.client_cert, "--key", pki_.client_key},
                       qlog, 20000),
            0)
      << ReadFileOrEmpty(qlog);
  EXPECT_NE(ReadFileOrEmpty(qlog).find("dev-tls"), std::string::npos) << ReadFileOrEmpty(qlog);
  qlog = dir_.Sub("query-anon.log");
  EXPECT_NE(RunCommand({BinPath("sluice"), "query", "--broker", url, "--ca-file", pki_.ca}, qlog,
                       20000),
            0)
      << ReadFileOrEmpty(qlog);
  EXPECT_NE(ReadFileOrEmpty(qlog).find("cannot reach"), std::string::npos) << ReadFileOrEmpty(qlog);
  EXPECT_NE(ReadFileOrEmpty(qlog).find("client certificate"), std::string::npos)
      << ReadFileOrEmpty(qlog);

  // The broker restarts while the gateway holds more: they arrive over TLS once, after it.
  ASSERT_EQ(WEXITSTATUS(broker->Stop(SIGTERM, 15000)), 0) << broker->ReadLog();
  Post(gport, 5, "dev-tls-2");
  broker = StartBroker(bport);
  ASSERT_NE(broker, nullptr);
  EXPECT_TRUE(WaitFor([&] { return GatewayMetric(gport, "sluice_gateway_forwarded_total") >= 10; },
                      30000))
      << gw->ReadLog();
  qlog = dir_.Sub("query-after.log");
  EXPECT_EQ(RunCommand({BinPath("sluice"), "query", "--broker", url, "--ca-file", pki_.ca,
                        "--cert", pki_.client_cert, "--key", pki_.client_key, "--json"},
                       qlog, 20000),
            0)
      << ReadFileOrEmpty(qlog);
  EXPECT_NE(ReadFileOrEmpty(qlog).find("\"matched\":10"), std::string::npos)
      << ReadFileOrEmpty(qlog);

  // A gateway whose certificate another CA signed: refused at the handshake; it keeps its
  // records and counts the failed attempts.
  const int rport = FreePort();
  auto rogue = StartGateway("gw-rogue", rport, bport, pki_.rogue_cert, pki_.rogue_key);
  ASSERT_NE(rogue, nullptr);
  ASSERT_TRUE(WaitHttpOk(rport, "/healthz", 15000)) << rogue->ReadLog();
  Post(rport, 3, "dev-rogue");
  EXPECT_TRUE(WaitFor(
      [&] { return GatewayMetric(rport, "sluice_gateway_forward_failures_total") >= 2; }, 20000))
      << rogue->ReadLog();
  EXPECT_EQ(GatewayMetric(rport, "sluice_gateway_forwarded_total"), 0.0);
  EXPECT_EQ(GatewayMetric(rport, "sluice_gateway_buffered_records"), 3.0);
  EXPECT_EQ(BrokerMetric(bport, "sluice_broker_records_appended_total"), 5.0);  // since restart
}

TEST_F(GatewayTlsTest, IngestEndpointOverMutualTls) {
  const int gport = FreePort();
  auto gw = ChildProcess::Start(
      {BinPath("sluice-gateway"), "--config", SourcePath("config/gateway-de.yaml"), "--set",
       "gateway.data_dir=" + dir_.Sub("gw-in"), "--set", "http.port=" + std::to_string(gport),
       "--set", "mqtt.enabled=false", "--set", "http.tls.cert_file=" + pki_.server_cert, "--set",
       "http.tls.key_file=" + pki_.server_key, "--set", "http.tls.client_ca_file=" + pki_.ca,
       "--set",
       "residency.policy_file=" + WritePolicyWithBrokers(dir_.Sub("gw-in-residency.yaml"),
                                                         "http://127.0.0.1:1",
                                                         "http://127.0.0.1:1")},
      dir_.Sub("gw-in.log"));
  ASSERT_NE(gw, nullptr);
  HttpClientOptions device;
  device.timeout_ms = 5000;
  device.tls = {pki_.ca, pki_.client_cert, pki_.client_key};
  HttpClient c("https://127.0.0.1:" + std::to_string(gport), device);
  ASSERT_TRUE(WaitFor([&] { auto r = c.Get("/healthz"); return r.ok() && r->status == 200; },
                      15000))
      << gw->ReadLog();
  auto r = c.Send("POST", "/v1/events", "{\"device_id\":\"dev-in\",\"v\":1}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 202) << r->body;
  // A device without a certificate, or speaking plaintext, is not heard.
  HttpClientOptions anon = device;
  anon.tls = {pki_.ca, "", ""};
  HttpClient a("https://127.0.0.1:" + std::to_string(gport), anon);
  EXPECT_FALSE(a.Send("POST", "/v1/events", "{\"device_id\":\"dev-x\",\"v\":1}").ok());
  HttpClientOptions plain;
  plain.timeout_ms = 3000;
  HttpClient p("http://127.0.0.1:" + std::to_string(gport), plain);
  auto pr = p.Send("POST", "/v1/events", "{\"device_id\":\"dev-x\",\"v\":1}");
  EXPECT_TRUE(!pr.ok() || pr->status != 202);
  auto m = c.Get("/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(MetricSum(m->body, "sluice_gateway_buffered_records"), 1.0) << m->body;
}

TEST_F(GatewayTlsTest, PlaintextOffLoopbackMustBeAskedFor) {
  std::string log = dir_.Sub("b.log");
  int code = RunCommand({BinPath("sluice-broker"), "--config",
                         SourcePath("config/broker-eu-central.yaml"), "--set",
                         "broker.data_dir=" + dir_.Sub("b"), "--set", "http.host=0.0.0.0"},
                        log, 20000);
  EXPECT_EQ(code, 2) << ReadFileOrEmpty(log);
  EXPECT_NE(ReadFileOrEmpty(log).find("http.host"), std::string::npos) << ReadFileOrEmpty(log);
  EXPECT_NE(ReadFileOrEmpty(log).find("TLS"), std::string::npos) << ReadFileOrEmpty(log);

  log = dir_.Sub("g.log");
  code = RunCommand({BinPath("sluice-gateway"), "--config", SourcePath("config/gateway-de.yaml"),
                     "--set", "gateway.data_dir=" + dir_.Sub("g"), "--set", "mqtt.enabled=false",
                     "--set",
                     "residency.policy_file=" +
                         WritePolicyWithBrokers(dir_.Sub("g-residency.yaml"),
                                                "http://10.1.2.3:9101", "http://127.0.0.1:1")},
                    log, 20000);
  EXPECT_EQ(code, 2) << ReadFileOrEmpty(log);
  EXPECT_NE(ReadFileOrEmpty(log).find("residency.policy_file"), std::string::npos)
      << ReadFileOrEmpty(log);
  EXPECT_NE(ReadFileOrEmpty(log).find("10.1.2.3"), std::string::npos) << ReadFileOrEmpty(log);
  EXPECT_NE(ReadFileOrEmpty(log).find("forward.insecure_plaintext"), std::string::npos)
      << ReadFileOrEmpty(log);

  // A wrong key for the certificate: refused at start-up with the file named.
  log = dir_.Sub("k.log");
  code = RunCommand({BinPath("sluice-broker"), "--config",
                     SourcePath("config/broker-eu-central.yaml"), "--set",
                     "broker.data_dir=" + dir_.Sub("k"), "--set",
                     "http.tls.cert_file=" + pki_.server_cert, "--set",
                     "http.tls.key_file=" + pki_.client_key},
                    log, 20000);
  EXPECT_EQ(code, 2) << ReadFileOrEmpty(log);
  EXPECT_NE(ReadFileOrEmpty(log).find(pki_.client_key), std::string::npos) << ReadFileOrEmpty(log);
}

}  // namespace
}  // namespace sluice::testing
