// The query index of a real sluice-broker through crashes (issue 12): records are produced over
// HTTP while the broker indexes every 10 ms, the broker is SIGKILLed part-way (mid-indexing, as
// like as not) and restarted on the same data dir, three times; right after each restart (the
// index behind: queries scan the tail) and once it caught up, paged queries by device, country
// and time range answer exactly what a scan of the partitions through fetch answers, in order,
// each record once; so do `sluice query --all --output ndjson` (every page through the cursors)
// and `sluice query --bucket 1m --group-by country`.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <csignal>
#include <random>
#include <sstream>
#include <tuple>

#include "core/http.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using sluice::testing::BinPath;
using sluice::testing::ChildProcess;
using sluice::testing::TempDir;

struct Seen {
  int64_t ts;
  int partition;
  int64_t offset;
  std::string device;
  std::string country;
  bool operator<(const Seen& o) const {
    return std::tie(ts, partition, offset) < std::tie(o.ts, o.partition, o.offset);
  }
  bool operator==(const Seen& o) const {
    return ts == o.ts && partition == o.partition && offset == o.offset;
  }
};

void PrintTo(const Seen& s, std::ostream* os) {
  *os << s.ts << "/" << s.partition << "@" << s.offset << "(" << s.device << "," << s.country << ")";
}

// Where two answers first differ, for a readable failure.
std::string FirstDifference(const std::vector<Seen>& got, const std::vector<Seen>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream os;
  os << "got " << got.size() << " records, want " << want.size() << "; first difference at " << i;
  if (i < got.size()) { os << ": got "; PrintTo(got[i], &os); }
  if (i < want.size()) { os << ", want "; PrintTo(want[i], &os); }
  return os.str();
}

