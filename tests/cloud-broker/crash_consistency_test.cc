// Crash consistency of the real sluice-broker (flush: always): producer threads post batches as
// fast as they can, the broker is SIGKILLed mid-stream, restarted, and then every acknowledged
// batch must be present exactly once, offsets dense and increasing per partition, every batch
// on disk CRC-valid, and nothing else exposed (each record id at most once). Three rounds on
// the same data directory, so each restart recovers what the previous kill left.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/http.h"
#include "core/record_batch.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::TempDir;
using testing::EncodeRecords;
using testing::MakeRecord;
namespace fs = std::filesystem;

constexpr int kPartitions = 2;
constexpr int kProducers = 4;
constexpr int kRecordsPerBatch = 20;

std::string Yaml(const std::string& data_dir, int port) {
  return "broker:\n  id: crash\n  data_dir: " + data_dir +
         "\nregion:\n  name: eu-central\n  countries: [DE]\nhttp:\n  host: 127.0.0.1\n"
         "  port: " + std::to_string(port) +
         "\n  threads: 4\ntopics:\n  auto_create: true\n  default_partitions: " +
         std::to_string(kPartitions) +
         "\nlog:\n  segment_bytes: 64KiB\n  flush: always\nlog_level: warn\n";
}

std::unique_ptr<ChildProcess> StartBroker(const TempDir& dir, int round, int* port) {
  *port = sluice::testing::FreePort();
  std::string cfg = dir.Sub("broker-" + std::to_string(round) + ".yaml");
  std::ofstream(cfg) << Yaml(dir.Sub("data"), *port);
  auto proc = ChildProcess::Start({BinPath("sluice-broker"), "--config", cfg},
                                  dir.Sub("broker-" + std::to_string(round) + ".out"));
  EXPECT_NE(proc, nullptr);
  EXPECT_TRUE(sluice::testing::WaitHttpOk(*port, "/healthz", 20000))
      << (proc ? proc->ReadLog() : "");
  return proc;
}

// Every record id stored, per partition in offset order, read through the fetch API.
std::map<int, std::vector<std::pair<int64_t, std::string>>> FetchAll(int port) {
  std::map<int, std::vector<std::pair<int64_t, std::string>>> out;
  HttpClient client("http://127.0.0.1:" + std::to_string(port));
  for (int p = 0; p < kPartitions; ++p) {
    int64_t offset = 0;
    while (true) {
      auto r = client.Get("/v1/topics/crash/partitions/" + std::to_string(p) +
                          "/records?max_records=50000&max_bytes=67108864&offset=" +
                          std::to_string(offset));
      EXPECT_TRUE(r.ok() && r->status == 200) << (r.ok() ? r->body : r.status().ToString());
      if (!r.ok() || r->status != 200) {
        return out;
      }
      rapidjson::Document d;
      d.Parse(r->body.c_str());
      for (const auto& rec : d["records"].GetArray()) {
        out[p].push_back({rec["offset"].GetInt64(), rec["payload"]["id"].GetString()});
      }
      offset = d["next_offset"].GetInt64();
      if (offset >= d["end_offset"].GetInt64()) {
        break;
      }
    }
  }
  return out;
}

// Walks every segment file with Kafka's framing and checks every batch's CRC.
void CheckSegmentsOnDisk(const std::string& data_dir) {
  for (int p = 0; p < kPartitions; ++p) {
    const std::string dir = data_dir + "/logs/crash-" + std::to_string(p);
    if (!fs::exists(dir)) {
      continue;
    }
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".log") {
        continue;
      }
      std::ifstream in(e.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), {});
      size_t pos = 0;
      while (pos < bytes.size()) {
        Result<BatchHeader> h =
            ParseBatchHeader(std::string_view(bytes).substr(pos), /*verify_crc=*/true);
        ASSERT_TRUE(h.ok()) << e.path() << " at " << pos << ": " << h.status().ToString();
        pos += h->total_size();
      }
    }
  }
}

