#include "core/time_util.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(TimeUtilTest, ParsesRfc3339Forms) {
  int64_t ms;
  ASSERT_TRUE(ParseRfc3339Ms("1970-01-01T00:00:00Z", &ms));
  EXPECT_EQ(ms, 0);
  ASSERT_TRUE(ParseRfc3339Ms("2024-05-01T12:00:00.123Z", &ms));
  EXPECT_EQ(ms, 1714564800123);
  ASSERT_TRUE(ParseRfc3339Ms("2024-05-01T14:00:00.5+02:00", &ms));
  EXPECT_EQ(ms, 1714564800500);
  ASSERT_TRUE(ParseRfc3339Ms("2024-02-29T00:00:00Z", &ms));
}

TEST(TimeUtilTest, RejectsMalformed) {
  int64_t ms;
  for (const char* bad : {"", "2024-05-01", "2024-13-01T00:00:00Z", "2024-05-01T00:00:00",
                          "2024-05-01T00:00:00Zjunk", "2024-05-01T25:00:00Z", "abcd-05-01T00:00:00Z",
                          "2024-05-01T00:00:00.Z", "2024-05-01T00:00:00+0200"}) {
    EXPECT_FALSE(ParseRfc3339Ms(bad, &ms)) << bad;
  }
}

TEST(TimeUtilTest, FormatRoundTrips) {
  EXPECT_EQ(FormatRfc3339Ms(1714564800123), "2024-05-01T12:00:00.123Z");
  int64_t ms;
  ASSERT_TRUE(ParseRfc3339Ms(FormatRfc3339Ms(1234567890123), &ms));
  EXPECT_EQ(ms, 1234567890123);
}

}  // namespace
}  // namespace sluice