class IndexProcessTest : public ::testing::Test {
 protected:
  void StartBroker() {
    broker_ = ChildProcess::Start(
        {BinPath("sluice-broker"), "--config",
         sluice::testing::SourcePath("config/broker-eu-central.yaml"), "--set",
         "query.index_interval=10ms", "--set",
         // Normal priority: catching up must not wait for the other tests ctest runs beside it.
         "query.index_priority=normal"},
        dir_.Sub("broker.log"),
        {{"SLUICE_DATA_DIR", dir_.Sub("data")}, {"SLUICE_BROKER_PORT", std::to_string(port_)}});
    ASSERT_NE(broker_, nullptr);
    ASSERT_TRUE(sluice::testing::WaitHttpOk(port_, "/healthz", 30000)) << broker_->ReadLog();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // `batches` batches of 1,500 records: 40 devices, each with its country, timestamps going
  // back and forth over a 10-minute window.
  void Produce(int batches) {
    HttpClient client(Url());
    std::uniform_int_distribution<int> device(0, 39);
    std::uniform_int_distribution<int64_t> ts(0, 600'000);
    for (int b = 0; b < batches; ++b) {
      std::vector<Record> records;
      for (int i = 0; i < 1500; ++i) {
        const int d = device(rng_);
        records.push_back(testing::MakeRecord("dev-" + std::to_string(d), d % 3 == 0 ? "FR" : "DE",
                                              kT0 + ts(rng_), "{\"n\":" + std::to_string(i) + "}"));
      }
      auto r = client.Send("POST", "/v1/topics/t/records", testing::EncodeRecords(records),
                           "application/vnd.kafka.record-batch.v2");
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->status, 200) << r->body;
    }
  }

  // Every record of topic t, read through fetch.
  std::vector<Seen> All() {
    std::vector<Seen> out;
    std::string topics;
    EXPECT_EQ(sluice::testing::HttpGet(port_, "/v1/topics", &topics), 200);
    rapidjson::Document td;
    td.Parse(topics.c_str());
    int partitions = 0;
    for (const auto& t : td["topics"].GetArray()) {
      if (std::string(t["name"].GetString()) == "t") {
        partitions = static_cast<int>(t["partitions"].Size());
      }
    }
    EXPECT_GT(partitions, 1);
    for (int p = 0; p < partitions; ++p) {
      int64_t offset = 0;
      for (int guard = 0; guard < 10000; ++guard) {
        std::string body;
        const int status = sluice::testing::HttpGet(
            port_, "/v1/topics/t/partitions/" + std::to_string(p) + "/records?offset=" +
                       std::to_string(offset) + "&max_records=5000",
            &body);
        EXPECT_EQ(status, 200) << body.substr(0, 300);
        rapidjson::Document d;
        d.Parse(body.c_str());
        if (status != 200 || d.HasParseError() || !d["records"].IsArray() ||
            d["records"].Empty()) {
          break;
        }
        for (const auto& r : d["records"].GetArray()) {
          out.push_back({r["ts"].GetInt64(), p, r["offset"].GetInt64(),
                         r["device_id"].GetString(), r["country"].GetString()});
        }
        offset = d["next_offset"].GetInt64();
      }
    }
    return out;
  }

  // Every page of GET /v1/query?<params>, followed through `next`.
  std::vector<Seen> Pages(const std::string& params) {
    std::vector<Seen> out;
    std::string cursor;
    for (int guard = 0; guard < 10000; ++guard) {
      std::string body;
      const std::string path = "/v1/query?topic=t&limit=137&" + params +
                               (cursor.empty() ? "" : "&cursor=" + cursor);
      const int status = sluice::testing::HttpGet(port_, path, &body, 30000);
      EXPECT_EQ(status, 200) << path << ": " << body.substr(0, 300);
      rapidjson::Document d;
      d.Parse(body.c_str());
      if (status != 200 || d.HasParseError()) {
        break;
      }
      for (const auto& r : d["records"].GetArray()) {
        out.push_back({r["ts"].GetInt64(), r["partition"].GetInt(), r["offset"].GetInt64(),
                       r["device_id"].GetString(), r["country"].GetString()});
      }
      if (!d["next"].IsString()) {
        break;
      }
      cursor = d["next"].GetString();
    }
    return out;
  }

  void ExpectQueriesMatchTheLog(const std::string& when) {
    std::vector<Seen> all = All();
    std::sort(all.begin(), all.end());
    ASSERT_FALSE(all.empty());
    const int64_t from = kT0 + 200'000;
    const int64_t to = kT0 + 260'000;
    auto expect = [&](const std::string& params, auto keep) {
      std::vector<Seen> want;
      std::copy_if(all.begin(), all.end(), std::back_inserter(want), keep);
      const std::vector<Seen> got = Pages(params);
      EXPECT_TRUE(got == want) << when << ": " << params << ": " << FirstDifference(got, want);
    };
    expect("device_id=dev-7", [](const Seen& s) { return s.device == "dev-7"; });
    expect("country=FR&from=" + std::to_string(from) + "&to=" + std::to_string(to),
           [&](const Seen& s) { return s.country == "FR" && s.ts >= from && s.ts < to; });
    expect("from=" + std::to_string(from) + "&to=" + std::to_string(to),
           [&](const Seen& s) { return s.ts >= from && s.ts < to; });
  }

  static constexpr int64_t kT0 = 1'790'000'000'000;
  TempDir dir_;
  int port_ = sluice::testing::FreePort();
  std::unique_ptr<ChildProcess> broker_;
  std::mt19937_64 rng_{2026};
};

TEST_F(IndexProcessTest, QueriesMatchTheLogAcrossSigkillsMidIndexing) {
  ASSERT_NO_FATAL_FAILURE(StartBroker());
  for (int round = 0; round < 3; ++round) {
    ASSERT_NO_FATAL_FAILURE(Produce(8));
    broker_->Stop(SIGKILL);  // the indexer runs every 10 ms: most likely mid-pass
    ASSERT_NO_FATAL_FAILURE(StartBroker());
    // At once: the index resumes from what it recorded, queries scan what it has not covered.
    ASSERT_NO_FATAL_FAILURE(ExpectQueriesMatchTheLog("right after restart " +
                                                     std::to_string(round)));
  }
  ASSERT_TRUE(sluice::testing::WaitFor(
      [&] {
        std::string body;
        sluice::testing::HttpGet(port_, "/metrics", &body);
        return body.find("\nsluice_broker_index_lag_records 0\n") != std::string::npos;
      },
      60000))
      << "the index never caught up";
  ASSERT_NO_FATAL_FAILURE(ExpectQueriesMatchTheLog("caught up"));

  // As a user pages with the CLI: every page followed (--all), one record per line.
  std::vector<Seen> all = All();
  std::sort(all.begin(), all.end());
  const int64_t from = kT0 + 100'000;
  const int64_t to = kT0 + 130'000;
  std::vector<Seen> want;
  std::copy_if(all.begin(), all.end(), std::back_inserter(want), [&](const Seen& x) {
    return x.country == "FR" && x.ts >= from && x.ts < to;
  });
  ASSERT_EQ(sluice::testing::RunCommand(
                {BinPath("sluice"), "query", "--broker", Url(), "--topic", "t", "--country", "fr",
                 "--from", std::to_string(from), "--to", std::to_string(to), "--limit", "50",
                 "--all", "--output", "ndjson"},
                dir_.Sub("cli.out"), 60000),
            0)
      << sluice::testing::ReadFileOrEmpty(dir_.Sub("cli.out"));
  std::vector<Seen> lines;
  std::istringstream in(sluice::testing::ReadFileOrEmpty(dir_.Sub("cli.out")));
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str());
    ASSERT_FALSE(d.HasParseError()) << line;
    lines.push_back({d["ts"].GetInt64(), d["partition"].GetInt(), d["offset"].GetInt64(),
                     d["device_id"].GetString(), d["country"].GetString()});
  }
  EXPECT_GT(want.size(), 50u) << "more than one page";
  EXPECT_TRUE(lines == want) << FirstDifference(lines, want);

  // And an aggregate: counts per minute and country of the same range, as a table.
  ASSERT_EQ(sluice::testing::RunCommand(
                {BinPath("sluice"), "query", "--broker", Url(), "--topic", "t", "--from",
                 std::to_string(from), "--to", std::to_string(to), "--bucket", "1m",
                 "--group-by", "country", "--json"},
                dir_.Sub("agg.out"), 60000),
            0)
      << sluice::testing::ReadFileOrEmpty(dir_.Sub("agg.out"));
  rapidjson::Document agg;
  agg.Parse(sluice::testing::ReadFileOrEmpty(dir_.Sub("agg.out")).c_str());
  ASSERT_FALSE(agg.HasParseError());
  uint64_t fr = 0;
  for (const auto& row : agg["rows"].GetArray()) {
    if (std::string(row["country"].GetString()) == "FR") fr += row["count"].GetUint64();
  }
  EXPECT_EQ(fr, want.size());
}

}  // namespace
}  // namespace sluice::broker
