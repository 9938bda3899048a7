// RecordBatch v2 decoder against damaged input: every failure is a Status (kCorruption, or
// kInvalidArgument for compressed batches), never a crash or an out-of-bounds read.
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <random>
#include <string>

#include "core/crc32c.h"
#include "core/record_batch.h"

namespace sluice {
namespace {

void PutBigEndian(std::string& s, size_t pos, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    s[pos + i] = static_cast<char>((v >> (8 * (bytes - 1 - i))) & 0xff);
  }
}

// Recomputes batchLength and CRC so a test can reach the record parser with any bytes.
void FixUp(std::string& s) {
  PutBigEndian(s, 8, s.size() - kBatchLogOverhead, 4);
  PutBigEndian(s, 17, crc32c::Value(s.data() + 21, s.size() - 21), 4);
}

// A batch header (from an empty encoded batch) followed by hand-written record bytes.
std::string RawBatch(const std::string& records, int32_t record_count,
                     int32_t last_offset_delta) {
  std::string s = EncodeBatch(RecordBatch{}) + records;
  PutBigEndian(s, 23, static_cast<uint32_t>(last_offset_delta), 4);
  PutBigEndian(s, 57, static_cast<uint32_t>(record_count), 4);
  FixUp(s);
  return s;
}

RecordBatch SmallBatch() {
  RecordBatch b;
  b.base_offset = 5;
  b.partition_leader_epoch = 3;
  for (int i = 0; i < 2; ++i) {
    Record r;
    r.timestamp_ms = 1000 + i;
    r.key = "key" + std::to_string(i);
    r.value = "value";
    r.headers = {{"country", "DE"}, {"h", ""}};
    b.records.push_back(r);
  }
  b.records[1].key.reset();
  return b;
}

void ExpectCode(StatusCode code, std::string_view bytes, const std::string& what) {
  Result<RecordBatch> d = DecodeBatch(bytes);
  ASSERT_FALSE(d.ok()) << what;
  EXPECT_EQ(code, d.status().code()) << what << ": " << d.status().ToString();
}

TEST(RecordBatchCorruptionTest, FlippingAnyCoveredByteFailsTheCrc) {
  const std::string good = EncodeBatch(SmallBatch());
  ASSERT_TRUE(DecodeBatch(good).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      const std::string what = "byte " + std::to_string(i) + " mask " + std::to_string(mask);
      if (i < 8 || (i >= 12 && i < 16)) {
        // baseOffset and partitionLeaderEpoch are outside the CRC, as in Kafka: the broker
        // rewrites them without re-encoding.
        EXPECT_TRUE(DecodeBatch(bad).ok()) << what;
        continue;
      }
      ExpectCode(StatusCode::kCorruption, bad, what);
      EXPECT_FALSE(ParseBatchHeader(bad).ok()) << what;
    }
  }
}

TEST(RecordBatchCorruptionTest, ParseHeaderCanSkipCrc) {
  std::string bad = EncodeBatch(SmallBatch());
  bad[bad.size() - 1] ^= 0x01;
  EXPECT_FALSE(ParseBatchHeader(bad).ok());
  Result<BatchHeader> h = ParseBatchHeader(bad, /*verify_crc=*/false);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(2, h->record_count);
}

TEST(RecordBatchCorruptionTest, EveryTruncationIsRejected) {
  const std::string good = EncodeBatch(SmallBatch());
  for (size_t len = 0; len < good.size(); ++len) {
    const std::string_view prefix(good.data(), len);
    ExpectCode(StatusCode::kCorruption, prefix, "length " + std::to_string(len));
    EXPECT_FALSE(ParseBatchHeader(prefix).ok()) << len;
  }
  // Trailing bytes after a whole batch are not part of it.
  size_t consumed = 0;
  ASSERT_TRUE(DecodeBatch(good + "junk", &consumed).ok());
  EXPECT_EQ(good.size(), consumed);
}

