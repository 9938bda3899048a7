// Identities and ACLs on the real sluice-broker binary over mutual TLS (issue 10, item 1 and
// "Authorization"): a client whose certificate the CA signed can no longer hijack another
// gateway's producer id, invent producer ids without bound, create topics, or touch groups it
// was not given; API keys authenticate where TLS ends elsewhere.
#include <gtest/gtest.h>

#include <fstream>

#include "cloud-broker/auth/acl.h"
#include "cloud-broker/auth/authorizer.h"
#include "cloud-broker/auth/producer_owners.h"
#include "core/http.h"
#include "core/record.h"
#include "core/record_batch.h"
#include "tests/common/test_env.h"
#include "tests/common/test_pki.h"

namespace sluice::broker {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::FreePort;
using sluice::testing::TempDir;

// A gateway-shaped batch: records of `device` with gateway_seq first..first+n-1.
std::string Batch(int64_t producer_id, int64_t first_seq, int n, const std::string& device) {
  RecordBatch b;
  b.producer_id = producer_id;
  b.base_sequence = 0;
  for (int i = 0; i < n; ++i) {
    Record r;
    r.timestamp_ms = 1714564800000 + i;
    r.key = device;
    r.value = "{\"v\":" + std::to_string(i) + "}";
    r.headers = {{kHeaderSensor, "temp"},
                 {kHeaderCountry, "DE"},
                 {kHeaderGatewayId, "gw-test"},
                 {kHeaderGatewaySeq, std::to_string(first_seq + i)},
                 {kHeaderIngestTs, std::to_string(1714564800000 + i)},
                 {kHeaderSource, "http"}};
    b.records.push_back(std::move(r));
  }
  return EncodeBatch(b);
}

class BrokerAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(testing::MakeTestPki(dir_.Sub("pki"), &pki_, &error)) << error;
    ASSERT_TRUE(testing::MakeClientCert(dir_.Sub("pki"), "intruder", &intruder_cert_,
                                        &intruder_key_, &error))
        << error;
    ASSERT_TRUE(testing::MakeClientCert(dir_.Sub("pki"), "admin", &admin_cert_, &admin_key_,
                                        &error))
        << error;
    port_ = FreePort();
  }

  void StartBroker(const std::string& extra = "") {
    const std::string yaml =
        "broker:\n  id: b1\n  data_dir: " + dir_.Sub("data") +
        "\nregion:\n  name: eu-central\n  countries: [DE, FR]\nhttp:\n  host: 127.0.0.1\n"
        "  port: " + std::to_string(port_) +
        "\n  threads: 2\n  tls:\n    cert_file: " + pki_.server_cert + "\n    key_file: " +
        pki_.server_key + "\n    client_ca_file: " + pki_.ca +
        "\ntopics:\n  auto_create: true\n  default_partitions: 2\n"
        "producers:\n  max_ids_per_principal: 4\n"
        "auth:\n  acls:\n"
        "    - principal: gw-test\n      operations: [produce, fetch]\n      topics: [sensors]\n"
        "    - principal: intruder\n      operations: [produce, fetch, group]\n"
        "      topics: [sensors]\n      groups: [intruder-*]\n"
        "    - principal: admin\n      operations: [admin, fetch, query, group]\n"
        "      topics: [\"*\"]\n      groups: [\"*\"]\n" +
        extra;
    const std::string path = dir_.Sub("broker.yaml");
    std::ofstream(path) << yaml;
    broker_ = ChildProcess::Start({BinPath("sluice-broker"), "--config", path},
                                  dir_.Sub("broker.log"));
    ASSERT_NE(broker_, nullptr);
    ASSERT_TRUE(testing::WaitFor([&] { return Get(Client("gw-test"), "/healthz").status == 200; },
                                 20000))
        << broker_->ReadLog();
  }

  std::unique_ptr<HttpClient> Client(const std::string& who) {
    HttpClientOptions o;
    o.timeout_ms = 10000;
    o.tls.ca_file = pki_.ca;
    if (who == "gw-test") {
      o.tls.cert_file = pki_.client_cert;
      o.tls.key_file = pki_.client_key;
    } else if (who == "intruder") {
      o.tls.cert_file = intruder_cert_;
      o.tls.key_file = intruder_key_;
    } else {
      o.tls.cert_file = admin_cert_;
      o.tls.key_file = admin_key_;
    }
    return std::make_unique<HttpClient>("https://127.0.0.1:" + std::to_string(port_), o);
  }

  static HttpResponse Get(const std::unique_ptr<HttpClient>& c, const std::string& path) {
    Result<HttpResponse> r = c->Get(path);
    return r.ok() ? *r : HttpResponse{-1, "", r.status().message(), {}};
  }

  static HttpResponse Post(const std::unique_ptr<HttpClient>& c, const std::string& path,
                           const std::string& body,
                           const std::string& type = "application/vnd.kafka.record-batch.v2") {
    Result<HttpResponse> r = c->Send("POST", path, body, type);
    return r.ok() ? *r : HttpResponse{-1, "", r.status().message(), {}};
  }

  // Records stored in sensors, across both partitions.
  int64_t Stored() {
    HttpResponse r = Get(Client("admin"), "/v1/topics/sensors");
    int64_t total = 0;
    size_t pos = 0;
    while ((pos = r.body.find("\"end_offset\":", pos)) != std::string::npos) {
      pos += 13;
      total += std::stoll(r.body.substr(pos));
    }
    return total;
  }

  TempDir dir_;
  testing::TestPki pki_;
  std::string intruder_cert_, intruder_key_, admin_cert_, admin_key_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> broker_;
};

