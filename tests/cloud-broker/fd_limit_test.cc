// The real sluice-broker under a low open-file limit (`ulimit -n` in /bin/sh before exec):
// - with many more partitions than the limit could hold open at once, every partition still
//   takes appends and serves reads, before and after a restart (log.max_open_files);
// - when the process is out of descriptors (idle connections hold them all), creating a topic,
//   explicitly or by produce, answers a retryable 503 naming the cause (never 404
//   unknown_topic), leaves no directory or topic file behind, and succeeds once fds are free.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/http.h"
#include "core/record_batch.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/raw_conn.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::RawConn;
using sluice::testing::TempDir;
using testing::EncodeRecords;
using testing::MakeRecord;
namespace fs = std::filesystem;

std::string Yaml(const std::string& data_dir, int port, const std::string& extra_http) {
  return "broker:\n  id: fd\n  data_dir: " + data_dir +
         "\nregion:\n  name: eu-central\n  countries: [DE]\nhttp:\n  host: 127.0.0.1\n"
         "  port: " + std::to_string(port) + "\n  threads: 2\n" + extra_http +
         "topics:\n  auto_create: true\n  default_partitions: 2\n"
         "log:\n  segment_bytes: 4KiB\n  flush: always\nlog_level: info\n";
}

// sluice-broker with RLIMIT_NOFILE = nofile (soft and hard), on a free port.
std::unique_ptr<ChildProcess> StartBroker(const TempDir& dir, const std::string& name,
                                          int nofile, const std::string& extra_http, int* port) {
  *port = sluice::testing::FreePort();
  const std::string cfg = dir.Sub(name + ".yaml");
  std::ofstream(cfg) << Yaml(dir.Sub("data"), *port, extra_http);
  auto proc = ChildProcess::Start(
      {"/bin/sh", "-c",
       "ulimit -n " + std::to_string(nofile) + " && exec \"$0\" --config \"$1\"",
       BinPath("sluice-broker"), cfg},
      dir.Sub(name + ".out"));
  EXPECT_NE(proc, nullptr);
  EXPECT_TRUE(sluice::testing::WaitHttpOk(*port, "/healthz", 20000))
      << (proc ? proc->ReadLog() : "");
  return proc;
}

// Records for `topic` whose keys land in both of its 2 partitions (payload names the topic).
std::string Batch(const std::string& topic, int round) {
  std::vector<Record> recs;
  for (int i = 0; i < 8; ++i) {
    recs.push_back(MakeRecord("dev-" + std::to_string(i), "DE", 1'700'000'000'000 + i,
                              "{\"id\":\"" + topic + "-" + std::to_string(round) + "-" +
                                  std::to_string(i) + "\"}"));
  }
  return EncodeRecords(recs);
}

// Every payload id of the topic, both partitions, in offset order.
std::vector<std::string> ReadTopic(HttpClient& client, const std::string& topic) {
  std::vector<std::string> ids;
  for (int p = 0; p < 2; ++p) {
    auto r = client.Get("/v1/topics/" + topic + "/partitions/" + std::to_string(p) +
                        "/records?offset=0&max_records=1000");
    EXPECT_TRUE(r.ok() && r->status == 200)
        << topic << "/" << p << ": " << (r.ok() ? r->body : r.status().ToString());
    if (!r.ok() || r->status != 200) {
      return ids;
    }
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    for (const auto& rec : d["records"].GetArray()) {
      ids.push_back(rec["payload"]["id"].GetString());
    }
  }
  return ids;
}

