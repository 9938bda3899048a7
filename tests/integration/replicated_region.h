// ReplicationTest: the fixture of the replicated-region tests (replication_test.cc,
// replicated_groups_test.cc): one etcd (or a three-member cluster) and three real sluice-broker
// processes of eu-central on 127.0.0.1, with helpers to find leaders, produce and read back.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "core/http.h"
#include "core/record_batch.h"
#include "tests/common/etcd.h"
#include "tests/common/test_env.h"

namespace sluice {

using testing::ChildProcess;
using testing::EtcdCluster;
using testing::TempDir;
using testing::WaitFor;

constexpr int kBrokers = 3;
constexpr int64_t kProducer = 77;

struct Node {
  std::string id;
  int port = 0;
  std::string data;
  std::unique_ptr<ChildProcess> proc;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

class ReplicationTest : public ::testing::Test {
 protected:
  virtual int EtcdMembers() const { return 1; }
  // More `--set key=value` for every broker.
  virtual std::vector<std::string> ExtraSets() const { return {}; }
  // Broker i's replication.etcd_endpoints (comma-separated URLs).
  virtual std::string EtcdEndpointsFor(int /*i*/) { return EtcdList(); }

  void SetUp() override {
    etcd_ = EtcdCluster::Start(dir_, EtcdMembers());
    ASSERT_NE(etcd_, nullptr) << "etcd did not start (scripts/setup installs etcd-server)";
    for (int i = 0; i < kBrokers; ++i) {
      Node n;
      n.id = "b" + std::to_string(i + 1);
      n.port = testing::FreePort();
      n.data = dir_.Sub(n.id + "-data");
      nodes_.push_back(std::move(n));
    }
    for (int i = 0; i < kBrokers; ++i) {
      ASSERT_TRUE(StartNode(i));
    }
  }

  // The shipped config of a replicated eu-central broker, with shorter failure detection. Up
  // only when this broker answers /healthz with its own id: another test process may have taken
  // the port meanwhile (then this broker exits, and another port is tried).
  bool StartNode(int i) {
    Node& n = nodes_[i];
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (attempt > 0) {
        n.port = testing::FreePort();
      }
      std::vector<std::string> argv{
          testing::BinPath("sluice-broker"), "--config",
          testing::SourcePath("config/broker-eu-central-replicated.yaml"), "--set",
          "replication.lease_ttl=2s", "--set", "replication.replica_lag_max=3s", "--set",
          "replication.state_poll=100ms", "--set", "topics.default_partitions=2", "--set",
          "replication.etcd_endpoints=[" + EtcdEndpointsFor(i) + "]"};
      for (const std::string& set : ExtraSets()) {
        argv.push_back("--set");
        argv.push_back(set);
      }
      n.proc = ChildProcess::Start(
          argv, dir_.Sub(n.id + ".log"),
          {{"SLUICE_BROKER_ID", n.id},
           {"SLUICE_BROKER_PORT", std::to_string(n.port)},
           {"SLUICE_DATA_DIR", n.data},
           {"SLUICE_ETCD_URL", etcd_->endpoints()[0]},
           {"SLUICE_TEST_SYNC_JOURNAL", SyncJournal(i)}});
      if (n.proc == nullptr) {
        return false;
      }
      ChildProcess* proc = n.proc.get();
      std::string body;
      const bool up = WaitFor([&] {
        return !proc->Running() ||
               (testing::HttpGet(n.port, "/healthz", &body, 2000) == 200 &&
                body.find("\"broker_id\":\"" + n.id + "\"") != std::string::npos);
      }, 30000, 50);
      if (up && proc->Running()) {
        return true;
      }
      n.proc->Stop(9, 5000);
    }
    return false;
  }


  // Where broker i journals what each of its fsyncs made durable (sync_journal_file_ops.h).
  std::string SyncJournal(int i) const { return dir_.Sub(nodes_[i].id + ".syncs"); }