TEST(RecordBatchCorruptionTest, BadBatchLengthAndMagic) {
  std::string s = EncodeBatch(SmallBatch());
  const auto too_long = static_cast<int64_t>(s.size());  // 12 more than the real batchLength
  for (int64_t len : std::initializer_list<int64_t>{-1, 0, 48, 0x7fffffff, too_long}) {
    std::string bad = s;
    PutBigEndian(bad, 8, static_cast<uint32_t>(len), 4);
    ExpectCode(StatusCode::kCorruption, bad, "batchLength " + std::to_string(len));
  }
  for (int magic : {0, 1, 3, 0xff}) {
    std::string bad = s;
    bad[16] = static_cast<char>(magic);
    ExpectCode(StatusCode::kCorruption, bad, "magic " + std::to_string(magic));
  }
}

TEST(RecordBatchCorruptionTest, CompressedBatchesAreRefused) {
  for (int codec = 1; codec <= 4; ++codec) {
    std::string s = EncodeBatch(SmallBatch());
    PutBigEndian(s, 21, static_cast<uint32_t>(codec), 2);
    FixUp(s);
    Result<RecordBatch> d = DecodeBatch(s);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(StatusCode::kInvalidArgument, d.status().code());
    EXPECT_EQ("compressed batches are not supported", d.status().message());
    EXPECT_TRUE(ParseBatchHeader(s).ok());  // the header itself is intact
  }
}

// Zig-zag varint of a small value (one byte when |v| < 64).
std::string Z(int v) {
  uint32_t z = (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
  std::string out;
  while (z >= 0x80) {
    out.push_back(static_cast<char>((z & 0x7f) | 0x80));
    z >>= 7;
  }
  out.push_back(static_cast<char>(z));
  return out;
}

// A record body (after its length): attrs, tsDelta 0, offsetDelta, key, value, headers.
std::string Body(int offset_delta, const std::string& key_and_value = Z(1) + "k" + Z(1) + "v",
                 const std::string& headers = Z(0)) {
  return std::string(1, '\0') + Z(0) + Z(offset_delta) + key_and_value + headers;
}
std::string Framed(const std::string& body) { return Z(static_cast<int>(body.size())) + body; }

TEST(RecordBatchCorruptionTest, HandBuiltRecordsDecode) {
  Result<RecordBatch> d = DecodeBatch(RawBatch(Framed(Body(0)) + Framed(Body(1)), 2, 1));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(2u, d->records.size());
  EXPECT_EQ("k", *d->records[1].key);
  EXPECT_EQ("v", *d->records[1].value);

  // Kafka allows a null header value; it decodes as empty.
  const std::string header = Z(1) + Z(1) + "h" + Z(-1);
  d = DecodeBatch(RawBatch(Framed(Body(0, Z(-1) + Z(-1), header)), 1, 0));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->records[0].key.has_value());
  EXPECT_FALSE(d->records[0].value.has_value());
  ASSERT_EQ(1u, d->records[0].headers.size());
  EXPECT_EQ("", d->records[0].headers[0].value);

  // Gaps in offset deltas (as left by Kafka compaction) are fine.
  d = DecodeBatch(RawBatch(Framed(Body(0)) + Framed(Body(5)), 2, 5));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(5, d->records[1].offset_delta);
}

