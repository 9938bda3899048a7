// What the broker refuses in a produce request before storing anything (docs/API.md, "Produce"):
// Sluice headers that repeat, timestamps far in the future or before 1970, transactional,
// control and compressed batches, and records over the decoder's bounds (headers per record,
// key and header sizes). Each answer is a 400 naming `field` and the record `index`, and the
// log is unchanged. In-process broker on a free port.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>

#include "cloud-broker/server/broker.h"
#include "core/crc32c.h"
#include "core/http.h"
#include "tests/cloud-broker/test_records.h"
#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

using testing::EncodeRecords;
using testing::MakeRecord;
constexpr const char* kBatchType = "application/vnd.kafka.record-batch.v2";
constexpr int64_t kDayMs = 24 * 3600 * 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ProduceValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.broker_id = "eu-test-1";
    o.data_dir = dir_.path();
    o.region = RegionId("eu-central");
    o.countries = {CountryCode("DE"), CountryCode("FR")};
    o.http_port = sluice::testing::FreePort();
    o.max_body_bytes = 1 << 20;
    o.default_partitions = 2;
    auto b = Broker::Start(o);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    broker_ = std::move(b).value();
    client_ = std::make_unique<HttpClient>("http://127.0.0.1:" + std::to_string(broker_->port()));
  }

  // Posts `body` and expects a 400 with `error`, `field` and `index` (-1: no index), and that
  // nothing was stored.
  void ExpectRefused(const std::string& body, const std::string& error, const std::string& field,
                     int64_t index) {
    auto r = client_->Send("POST", "/v1/topics/t/records", body, kBatchType);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 400) << r->body;
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    ASSERT_TRUE(d.IsObject()) << r->body;
    EXPECT_EQ(std::string(d["error"].GetString()), error) << r->body;
    ASSERT_TRUE(d.HasMember("field")) << r->body;
    EXPECT_EQ(std::string(d["field"].GetString()), field) << r->body;
    if (index >= 0) {
      ASSERT_TRUE(d.HasMember("index")) << r->body;
      EXPECT_EQ(d["index"].GetInt64(), index) << r->body;
    }
    if (const Topic* t = broker_->store().Find(TopicName("t"))) {
      for (int p = 0; p < t->partition_count(); ++p) {
        EXPECT_EQ(t->partition(p)->next_offset(), 0) << "partition " << p << " took records";
      }
    }
  }
  HttpResponse Post(const std::string& body) {
    auto r = client_->Send("POST", "/v1/topics/t/records", body, kBatchType);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{};
  }
  std::vector<Record> Two() {
    return {MakeRecord("dev-1", "DE", NowMs(), "{}"), MakeRecord("dev-2", "DE", NowMs(), "{}")};
  }

  sluice::testing::TempDir dir_;
  std::unique_ptr<Broker> broker_;
  std::unique_ptr<HttpClient> client_;
};

// The broker checked the first country header; Kafka readers (lastHeader) saw the second.
TEST_F(ProduceValidationTest, CountryHeaderMustAppearExactlyOnce) {
  std::vector<Record> recs = Two();
  recs[1].headers.push_back({kHeaderCountry, "US"});
  ExpectRefused(EncodeRecords(recs), "invalid_record", "headers.country", 1);
}

TEST_F(ProduceValidationTest, SluiceHeadersMustNotRepeat) {
  for (const char* h : {kHeaderGatewaySeq, kHeaderGatewayId, kHeaderSensor, kHeaderIngestTs,
                        kHeaderSource}) {
    std::vector<Record> recs = Two();
    recs[0].headers.push_back({h, "7"});
    ExpectRefused(EncodeRecords(recs), "invalid_record", std::string("headers.") + h, 0);
  }
  std::vector<Record> ok = Two();
  ok[0].headers.push_back({"trace", "a"});
  ok[0].headers.push_back({"trace", "b"});  // headers Sluice does not read may repeat
  EXPECT_EQ(Post(EncodeRecords(ok)).status, 200);
}

// The key and the text headers Sluice serves back (sensor, gateway_id, source) were stored with
// invalid UTF-8 and served altered (U+FFFD); a malformed gateway_seq turned exactly-once off
// for the record and ingest_ts came back null.
TEST_F(ProduceValidationTest, SluiceHeadersMustBeWellFormed) {
  struct Case {
    std::string header;
    std::string value;
  };
  for (const Case& c : {Case{kHeaderSensor, "\xc3\x28"}, Case{kHeaderGatewayId, "gw\xff"},
                        Case{kHeaderSource, std::string("a\0b", 3)},
                        Case{kHeaderGatewaySeq, "12x"}, Case{kHeaderGatewaySeq, "-1"},
                        Case{kHeaderIngestTs, "soon"}}) {
    std::vector<Record> recs = Two();
    for (RecordHeader& h : recs[1].headers) {
      if (h.key == c.header) {
        h.value = c.value;
      }
    }
    ExpectRefused(EncodeRecords(recs), "invalid_record", "headers." + c.header, 1);
  }
  std::vector<Record> recs = Two();
  recs[0].key = "dev\xc3\x28";
  ExpectRefused(EncodeRecords(recs), "invalid_record", "key", 0);
}