TEST(CrashConsistencyTest, AcknowledgedBatchesSurviveSigkillExactlyOnce) {
  TempDir dir;
  std::mutex mu;
  std::set<std::string> acked;  // record ids of acknowledged batches
  uint64_t next_id = 0;
  for (int round = 0; round < 3; ++round) {
    int port = 0;
    auto broker = StartBroker(dir, round, &port);
    ASSERT_NE(broker, nullptr);
    const size_t acked_at_start = acked.size();
    std::atomic<bool> stop{false};
    std::vector<std::thread> producers;
    for (int t = 0; t < kProducers; ++t) {
      producers.emplace_back([&, t] {
        HttpClientOptions co;
        co.timeout_ms = 5000;
        HttpClient client("http://127.0.0.1:" + std::to_string(port), co);
        while (!stop.load()) {
          std::vector<Record> recs;
          std::vector<std::string> ids;
          {
            std::lock_guard lock(mu);
            for (int i = 0; i < kRecordsPerBatch; ++i) {
              ids.push_back("r" + std::to_string(round) + "-" + std::to_string(next_id++));
            }
          }
          for (int i = 0; i < kRecordsPerBatch; ++i) {
            recs.push_back(MakeRecord("dev-" + std::to_string(t) + "-" + std::to_string(i % 3),
                                      "DE", 1'700'000'000'000 + i,
                                      "{\"id\":\"" + ids[i] + "\"}"));
          }
          auto r = client.Send("POST", "/v1/topics/crash/records", EncodeRecords(recs),
                               "application/vnd.kafka.record-batch.v2");
          if (!r.ok()) {
            return;  // the broker is gone
          }
          if (r->status == 200) {
            std::lock_guard lock(mu);
            acked.insert(ids.begin(), ids.end());
          }
        }
      });
    }
    // Kill it mid-stream, once a good number of batches went through this round.
    bool enough = sluice::testing::WaitFor(
        [&] {
          std::lock_guard lock(mu);
          return acked.size() >= acked_at_start + 3000;
        },
        60000);
    broker->Stop(SIGKILL);
    stop = true;
    for (auto& p : producers) {
      p.join();
    }
    ASSERT_TRUE(enough) << "produce made too little progress: " << broker->ReadLog();
  }
  // Restart on what the last kill left (recovery cuts any torn tail) and check.
  int port = 0;
  auto broker = StartBroker(dir, 3, &port);
  ASSERT_NE(broker, nullptr);
  CheckSegmentsOnDisk(dir.Sub("data"));
  std::map<std::string, int> seen;
  for (const auto& [p, recs] : FetchAll(port)) {
    for (size_t i = 0; i < recs.size(); ++i) {
      ASSERT_EQ(recs[i].first, static_cast<int64_t>(i)) << "partition " << p << " not dense";
      seen[recs[i].second] += 1;
    }
  }
  size_t missing = 0;
  for (const std::string& id : acked) {
    missing += seen.count(id) == 0 ? 1 : 0;
  }
  EXPECT_EQ(missing, 0u) << "acknowledged records lost, of " << acked.size();
  for (const auto& [id, n] : seen) {
    ASSERT_EQ(n, 1) << id << " stored twice";
  }
  EXPECT_GE(seen.size(), acked.size());
  EXPECT_GE(acked.size(), 9000u);
  // For the record: how many restarts found a torn tail to cut (a kill between write() and
  // the end of a batch; not guaranteed every run, so not asserted).
  int torn = 0;
  for (int round = 1; round <= 3; ++round) {
    std::string log = sluice::testing::ReadFileOrEmpty(dir.Sub("broker-" + std::to_string(round) +
                                                               ".out"));
    torn += log.find("truncating") != std::string::npos ? 1 : 0;
  }
  std::cout << "acknowledged " << acked.size() << " records, stored " << seen.size()
            << "; restarts that cut a torn tail: " << torn << "/3\n";
}