size_t OpenFds(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (fs::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return n;
}

// 60 topics x 2 partitions under a limit of 96 descriptors: the old broker held 3 per
// partition (.log, .index, .timeindex) forever and failed past ~30 partitions.
TEST(FdLimitTest, ManyMorePartitionsThanTheFdLimitAllServeAppendsAndReads) {
  TempDir dir;
  constexpr int kNofile = 96;
  constexpr int kTopics = 60;
  int port = 0;
  auto broker = StartBroker(dir, "first", kNofile, "", &port);
  ASSERT_NE(broker, nullptr);
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  for (int round = 0; round < 2; ++round) {  // the second round reopens every partition
    for (int t = 0; t < kTopics; ++t) {
      const std::string topic = "t" + std::to_string(t);
      auto r = client.Send("POST", "/v1/topics/" + topic + "/records", Batch(topic, round),
                           "application/vnd.kafka.record-batch.v2");
      ASSERT_TRUE(r.ok() && r->status == 200)
          << topic << " round " << round << ": " << (r.ok() ? r->body : r.status().ToString())
          << "\n" << broker->ReadLog();
    }
  }
  for (int t = 0; t < kTopics; ++t) {
    EXPECT_EQ(ReadTopic(client, "t" + std::to_string(t)).size(), 16u) << "t" << t;
  }
  EXPECT_LT(OpenFds(broker->pid()), static_cast<size_t>(kNofile));
  ASSERT_EQ(broker->Stop(), 0) << broker->ReadLog();

  // A restart recovers every partition under the same limit, and each still takes appends.
  broker = StartBroker(dir, "second", kNofile, "", &port);
  ASSERT_NE(broker, nullptr);
  HttpClient again("http://127.0.0.1:" + std::to_string(port));
  for (int t = 0; t < kTopics; ++t) {
    const std::string topic = "t" + std::to_string(t);
    auto r = again.Send("POST", "/v1/topics/" + topic + "/records", Batch(topic, 2),
                        "application/vnd.kafka.record-batch.v2");
    ASSERT_TRUE(r.ok() && r->status == 200)
        << topic << ": " << (r.ok() ? r->body : r.status().ToString()) << "\n"
        << broker->ReadLog();
  }
  for (int t = 0; t < kTopics; ++t) {
    const std::vector<std::string> ids = ReadTopic(again, "t" + std::to_string(t));
    ASSERT_EQ(ids.size(), 24u) << "t" << t;
  }
}

std::string Request(const std::string& method, const std::string& path, const std::string& type,
                    const std::string& body) {
  return method + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

int StatusOf(const std::string& response) {
  return response.size() > 12 && response.compare(0, 9, "HTTP/1.1 ") == 0
             ? std::stoi(response.substr(9, 3))
             : -1;
}

bool LeftAnything(const TempDir& dir, const std::string& topic) {
  for (const char* sub : {"data/logs", "data/topics"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir.Sub(sub), ec)) {
      if (e.path().filename().string().rfind(topic, 0) == 0) {
        return true;
      }
    }
  }
  return false;
}

TEST(FdLimitTest, OutOfFdsCreateAnswers503LeavesNothingAndSucceedsLater) {
  TempDir dir;
  constexpr int kNofile = 64;
  int port = 0;
  // Connections may take every descriptor, so the log is the one to run out.
  auto broker = StartBroker(dir, "b", kNofile, "  max_connections: 1000\n", &port);
  ASSERT_NE(broker, nullptr);
  RawConn admin(port);
  ASSERT_TRUE(admin.ok());
  admin.Send(Request("GET", "/healthz", "text/plain", ""));
  ASSERT_EQ(StatusOf(admin.ReadResponse(5000)), 200);

  std::vector<std::unique_ptr<RawConn>> idle;
  ASSERT_TRUE(sluice::testing::WaitFor(
      [&] {
        if (OpenFds(broker->pid()) >= static_cast<size_t>(kNofile)) {
          return true;
        }
        idle.push_back(std::make_unique<RawConn>(port));
        return false;
      },
      20000, 5))
      << OpenFds(broker->pid()) << " fds open after " << idle.size() << " connections";

  admin.Send(Request("POST", "/v1/topics", "application/json",
                     "{\"name\":\"fresh\",\"partitions\":2}"));
  std::string resp = admin.ReadResponse(10000);
  EXPECT_EQ(StatusOf(resp), 503) << resp;
  EXPECT_NE(resp.find("Too many open files"), std::string::npos) << resp;
  EXPECT_FALSE(LeftAnything(dir, "fresh")) << "a failed create left files behind";

  admin.Send(Request("POST", "/v1/topics/auto/records", "application/vnd.kafka.record-batch.v2",
                     Batch("auto", 0)));
  resp = admin.ReadResponse(10000);
  EXPECT_EQ(StatusOf(resp), 503) << resp;
  EXPECT_EQ(resp.find("unknown_topic"), std::string::npos) << resp;
  EXPECT_NE(resp.find("Too many open files"), std::string::npos) << resp;
  EXPECT_NE(resp.find("Retry-After"), std::string::npos) << resp;
  EXPECT_FALSE(LeftAnything(dir, "auto")) << "a failed auto-create left files behind";

  idle.clear();
  ASSERT_TRUE(sluice::testing::WaitFor(
      [&] { return OpenFds(broker->pid()) < static_cast<size_t>(kNofile) - 16; }, 20000));
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  auto created = client.Send("POST", "/v1/topics", "{\"name\":\"fresh\",\"partitions\":2}",
                             "application/json");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->status, 201) << created->body;
  auto produced = client.Send("POST", "/v1/topics/auto/records", Batch("auto", 0),
                              "application/vnd.kafka.record-batch.v2");
  ASSERT_TRUE(produced.ok());
  EXPECT_EQ(produced->status, 200) << produced->body;
  EXPECT_EQ(ReadTopic(client, "auto").size(), 8u);
  const std::string log = broker->ReadLog();
  EXPECT_NE(log.find("Too many open files"), std::string::npos) << "not logged";
  std::string metrics;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/metrics", &metrics), 200);
  EXPECT_GE(sluice::testing::MetricSum(metrics, "sluice_broker_file_open_failures_total"), 1.0)
      << metrics.substr(0, 4000);
}

}  // namespace
}  // namespace sluice::broker