TEST(RecordBatchCorruptionTest, BadRecordFramingIsRejected) {
  const std::string kv = Z(1) + "k" + Z(1) + "v";
  const std::string body = Body(0);
  const std::string big = Framed(Body(0, Z(1) + "k" + Z(20) + std::string(20, 'v')));
  const std::string fields = "attributes, timestampDelta or offsetDelta";
  const std::string order = "offset delta out of order";
  struct Case {
    std::string what;
    std::string records;
    int32_t count;
    int32_t last_offset_delta;
    std::string expected;  // a fragment of the error message: the check that fired
  };
  const Case cases[] = {
      {"count above records", big, 2, 1, "record 1: truncated or invalid length"},
      {"count below records", Framed(body) + Framed(Body(1)), 1, 0, "after the last record"},
      {"negative count", Framed(body), -1, 0, "negative record count"},
      {"huge count", Framed(body), 0x7fffffff, 0x7ffffffe, "cannot fit"},
      {"length past batch", Z(static_cast<int>(body.size()) + 1) + body, 1, 0, "length out of"},
      {"length short of fields", Z(static_cast<int>(body.size()) - 1) + body, 1, 0,
       "invalid header count"},
      {"length beyond fields", Framed(body + "x"), 1, 0, "do not fill the record length"},
      {"negative length", Z(-1) + body, 1, 0, "length out of bounds"},
      {"length below minimum", Z(2) + std::string(12, '\0'), 1, 0, "length out of bounds"},
      {"key length -2", Framed(Body(0, Z(-2) + Z(1) + "v")), 1, 0, "invalid key length"},
      {"key past record", Framed(Body(0, Z(40) + "k" + Z(1) + "v")), 1, 0, "invalid key length"},
      {"value length -3", Framed(Body(0, Z(1) + "k" + Z(-3))), 1, 0, "invalid value length"},
      {"value past record", Framed(Body(0, Z(1) + "k" + Z(9) + "v")), 1, 0,
       "invalid value length"},
      {"negative header count", Framed(Body(0, kv, Z(-1))), 1, 0, "invalid header count"},
      {"header count past record", Framed(Body(0, kv, Z(1000))), 1, 0, "invalid header count"},
      {"header key null", Framed(Body(0, kv, Z(1) + Z(-1) + Z(0))), 1, 0, "invalid header"},
      {"header value -2", Framed(Body(0, kv, Z(1) + Z(1) + "h" + Z(-2))), 1, 0, "invalid header"},
      {"header truncated", Framed(Body(0, kv, Z(2) + Z(1) + "h" + Z(4) + "abcd")), 1, 0,
       "invalid header"},
      {"varint over 5 bytes",
       Framed(std::string(1, '\0') + Z(0) + "\x80\x80\x80\x80\x80\x00" + kv + Z(0)), 1, 0, fields},
      {"varint over 32 bits",
       Framed(std::string(1, '\0') + Z(0) + "\xff\xff\xff\xff\x7f" + kv + Z(0)), 1, 0, fields},
      {"varlong over 10 bytes",
       Framed(std::string(1, '\0') + std::string(10, '\x80') + "\x01" + Z(0) + kv + Z(0)), 1, 0,
       fields},
      {"unterminated varint at end", big + "\x80", 2, 1, "record 1: truncated or invalid length"},
      {"offset deltas not increasing", Framed(Body(1)) + Framed(Body(0)), 2, 1, order},
      {"offset delta past lastOffsetDelta", Framed(Body(3)), 1, 0, order},
      {"negative offset delta", Framed(Body(-1)), 1, 0, order},
      {"lastOffsetDelta below count", Framed(body) + Framed(Body(1)), 2, 0,
       "lastOffsetDelta smaller"},
  };
  for (const Case& c : cases) {
    Result<RecordBatch> d = DecodeBatch(RawBatch(c.records, c.count, c.last_offset_delta));
    ASSERT_FALSE(d.ok()) << c.what;
    EXPECT_EQ(StatusCode::kCorruption, d.status().code()) << c.what;
    EXPECT_NE(std::string::npos, d.status().message().find(c.expected))
        << c.what << ": " << d.status().message();
  }
}