// Flips a byte `at` bytes into the batch that starts `batch_index` batches into `path`;
// returns that batch's base offset.
int64_t FlipByteInBatch(const std::string& path, size_t batch_index, size_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  size_t pos = 0;
  for (size_t i = 0; i < batch_index; ++i) {
    pos += 12 + testing::Be(bytes, pos + 8, 4);
  }
  f.seekp(static_cast<std::streamoff>(pos + at));
  f.put(static_cast<char>(bytes[pos + at] ^ 0x5a));
  return static_cast<int64_t>(testing::Be(bytes, pos, 8));
}

size_t BatchesIn(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  size_t n = 0;
  for (size_t pos = 0; pos < bytes.size(); pos += 12 + testing::Be(bytes, pos + 8, 4)) {
    ++n;
  }
  return n;
}

// A corrupt byte in the middle of an old segment is skipped by readers and counted; one in the
// active segment's last batch is cut off at start-up. The broker starts and serves either way.
TEST(CrashConsistencyTest, CorruptBytesInOldAndTailSegments) {
  TempDir dir;
  int port = 0;
  auto broker = StartBroker(dir, 0, &port);
  ASSERT_NE(broker, nullptr);
  {
    HttpClient client("http://127.0.0.1:" + std::to_string(port));
    for (int b = 0; b < 60; ++b) {
      std::vector<Record> recs;
      for (int i = 0; i < kRecordsPerBatch; ++i) {
        recs.push_back(MakeRecord("dev-0", "DE", 1'700'000'000'000 + b * 100 + i,
                                  "{\"id\":\"b" + std::to_string(b) + "-" + std::to_string(i) +
                                      "\",\"pad\":\"" + std::string(100, 'x') + "\"}"));
      }
      auto r = client.Send("POST", "/v1/topics/crash/records", EncodeRecords(recs),
                           "application/vnd.kafka.record-batch.v2");
      ASSERT_TRUE(r.ok() && r->status == 200);
    }
  }
  ASSERT_EQ(broker->Stop(SIGTERM), 0);
  // All records went to one partition (one device); find its segments.
  std::vector<std::string> logs;
  for (int p = 0; p < kPartitions; ++p) {
    const std::string d = dir.Sub("data/logs/crash-" + std::to_string(p));
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().extension() == ".log" && fs::file_size(e.path()) > 0) {
        logs.push_back(e.path().string());
      }
    }
  }
  std::sort(logs.begin(), logs.end());
  ASSERT_GE(logs.size(), 2u) << "expected a rolled segment";
  const size_t mid = BatchesIn(logs.front()) / 2;
  const int64_t skipped = FlipByteInBatch(logs.front(), mid, 100);
  const int64_t cut = FlipByteInBatch(logs.back(), BatchesIn(logs.back()) - 1, 100);

  broker = StartBroker(dir, 1, &port);
  ASSERT_NE(broker, nullptr);
  EXPECT_NE(broker->ReadLog().find("truncating"), std::string::npos) << broker->ReadLog();
  std::set<int64_t> offsets;
  size_t records = 0;
  for (const auto& [p, recs] : FetchAll(port)) {
    for (const auto& [offset, id] : recs) {
      offsets.insert(offset);
      ++records;
    }
  }
  EXPECT_EQ(records, 58u * kRecordsPerBatch) << "all but the skipped and the cut batch";
  EXPECT_EQ(offsets.count(skipped), 0u);
  EXPECT_EQ(offsets.count(skipped + kRecordsPerBatch), 1u) << "the read went past it";
  EXPECT_EQ(offsets.count(cut), 0u);
  std::string metrics;
  ASSERT_EQ(sluice::testing::HttpGet(port, "/metrics", &metrics), 200);
  EXPECT_EQ(sluice::testing::MetricSum(metrics, "sluice_broker_corrupt_batches_total"), 1.0)
      << metrics;
  EXPECT_TRUE(broker->Running());
}

}  // namespace
}  // namespace sluice::broker