// ts = INT64_MAX was stored and stopped time retention of its partition for good.
TEST_F(ProduceValidationTest, TimestampsFarInTheFutureOrBefore1970AreRefused) {
  std::vector<Record> recs = Two();
  recs[1].timestamp_ms = std::numeric_limits<int64_t>::max();
  ExpectRefused(EncodeRecords(recs), "invalid_record", "timestamp", 1);
  recs[1].timestamp_ms = NowMs() + 2 * kDayMs;
  ExpectRefused(EncodeRecords(recs), "invalid_record", "timestamp", 1);
  recs[1].timestamp_ms = -5;
  ExpectRefused(EncodeRecords(recs), "invalid_record", "timestamp", 1);
  recs[1].timestamp_ms = NowMs() + kDayMs / 2;  // within produce.max_future (1 day)
  EXPECT_EQ(Post(EncodeRecords(recs)).status, 200);
}

std::string WithAttributes(std::string batch, uint16_t attributes) {
  batch[21] = static_cast<char>(attributes >> 8);
  batch[22] = static_cast<char>(attributes & 0xff);
  const uint32_t crc = crc32c::Value(batch.data() + 21, batch.size() - 21);
  for (int i = 0; i < 4; ++i) {
    batch[17 + i] = static_cast<char>((crc >> (8 * (3 - i))) & 0xff);
  }
  return batch;
}

// Transactional and control batches were stored as sent (so were the timestamp-type and other
// bits); compressed ones were "corrupt".
TEST_F(ProduceValidationTest, TransactionalControlAndCompressedBatchesAreRefused) {
  const std::string batch = EncodeRecords(Two());
  ExpectRefused(WithAttributes(batch, 0x10), "invalid_batch", "attributes", -1);
  ExpectRefused(WithAttributes(batch, 0x20), "invalid_batch", "attributes", -1);
  ExpectRefused(WithAttributes(batch, 0x01), "invalid_batch", "attributes", -1);  // gzip
  // LogAppendTime: Kafka readers would take the batch's max timestamp for every record while
  // Sluice serves each record's own; bit 6 (Kafka's delete horizon) is the broker's to set.
  ExpectRefused(WithAttributes(batch, 0x08), "invalid_batch", "attributes", -1);
  ExpectRefused(WithAttributes(batch, 0x40), "invalid_batch", "attributes", -1);
  EXPECT_EQ(Post(batch).status, 200);
}

// One record with 8 M empty headers (16 MiB) cost ~840 MB to store; the decoder now refuses a
// header count over the limit before allocating for it.
TEST_F(ProduceValidationTest, RecordsOverTheDecoderBoundsAreRefused) {
  std::vector<Record> recs = Two();
  recs[1].headers.resize(200'000);
  ExpectRefused(EncodeRecords(recs), "invalid_record", "headers", 1);

  recs = Two();
  recs[1].headers.resize(kMaxHeadersPerRecord);  // 6 Sluice headers + empty ones: at the limit
  recs[1].headers.resize(kMaxHeadersPerRecord + 1);
  ExpectRefused(EncodeRecords(recs), "invalid_record", "headers", 1);

  recs = Two();
  recs[0].key = std::string(kMaxRecordKeyBytes + 1, 'k');
  ExpectRefused(EncodeRecords(recs), "invalid_record", "key", 0);

  recs = Two();
  recs[1].headers.push_back({std::string(kMaxHeaderKeyBytes + 1, 'h'), ""});
  ExpectRefused(EncodeRecords(recs), "invalid_record", "headers", 1);

  recs = Two();
  recs[1].headers.push_back({"h", std::string(kMaxHeaderValueBytes + 1, 'v')});
  ExpectRefused(EncodeRecords(recs), "invalid_record", "headers", 1);

  recs = Two();
  recs[1].headers.resize(kMaxHeadersPerRecord);
  recs[1].headers.push_back({"x", std::string(kMaxHeaderValueBytes, 'v')});
  recs[1].headers.erase(recs[1].headers.begin() + 7);
  recs[0].key = std::string(kMaxRecordKeyBytes, 'k');
  EXPECT_EQ(Post(EncodeRecords(recs)).status, 200) << "exactly at the limits";
}

}  // namespace
}  // namespace sluice::broker
