// The manifest: schema, totals arithmetic, and the atomic write.
#include <sys/stat.h>

#include <set>
#include <string>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "firmware-sim/fleet.h"
#include "firmware-sim/ledger.h"
#include "firmware-sim/manifest.h"
#include "tests/common/test_env.h"
#include "tests/firmware-sim/sim_test_util.h"

namespace sluice::sim {
namespace {

using testing::ConfigFromYaml;
using testing::ExpandRanges;

const char* kConfig = R"(
sim:
  seed: 3
  devices: 4
sites:
  - name: de
    countries: [DE]
    transport: mixed
    mqtt_uri: tcp://127.0.0.1:1
    http_url: http://127.0.0.1:2
)";

TEST(ManifestTest, SchemaAndTotals) {
  SimConfig c = ConfigFromYaml(kConfig);
  std::vector<Device> fleet = BuildFleet(c);  // 1,3 http (3 single); 2,4 mqtt
  ASSERT_EQ(fleet.size(), 4u);
  Ledger ledger(fleet.size());
  for (int d = 0; d < 4; ++d) {
    for (uint64_t s = 1; s <= 10; ++s) ledger.RecordSent(d, s);
  }
  for (uint64_t s = 1; s <= 10; ++s) {
    ledger.Resolve(0, s, s == 4 || s == 5 ? Outcome::kFailed : Outcome::kDelivered);  // http
    ledger.Resolve(1, s, Outcome::kDelivered);                                         // mqtt
    if (s != 10) ledger.Resolve(2, s, Outcome::kDelivered);  // http, seq 10 left pending
    ledger.Resolve(3, s, s == 1 ? Outcome::kFailed : Outcome::kDelivered);  // mqtt error
  }
  Manifest m = BuildManifest(c, fleet, ledger, 1000, 2000);
  std::string json = ManifestToJson(m);

  rapidjson::Document doc;
  doc.Parse(json.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json;
  EXPECT_EQ(doc["seed"].GetUint64(), 3u);
  EXPECT_EQ(doc["started_ms"].GetInt64(), 1000);
  EXPECT_EQ(doc["finished_ms"].GetInt64(), 2000);
  const auto& t = doc["totals"];
  EXPECT_EQ(t["sent"].GetUint64(), 40u);
  EXPECT_EQ(t["mqtt_sent"].GetUint64(), 19u);
  EXPECT_EQ(t["mqtt_errors"].GetUint64(), 1u);
  EXPECT_EQ(t["http_sent"].GetUint64(), 20u);
  EXPECT_EQ(t["http_acked"].GetUint64(), 17u);
  EXPECT_EQ(t["http_failed"].GetUint64(), 3u) << "pending counts as failed";
  ASSERT_TRUE(doc["devices"].IsArray());
  ASSERT_EQ(doc["devices"].Size(), 4u);

  const auto& d0 = doc["devices"][0];
  EXPECT_STREQ(d0["device_id"].GetString(), "de-dev-0001");
  EXPECT_STREQ(d0["site"].GetString(), "de");
  EXPECT_STREQ(d0["country"].GetString(), "DE");
  EXPECT_STREQ(d0["transport"].GetString(), "http");
  EXPECT_STREQ(d0["http_mode"].GetString(), "batch");
  EXPECT_EQ(d0["sent"].GetUint64(), 10u);
  EXPECT_EQ(d0["first_seq"].GetUint64(), 1u);
  EXPECT_EQ(d0["last_seq"].GetUint64(), 10u);
  EXPECT_EQ(ExpandRanges(d0["acked_seqs"]), (std::set<uint64_t>{1, 2, 3, 6, 7, 8, 9, 10}));
  EXPECT_EQ(ExpandRanges(d0["failed_seqs"]), (std::set<uint64_t>{4, 5}));
  ASSERT_EQ(d0["acked_seqs"].Size(), 2u) << "ranges, not lists";

  const auto& d1 = doc["devices"][1];
  EXPECT_STREQ(d1["transport"].GetString(), "mqtt");
  EXPECT_FALSE(d1.HasMember("acked_seqs")) << "acked_seqs is HTTP only";
  EXPECT_EQ(d1["failed_seqs"].Size(), 0u);

  const auto& d2 = doc["devices"][2];
  EXPECT_STREQ(d2["http_mode"].GetString(), "single");
  EXPECT_EQ(ExpandRanges(d2["failed_seqs"]), (std::set<uint64_t>{10}));

  EXPECT_EQ(ExpandRanges(doc["devices"][3]["failed_seqs"]), (std::set<uint64_t>{1}));
}

TEST(ManifestTest, WritesAtomicallyAndReportsErrors) {
  sluice::testing::TempDir dir;
  const std::string path = dir.Sub("m.json");
  ASSERT_TRUE(WriteFileAtomically(path, "{\"a\":1}").ok());
  ASSERT_TRUE(WriteFileAtomically(path, "{\"a\":2}").ok());
  EXPECT_EQ(testing::ReadWholeFile(path), "{\"a\":2}");
  struct stat st;
  EXPECT_NE(::stat((path + ".tmp").c_str(), &st), 0) << "no temp file left behind";
  Status bad = WriteFileAtomically(dir.Sub("missing/dir/m.json"), "{}");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("missing/dir"), std::string::npos) << bad.ToString();
}

}  // namespace
}  // namespace sluice::sim