TEST_F(BrokerAuthTest, AnotherPrincipalCannotUseAGatewaysProducerId) {
  ASSERT_NO_FATAL_FAILURE(StartBroker());
  const int64_t pid = 7777;
  auto gw = Client("gw-test");
  auto intruder = Client("intruder");
  HttpResponse first = Post(gw, "/v1/topics/sensors/records", Batch(pid, 1, 10, "pump-1"));
  ASSERT_EQ(first.status, 200) << first.body;
  // The attack of issue 10 item 1: the gateway's producer id with a huge gateway_seq. On the
  // old broker this answered 200 and every later real batch counted as a duplicate.
  HttpResponse attack =
      Post(intruder, "/v1/topics/sensors/records", Batch(pid, 1000000000000, 1, "pump-1"));
  EXPECT_EQ(attack.status, 403) << attack.body;
  EXPECT_NE(attack.body.find("producer_not_owned"), std::string::npos) << attack.body;
  HttpResponse next = Post(gw, "/v1/topics/sensors/records", Batch(pid, 11, 10, "pump-1"));
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_NE(next.body.find("\"duplicates\":0"), std::string::npos) << next.body;
  EXPECT_EQ(Stored(), 20);
  // The binding survives a restart.
  ASSERT_EQ(broker_->Stop(15, 20000), 0);
  ASSERT_NO_FATAL_FAILURE(StartBroker());
  attack = Post(Client("intruder"), "/v1/topics/sensors/records",
                Batch(pid, 1000000000000, 1, "pump-1"));
  EXPECT_EQ(attack.status, 403) << attack.body;
  next = Post(Client("gw-test"), "/v1/topics/sensors/records", Batch(pid, 21, 5, "pump-1"));
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(Stored(), 25);
}

TEST_F(BrokerAuthTest, InventedProducerIdsAreCappedPerPrincipal) {
  ASSERT_NO_FATAL_FAILURE(StartBroker());
  auto gw = Client("gw-test");
  auto intruder = Client("intruder");
  ASSERT_EQ(Post(gw, "/v1/topics/sensors/records", Batch(1, 1, 3, "pump-1")).status, 200);
  for (int64_t id = 100; id < 104; ++id) {
    ASSERT_EQ(Post(intruder, "/v1/topics/sensors/records", Batch(id, 1, 1, "x")).status, 200);
  }
  HttpResponse over = Post(intruder, "/v1/topics/sensors/records", Batch(104, 1, 1, "x"));
  EXPECT_EQ(over.status, 429) << over.body;
  EXPECT_NE(over.body.find("too_many_producer_ids"), std::string::npos);
  // The gateway's retry of its batch is still recognised as a duplicate (its state was kept).
  HttpResponse retry = Post(gw, "/v1/topics/sensors/records", Batch(1, 1, 3, "pump-1"));
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_NE(retry.body.find("\"duplicates\":3"), std::string::npos) << retry.body;
}