  // What a power cut leaves of a SIGKILLed broker's topic-partition: every segment file (.log,
  // .index, .timeindex) cut to the size its last fsync made durable (0 if never synced).
  // Returns the bytes cut.
  int64_t CutToLastSync(int i, const std::string& topic, int32_t p) {
    std::map<std::string, int64_t> durable;
    std::istringstream journal(testing::ReadFileOrEmpty(SyncJournal(i)));
    for (std::string line; std::getline(journal, line);) {
      const size_t sp = line.rfind(' ');
      if (sp != std::string::npos) {
        durable[line.substr(0, sp)] = std::stoll(line.substr(sp + 1));
      }
    }
    int64_t cut = 0;
    const std::string dir = nodes_[i].data + "/logs/" + topic + "-" + std::to_string(p);
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".log" && ext != ".index" && ext != ".timeindex") {
        continue;
      }
      const std::string path = std::filesystem::canonical(e.path(), ec).string();
      const auto size = static_cast<int64_t>(std::filesystem::file_size(e.path(), ec));
      auto mark = durable.find(path);
      // min: a file recreated under a name synced before must not grow.
      const int64_t keep = std::min(size, mark == durable.end() ? 0 : mark->second);
      if (keep < size) {
        std::filesystem::resize_file(e.path(), static_cast<uintmax_t>(keep), ec);
        cut += size - keep;
      }
    }
    return cut;
  }

  std::string EtcdList() const {
    std::string list;
    for (const std::string& e : etcd_->endpoints()) {
      list += (list.empty() ? "" : ",") + e;
    }
    return list;
  }

  // The partition's state from a live broker's GET /v1/metadata.
  struct Leader {
    std::string id;
    int epoch = -1;
    std::vector<std::string> isr;
  };
  Leader LeaderOf(const std::string& topic, int32_t p, int ask, int64_t timeout_ms = 5000) {
    std::string body;
    Leader out;
    if (testing::HttpGet(nodes_[ask].port, "/v1/metadata", &body, timeout_ms) != 200) {
      return out;
    }
    rapidjson::Document d;
    d.Parse(body.c_str());
    if (d.HasParseError() || !d.HasMember("topics")) {
      return out;
    }
    for (const auto& t : d["topics"].GetArray()) {
      if (t["name"].GetString() != topic) {
        continue;
      }
      for (const auto& part : t["partitions"].GetArray()) {
        if (part["partition"].GetInt() == p) {
          out.id = part["leader"].GetString();
          out.epoch = part["leader_epoch"].GetInt();
          for (const auto& id : part["isr"].GetArray()) {
            out.isr.push_back(id.GetString());
          }
        }
      }
    }
    return out;
  }

  // Produces `batch`, retrying a retryable refusal (421 while a named leader takes its role, 503
  // while the in-sync set is short) as a client does; false (with the last answer) otherwise.
  static bool ProduceOk(HttpClient& client, const std::string& batch, std::string* last) {
    return WaitFor([&] {
      auto r = client.Send("POST", "/v1/topics/sensors/records", batch,
                           "application/vnd.kafka.record-batch.v2");
      *last = r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString();
      return r.ok() && r->status == 200;
    }, 30000, 50);
  }

  // Creates topic "sensors" with one partition and waits until it has a leader with all three
  // replicas in sync.
  // Every broker registered: a topic created now gets min(factor, registered) replicas, and on
  // a loaded machine a broker's registration may trail its /healthz.
  void WaitAllRegistered() {
    std::string metadata;
    ASSERT_TRUE(WaitFor([&] {
      if (testing::HttpGet(nodes_[0].port, "/v1/metadata", &metadata, 2000) != 200) {
        return false;
      }
      rapidjson::Document d;
      d.Parse(metadata.c_str());
      return !d.HasParseError() && d.HasMember("brokers") && d["brokers"].IsArray() &&
             d["brokers"].Size() == static_cast<rapidjson::SizeType>(kBrokers);
    }, 30000, 50)) << "not every broker is registered: " << metadata;
  }

  void CreateTopicAndWaitForLeader(Leader* leader) {
    ASSERT_NO_FATAL_FAILURE(WaitAllRegistered());
    HttpClient admin(nodes_[0].url());
    auto created = admin.Send("POST", "/v1/topics", "{\"name\":\"sensors\",\"partitions\":1}");
    ASSERT_TRUE(created.ok());
    ASSERT_EQ(created->status, 201) << created->body;
    ASSERT_TRUE(WaitFor([&] {
      *leader = LeaderOf("sensors", 0, 0);
      return !leader->id.empty() && leader->isr.size() == 3u;
    }, 30000, 100)) << "no leader with a full in-sync set: leader '" << leader->id << "', "
                    << leader->isr.size() << " in sync\n"
                    << nodes_[0].proc->ReadLog();
  }

  // Every broker serves seq 0..n-1 of sensors-0, once and in offset order, and the three
  // replicas' segment files are byte-identical.
  void ExpectReplicasHoldExactly(int64_t n) {
    for (int i = 0; i < kBrokers; ++i) {
      std::vector<int64_t> got;
      ASSERT_TRUE(WaitFor([&] {
        got = Read(i, "sensors", 0);
        return got.size() == static_cast<size_t>(n);
      }, 30000)) << nodes_[i].id << " serves " << got.size() << " of " << n;
      for (int64_t s = 0; s < n; ++s) {
        ASSERT_EQ(got[static_cast<size_t>(s)], s) << nodes_[i].id << " offset " << s;
      }
    }
    ASSERT_TRUE(WaitFor([&] {
      return LogBytes(0, "sensors", 0) == LogBytes(1, "sensors", 0) &&
             LogBytes(1, "sensors", 0) == LogBytes(2, "sensors", 0);
    }, 30000)) << "replica logs differ";
  }

  int IndexOf(const std::string& id) {
    for (int i = 0; i < kBrokers; ++i) {
      if (nodes_[i].id == id) {
        return i;
      }
    }
    return -1;
  }

  // One batch of `n` records of producer kProducer with gateway_seq first..first+n-1, all with
  // the same key so they land in one partition. attempt >= 0 goes into each payload as "try",
  // so a resent batch differs from the first send in its values (not in its sequences).
  static std::string Batch(int64_t first, int n, int attempt = -1) {
    RecordBatch b;
    b.producer_id = kProducer;
    for (int i = 0; i < n; ++i) {
      Record r;
      r.timestamp_ms = 1'700'000'000'000 + first + i;
      r.key = "dev-1";
      r.value = "{\"seq\":" + std::to_string(first + i) +
                (attempt >= 0 ? ",\"try\":" + std::to_string(attempt) : std::string()) + "}";
      r.headers = {{kHeaderCountry, "DE"}, {kHeaderGatewaySeq, std::to_string(first + i)}};
      b.records.push_back(std::move(r));
    }
    return EncodeBatch(b);
  }

  // The "seq" of each record of topic-partition as broker `i` serves them (up to its high
  // watermark), in offset order.
  std::vector<int64_t> Read(int i, const std::string& topic, int32_t p) {
    std::vector<int64_t> out;
    int64_t offset = 0;
    while (true) {
      std::string body;
      const int status = testing::HttpGet(
          nodes_[i].port,
          "/v1/topics/" + topic + "/partitions/" + std::to_string(p) + "/records?offset=" +
              std::to_string(offset) + "&max_records=1000",
          &body, 10000);
      if (status != 200) {
        return out;
      }
      rapidjson::Document d;
      d.Parse(body.c_str());
      if (d.HasParseError() || !d.HasMember("records") || d["records"].Empty()) {
        return out;
      }
      for (const auto& r : d["records"].GetArray()) {
        out.push_back(r["payload"].IsObject() && r["payload"].HasMember("seq")
                          ? r["payload"]["seq"].GetInt64()
                          : -1);
      }
      offset = d["next_offset"].GetInt64();
    }
  }

  // Concatenated segment bytes of topic-partition in broker i's data dir.
  std::string LogBytes(int i, const std::string& topic, int32_t p) {
    std::vector<std::string> files;
    const std::string dir = nodes_[i].data + "/logs/" + topic + "-" + std::to_string(p);
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".log") {
        files.push_back(e.path().string());
      }
    }
    std::sort(files.begin(), files.end());
    std::string all;
    for (const std::string& f : files) {
      all += testing::ReadFileOrEmpty(f);
    }
    return all;
  }

  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::vector<Node> nodes_;
};

}  // namespace sluice