// Mutates valid batches at random (byte flips, overwrites, truncation, insertion), sometimes
// fixing up length and CRC so the mutation reaches the record parser. Nothing may crash (run
// under ASan/UBSan too); whatever decodes must re-encode and decode again.
TEST(RecordBatchCorruptionTest, RandomMutationsNeverCrash) {
  std::mt19937 rng(7);
  const std::string base = EncodeBatch(SmallBatch());
  int decoded = 0;
  for (int iter = 0; iter < 10000; ++iter) {
    std::string s = base;
    const int mutations = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < mutations; ++m) {
      const size_t pos = rng() % s.size();
      const uint32_t kind = rng() % 5;
      if (kind == 0) {
        s[pos] = static_cast<char>(s[pos] ^ (1 << (rng() % 8)));
      } else if (kind == 1) {
        s[pos] = static_cast<char>(rng());
      } else if (kind == 2) {
        s.resize(std::max<size_t>(pos, 1));
      } else if (kind == 3) {
        s.insert(pos, 1, static_cast<char>(rng()));
      } else if (s.size() > 1) {
        s.erase(pos, 1);
      }
    }
    if (rng() % 2 == 0 && s.size() >= kBatchHeaderSize) {
      FixUp(s);
    }
    size_t consumed = 0;
    Result<RecordBatch> d = DecodeBatch(s, &consumed);
    (void)ParseBatchHeader(s);
    if (d.ok()) {
      ++decoded;
      EXPECT_LE(consumed, s.size());
      ASSERT_TRUE(DecodeBatch(EncodeBatch(*d)).ok()) << "iter " << iter;
    } else {
      EXPECT_TRUE(d.status().code() == StatusCode::kCorruption ||
                  d.status().code() == StatusCode::kInvalidArgument)
          << d.status().ToString();
    }
  }
  EXPECT_GT(decoded, 0);  // some mutations (e.g. of key bytes, then fixed up) stay valid
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// DecodeLimits (produce): counts and sizes over a bound are kInvalidArgument naming the record
// and field; the header count is checked before the headers are allocated.
TEST(RecordBatchLimitsTest, BoundsNameTheRecordAndField) {
  DecodeLimits limits;
  limits.max_records = 2;
  limits.max_headers = 2;
  limits.max_key_bytes = 4;
  auto decode = [&](const RecordBatch& b, DecodeViolation* v) {
    return DecodeBatch(EncodeBatch(b), nullptr, &limits, v);
  };
  RecordBatch b = SmallBatch();  // two records, two headers each, keys of 4 bytes
  DecodeViolation v;
  ASSERT_TRUE(decode(b, &v).ok());
  EXPECT_TRUE(DecodeBatch(EncodeBatch(b)).ok());

  b.records.push_back(b.records[0]);
  Result<RecordBatch> d = decode(b, &v);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(StatusCode::kInvalidArgument, d.status().code());
  EXPECT_EQ("records", v.field);
  EXPECT_EQ(-1, v.index);
  EXPECT_TRUE(DecodeBatch(EncodeBatch(b)).ok()) << "no limits: stored data reads back";

  b = SmallBatch();
  b.records[1].headers.push_back({"x", ""});
  d = decode(b, &v);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ("headers", v.field);
  EXPECT_EQ(1, v.index);
  EXPECT_NE(d.status().message().find("3 headers, more than 2"), std::string::npos);

  b = SmallBatch();
  b.records[0].key = "12345";
  d = decode(b, &v);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ("key", v.field);
  EXPECT_EQ(0, v.index);
}

// 8 M empty headers in one 16 MiB record: refused by the count, before ~840 MB of allocations.
TEST(RecordBatchLimitsTest, HugeHeaderCountIsRefusedCheaply) {
  RecordBatch b = SmallBatch();
  b.records[0].headers.resize(8'000'000);
  const std::string encoded = EncodeBatch(b);
  ASSERT_GT(encoded.size(), 16'000'000u);
  DecodeLimits limits;
  DecodeViolation v;
  Result<RecordBatch> d = DecodeBatch(encoded, nullptr, &limits, &v);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ("headers", v.field);
}

}  // namespace
}  // namespace sluice