TEST_F(BrokerAuthTest, AclsDenyWhatWasNotGranted) {
  ASSERT_NO_FATAL_FAILURE(StartBroker());
  auto gw = Client("gw-test");
  auto intruder = Client("intruder");
  auto admin = Client("admin");
  ASSERT_EQ(Post(gw, "/v1/topics/sensors/records", Batch(1, 1, 3, "pump-1")).status, 200);
  // Produce to a topic not granted (auto-create included): 403, and nothing created.
  HttpResponse other = Post(gw, "/v1/topics/secrets/records", Batch(-1, 1, 1, "pump-1"));
  EXPECT_EQ(other.status, 403) << other.body;
  // Topic creation needs admin.
  EXPECT_EQ(Post(intruder, "/v1/topics", "{\"name\":\"mine\",\"partitions\":1}",
                 "application/json")
                .status,
            403);
  EXPECT_EQ(Post(admin, "/v1/topics", "{\"name\":\"mine\",\"partitions\":1}", "application/json")
                .status,
            201);
  // The topic list shows only what the principal may fetch.
  HttpResponse list = Get(gw, "/v1/topics");
  EXPECT_NE(list.body.find("\"sensors\""), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("\"mine\""), std::string::npos) << list.body;
  // Query needs the query operation.
  EXPECT_EQ(Get(gw, "/v1/query?country=DE").status, 403);
  EXPECT_EQ(Get(admin, "/v1/query?country=DE").status, 200);
  // Another group's offsets: the old broker let any client commit 10^12 for it.
  const std::string commit =
      "{\"member_id\":\"m\",\"generation\":1,\"offsets\":[{\"topic\":\"sensors\",\"partition\":0,"
      "\"offset\":1000000000000}]}";
  HttpResponse g = Post(intruder, "/v1/groups/dashboards/commit", commit, "application/json");
  EXPECT_EQ(g.status, 403) << g.body;
  EXPECT_NE(g.body.find("may not group on dashboards"), std::string::npos) << g.body;
  // Its own groups are allowed through to the group coordinator (which judges the request).
  HttpResponse own = Post(intruder, "/v1/groups/intruder-1/commit", commit, "application/json");
  EXPECT_NE(own.status, 403) << own.body;
  // Refusals are counted.
  HttpResponse metrics = Get(admin, "/metrics");
  EXPECT_GE(testing::MetricSum(metrics.body, "sluice_broker_auth_refusals_total"), 4.0);
}

