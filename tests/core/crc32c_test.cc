#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/crc32c_internal.h"

namespace sluice::crc32c {
namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) {
    c = static_cast<char>(rng() & 0xff);
  }
  return s;
}

// RFC 3720 (iSCSI), appendix B.4 "CRC Examples".
TEST(Crc32cTest, Rfc3720Vectors) {
  std::string zeros(32, '\0');
  EXPECT_EQ(0x8A9136AAu, Value(zeros));
  std::string ones(32, '\xff');
  EXPECT_EQ(0x62A8AB43u, Value(ones));
  std::string ascending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
  }
  EXPECT_EQ(0x46DD794Eu, Value(ascending));
  std::string descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    descending[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(0x113FDB5Cu, Value(descending));
}

TEST(Crc32cTest, CheckValue) {
  // The standard "check" value of the CRC-32C catalogue entry.
  EXPECT_EQ(0xE3069283u, Value(std::string_view("123456789")));
  EXPECT_EQ(0u, Value(std::string_view()));
}

TEST(Crc32cTest, ExtendOverSplitBuffersEqualsWhole) {
  const std::string data = RandomBytes(300, 1);
  const uint32_t whole = Value(data);
  for (size_t split = 0; split <= data.size(); ++split) {
    uint32_t crc = Extend(0, data.data(), split);
    crc = Extend(crc, data.data() + split, data.size() - split);
    ASSERT_EQ(whole, crc) << "split at " << split;
  }
}

TEST(Crc32cTest, SoftwareAndHardwareAgreeOnEveryLengthAndAlignment) {
  const std::string data = RandomBytes(4096 + 16, 2);
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t len : {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 255, 1000, 4096}) {
      const char* p = data.data() + offset;
      const uint32_t sw = internal::ExtendSoftware(0, p, len);
      EXPECT_EQ(sw, Value(p, len)) << "offset " << offset << " len " << len;
      if (internal::HardwareAvailable()) {
        EXPECT_EQ(sw, internal::ExtendHardware(0, p, len)) << "offset " << offset << " len " << len;
        EXPECT_EQ(internal::ExtendSoftware(0x12345678, p, len),
                  internal::ExtendHardware(0x12345678, p, len));
      }
    }
  }
}

TEST(Crc32cTest, SoftwarePathMatchesVectors) {
  std::string zeros(32, '\0');
  EXPECT_EQ(0x8A9136AAu, internal::ExtendSoftware(0, zeros.data(), zeros.size()));
  EXPECT_EQ(0xE3069283u, internal::ExtendSoftware(0, "123456789", 9));
}

TEST(Crc32cTest, DetectsSingleBitFlips) {
  std::string data = RandomBytes(64, 3);
  const uint32_t crc = Value(data);
  for (size_t i = 0; i < data.size() * 8; ++i) {
    data[i / 8] ^= static_cast<char>(1 << (i % 8));
    EXPECT_NE(crc, Value(data)) << "bit " << i;
    data[i / 8] ^= static_cast<char>(1 << (i % 8));
  }
}

}  // namespace
}  // namespace sluice::crc32c
