// Hostile and careless clients against the whole deployment as real processes (issue 10, "Show
// it"): while a device fleet runs through the gateways, an attacker sends the brokers and the DE
// gateway what broke them before (each item's own test, failing on the old code, sits with its
// module; this suite shows them together, under live traffic). Every attack gets a precise 4xx
// or a closed connection; afterwards every process is still up and serving, and every event the
// fleet had acknowledged is stored exactly once in its region.
// Each attack's numbered item is from issue 10's "Found" list.
#include <gtest/gtest.h>

#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "core/http.h"
#include "core/record.h"
#include "core/record_batch.h"
#include "tests/common/raw_conn.h"
#include "tests/integration/cluster.h"
#include "tests/integration/fleet_check.h"

namespace sluice::testing {
namespace {

Record AttackRecord(const std::string& device, int64_t ts, std::string value) {
  Record r;
  r.timestamp_ms = ts;
  r.key = device;
  r.value = std::move(value);
  r.headers = {{kHeaderSensor, "temp"},
               {kHeaderCountry, "DE"},
               {kHeaderGatewayId, "attacker"},
               {kHeaderGatewaySeq, "1"},
               {kHeaderIngestTs, std::to_string(ts)},
               {kHeaderSource, "http"}};
  return r;
}

std::string Batch(std::vector<Record> records, int16_t attributes = 0) {
  RecordBatch b;
  b.attributes = attributes;
  b.records = std::move(records);
  return EncodeBatch(b);
}

int Status(HttpClient& c, const std::string& method, const std::string& path,
           const std::string& body, const std::string& type, std::string* answer = nullptr) {
  Result<HttpResponse> r = c.Send(method, path, body, type);
  if (!r.ok()) {
    return -1;
  }
  if (answer != nullptr) {
    *answer = r->body;
  }
  return r->status;
}

TEST(HostileClientsTest, AttacksUnderLiveTrafficChangeNothingAndCrashNothing) {
  TempDir dir;
  std::string error;
  auto cluster = Cluster::Start(dir, &error);
  ASSERT_NE(cluster, nullptr) << error;
  const int eu = cluster->broker_port("eu-central");
  const int gw = cluster->gateway_de_port();

  // The fleet runs while the attacks go on.
  const std::string manifest_path = dir.Sub("manifest.json");
  auto fleet = std::async(std::launch::async, [&] {
    return cluster->RunSim(manifest_path,
                           {"sim.devices=40", "sim.duration=4s", "sim.rate_per_device=5"}, 180000);
  });

  HttpClientOptions co;
  co.timeout_ms = 20000;
  HttpClient broker("http://127.0.0.1:" + std::to_string(eu), co);
  HttpClient gateway("http://127.0.0.1:" + std::to_string(gw), co);
  const std::string kBatchType = "application/vnd.kafka.record-batch.v2";
  const int64_t now = 1714564800000;

  // Item 2: two country headers, DE then US.
  Record two = AttackRecord("att-2", now, "{}");
  two.headers.push_back({kHeaderCountry, "US"});
  EXPECT_EQ(Status(broker, "POST", "/v1/topics/sensors/records", Batch({two}), kBatchType), 400);
  EXPECT_EQ(Status(gateway, "POST", "/v1/events",
                   R"({"device_id":"att-2","country":"DE","country":"US"})", "application/json"),
            400);
  // Item 4: JSON nested 70,000 deep: refused at the gateway; stored as bytes by the broker (a
  // Kafka producer may send anything) and then read back by fetch and query without a crash.
  const std::string deep = std::string(70000, '[') + std::string(70000, ']');
  EXPECT_EQ(Status(gateway, "POST", "/v1/events", "{\"device_id\":\"att-4\",\"v\":" + deep + "}",
                   "application/json"),
            400);
  ASSERT_EQ(Status(broker, "POST", "/v1/topics/attacks/records",
                   Batch({AttackRecord("att-4", now, deep)}), kBatchType),
            200);
  EXPECT_EQ(Status(broker, "GET", "/v1/topics/attacks/partitions/0/records?offset=0", "", ""),
            200);
  EXPECT_EQ(Status(broker, "GET", "/v1/query?device_id=att-4", "", ""), 200);
  // Item 6: a 512 MiB chunked body and a 50 MB header line.
  {
    RawConn c(eu);
    c.Send("POST /v1/topics/sensors/records HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "100000\r\n" + std::string(1 << 20, 'a') + "\r\n";
    size_t sent = 0;
    for (int i = 0; i < 512; ++i) {
      const size_t n = c.Send(chunk);
      sent += n;
      if (n < chunk.size()) {
        break;
      }
    }
    EXPECT_LT(sent, size_t{128} << 20) << "the broker read on past its body limit";
  }
  {
    RawConn c(gw);
    const size_t sent =
        c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(50 << 20, 'a'));
    EXPECT_LT(sent, size_t{50} << 20) << "the gateway buffered a 50 MB header line";
  }
  // Item 6: a record with 100,000 empty headers, and a 1 MB consumer-group member id.
  Record many = AttackRecord("att-6", now, "{}");
  many.headers.resize(100000);
  EXPECT_EQ(Status(broker, "POST", "/v1/topics/sensors/records", Batch({many}), kBatchType), 400);
  EXPECT_EQ(Status(broker, "POST", "/v1/groups/g/join",
                   "{\"member_id\":\"" + std::string(1 << 20, 'm') + "\",\"topics\":[\"sensors\"]}",
                   "application/json"),
            400);
  // Item 6 (bounded counts): one group takes at most groups.max_members (1,000) members; every
  // join is a rebalance over all of them, so an unbounded group was unbounded memory and CPU.
  int joined = 0;
  int full = 0;
  for (int i = 0; i < 1001; ++i) {
    std::string answer;
    const int st = Status(broker, "POST", "/v1/groups/crowd/join",
                          R"({"topics":["attacks"],"session_timeout_ms":300000})",
                          "application/json", &answer);
    joined += st == 200 ? 1 : 0;
    if (st == 409 && answer.find("group_max_size_reached") != std::string::npos) {
      ++full;
    }
  }
  EXPECT_EQ(joined, 1000);
  EXPECT_EQ(full, 1);
  // Item 7: idle and trickling connections are closed, and do not stop others being served.
  std::vector<std::unique_ptr<RawConn>> idle;
  for (int i = 0; i < 50; ++i) {
    idle.push_back(std::make_unique<RawConn>(eu));
    idle.back()->Send("GET /healthz HTTP/1.1\r\n");  // never finished
  }
  EXPECT_EQ(Status(broker, "GET", "/healthz", "", ""), 200);
  // Item 9: a timestamp of INT64_MAX, at the gateway and at the broker.
  EXPECT_EQ(Status(gateway, "POST", "/v1/events",
                   R"({"device_id":"att-9","ts":9223372036854775807})", "application/json"),
            400);
  EXPECT_EQ(Status(broker, "POST", "/v1/topics/sensors/records",
                   Batch({AttackRecord("att-9", INT64_MAX, "{}")}), kBatchType),
            400);
  // Item 11: a NUL byte between two events, and invalid UTF-8.
  EXPECT_EQ(Status(gateway, "POST", "/v1/events",
                   std::string("{\"device_id\":\"a\"}\0{\"device_id\":\"b\"}", 35),
                   "application/x-ndjson"),
            400);
  EXPECT_EQ(Status(gateway, "POST", "/v1/events", "{\"device_id\":\"att-11\",\"sensor\":\"\xc3\x28\"}",
                   "application/json"),
            400);
  // Item 12: transactional and control attribute bits, a 249-character topic, a NUL in a name.
  EXPECT_EQ(Status(broker, "POST", "/v1/topics/sensors/records",
                   Batch({AttackRecord("att-12", now, "{}")}, 0x10), kBatchType),
            400);
  EXPECT_EQ(Status(broker, "POST", "/v1/topics/sensors/records",
                   Batch({AttackRecord("att-12", now, "{}")}, 0x20), kBatchType),
            400);
  EXPECT_EQ(Status(broker, "POST", "/v1/topics/" + std::string(249, 't') + "/records",
                   Batch({AttackRecord("att-12", now, "{}")}), kBatchType),
            400);
  EXPECT_EQ(Status(broker, "POST", "/v1/topics", R"({"name":"a\u0000b"})", "application/json"),
            400);
  // Item 10: numbers come back exactly as sent.
  const std::string exact = R"({"device_id":"att-10","v":0.49528059050664996,"big":123456789012345678901234567890})";
  ASSERT_EQ(Status(gateway, "POST", "/v1/events", exact, "application/json"), 202);

  // The fleet's own traffic was served throughout.
  ASSERT_EQ(fleet.get(), 0) << ReadFileOrEmpty(dir.Sub("sim.log")) << cluster->LogTails();
  std::vector<ManifestDevice> devices;
  ManifestTotals totals;
  ASSERT_TRUE(LoadManifest(manifest_path, &devices, &totals, &error)) << error;
  EXPECT_EQ(totals.http_failed, 0u);
  EXPECT_EQ(totals.mqtt_errors, 0u);
  ASSERT_TRUE(WaitFor([&] { return cluster->GatewayBufferedRecords() == 0; }, 60000, 250))
      << cluster->LogTails();
  std::string answer;
  ASSERT_TRUE(WaitFor(
      [&] {
        return Status(broker, "GET", "/v1/query?device_id=att-10", "", "", &answer) == 200 &&
               answer.find("att-10") != std::string::npos;
      },
      30000, 250));
  EXPECT_NE(answer.find("0.49528059050664996"), std::string::npos) << answer;
  EXPECT_NE(answer.find("123456789012345678901234567890"), std::string::npos) << answer;
  idle.clear();
  EXPECT_EQ(cluster->DeadProcesses(), "");
  const int64_t dropped = MosquittoDropped(dir, cluster->mqtt_port());
  CheckFleetStored(*cluster, devices, totals, dropped);
  EXPECT_EQ(cluster->StopGracefully(), "");
}

}  // namespace
}  // namespace sluice::testing