TEST_F(BrokerAuthTest, ApiKeysAuthenticateWhereTlsEndsElsewhere) {
  // TLS without client certificates, API keys instead.
  const std::string token = "s3cret-token-of-the-dashboards";
  const std::string yaml =
      "broker:\n  id: b1\n  data_dir: " + dir_.Sub("data2") +
      "\nregion:\n  name: eu-central\n  countries: [DE]\nhttp:\n  host: 127.0.0.1\n  port: " +
      std::to_string(port_) + "\n  tls:\n    cert_file: " + pki_.server_cert +
      "\n    key_file: " + pki_.server_key +
      "\nauth:\n  api_keys:\n    - principal: dashboards\n      sha256: " + Sha256Hex(token) +
      "\n  acls:\n    - principal: dashboards\n      operations: [query]\n";
  const std::string path = dir_.Sub("broker2.yaml");
  std::ofstream(path) << yaml;
  broker_ = ChildProcess::Start({BinPath("sluice-broker"), "--config", path},
                                dir_.Sub("broker2.log"));
  ASSERT_NE(broker_, nullptr);
  HttpClientOptions o;
  o.timeout_ms = 10000;
  o.tls.ca_file = pki_.ca;
  HttpClient c("https://127.0.0.1:" + std::to_string(port_), o);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = c.Get("/healthz");
        return r.ok() && r->status == 200;  // /healthz needs no credentials
      },
      20000))
      << broker_->ReadLog();
  auto none = c.Get("/v1/query");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->status, 401);
  auto wrong = c.Send("GET", "/v1/query", "", "application/json",
                      {{"Authorization", "Bearer not-the-token"}});
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401);
  auto right = c.Send("GET", "/v1/query", "", "application/json",
                      {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(right.ok());
  EXPECT_EQ(right->status, 200) << right->body;
  // A client configured with the key (forward.tls.bearer_token, the CLI's --token) sends it on
  // every request.
  HttpClientOptions keyed = o;
  keyed.tls.bearer_token = token;
  HttpClient k("https://127.0.0.1:" + std::to_string(port_), keyed);
  auto by_option = k.Get("/v1/query");
  ASSERT_TRUE(by_option.ok());
  EXPECT_EQ(by_option->status, 200) << by_option->body;
  const std::string url = "https://127.0.0.1:" + std::to_string(port_);
  EXPECT_EQ(testing::RunCommand({BinPath("sluice"), "query", "--broker", url, "--ca-file", pki_.ca,
                                 "--token", token},
                                dir_.Sub("cli.log"), 20000),
            0)
      << testing::ReadFileOrEmpty(dir_.Sub("cli.log"));
  EXPECT_EQ(testing::RunCommand({BinPath("sluice"), "query", "--broker", url, "--ca-file", pki_.ca,
                                 "--token", "wrong"},
                                dir_.Sub("cli2.log"), 20000),
            1);
  EXPECT_NE(testing::ReadFileOrEmpty(dir_.Sub("cli2.log")).find("401"), std::string::npos)
      << testing::ReadFileOrEmpty(dir_.Sub("cli2.log"));
  auto produce = c.Send("POST", "/v1/topics/sensors/records", Batch(-1, 1, 1, "d"),
                        "application/vnd.kafka.record-batch.v2",
                        {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(produce.ok());
  EXPECT_EQ(produce->status, 403);
}

TEST_F(BrokerAuthTest, AuthOnWithoutAclsIsAStartUpError) {
  const std::string yaml =
      "broker:\n  id: b1\n  data_dir: " + dir_.Sub("data3") +
      "\nregion:\n  name: eu-central\n  countries: [DE]\nhttp:\n  host: 127.0.0.1\n  port: " +
      std::to_string(port_) + "\n  tls:\n    cert_file: " + pki_.server_cert +
      "\n    key_file: " + pki_.server_key + "\n    client_ca_file: " + pki_.ca + "\n";
  const std::string path = dir_.Sub("broker3.yaml");
  std::ofstream(path) << yaml;
  auto p = ChildProcess::Start({BinPath("sluice-broker"), "--config", path},
                               dir_.Sub("broker3.log"));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->WaitExit(20000), 2) << p->ReadLog();
  EXPECT_NE(p->ReadLog().find("auth.acls"), std::string::npos) << p->ReadLog();
}

TEST(AclTest, PatternsOperationsAndPrincipals) {
  EXPECT_TRUE(AclPatternMatches("*", "anything"));
  EXPECT_TRUE(AclPatternMatches("dash-*", "dash-1"));
  EXPECT_FALSE(AclPatternMatches("dash-*", "dash"));
  EXPECT_TRUE(AclPatternMatches("sensors", "sensors"));
  EXPECT_FALSE(AclPatternMatches("sensors", "sensors2"));
  AclRule r;
  r.principal = "gw";
  r.ops = static_cast<uint32_t>(AclOp::kProduce);
  r.topics = {"sensors"};
  AclSet acls({r});
  EXPECT_TRUE(acls.Allows("gw", AclOp::kProduce, "sensors"));
  EXPECT_FALSE(acls.Allows("gw", AclOp::kFetch, "sensors"));
  EXPECT_FALSE(acls.Allows("gw", AclOp::kProduce, "other"));
  EXPECT_FALSE(acls.Allows("gw2", AclOp::kProduce, "sensors"));
  EXPECT_FALSE(AclSet().Allows("gw", AclOp::kProduce, "sensors"));  // deny by default
}

TEST(AclTest, ConfigErrorsNameTheRule) {
  Config c = Config::Parse("auth:\n  acls:\n    - principal: a\n      operations: [write]\n",
                           "t.yaml");
  try {
    AclSet::FromConfig(c, "auth.acls");
    FAIL() << "an unknown operation was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown operation \"write\""), std::string::npos)
        << e.what();
  }
  Config no_topics =
      Config::Parse("auth:\n  acls:\n    - principal: a\n      operations: [produce]\n", "t.yaml");
  EXPECT_THROW(AclSet::FromConfig(no_topics, "auth.acls"), ConfigError);
}

TEST(ProducerOwnersTest, ClaimsAreDurableAndATornTailIsIgnored) {
  TempDir dir;
  {
    auto owners = ProducerOwners::Open(dir.path(), 2);
    ASSERT_TRUE(owners.ok());
    EXPECT_TRUE((*owners)->Claim(1, "a").ok());
    EXPECT_TRUE((*owners)->Claim(1, "a").ok());
    EXPECT_EQ((*owners)->Claim(1, "b").code(), StatusCode::kPermissionDenied);
    EXPECT_TRUE((*owners)->Claim(2, "a").ok());
    EXPECT_EQ((*owners)->Claim(3, "a").code(), StatusCode::kResourceExhausted);
  }
  {
    std::ofstream(dir.Sub("producer-owners"), std::ios::app) << "9 tor";  // no newline
  }
  auto again = ProducerOwners::Open(dir.path(), 2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->OwnerOf(1), "a");
  EXPECT_EQ((*again)->OwnerOf(2), "a");
  EXPECT_EQ((*again)->OwnerOf(9), "");
  EXPECT_TRUE((*again)->Claim(9, "b").ok());
  auto third = ProducerOwners::Open(dir.path(), 2);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)->OwnerOf(9), "b");
}

}  // namespace
}  // namespace sluice::broker
