// CheckJson (core/json_check.h) and the UTF-8 helpers (core/utf8.h): RFC 8259 grammar, the depth
// bound without recursion, and strictness about what a payload may be embedded verbatim as.
#include "core/json_check.h"

#include <gtest/gtest.h>

#include <string>

#include "core/utf8.h"

namespace sluice {
namespace {

bool Ok(std::string_view s, int depth = 64) { return CheckJson(s, depth).ok(); }

TEST(JsonCheckTest, AcceptsJsonValues) {
  for (const char* s :
       {"{}", "[]", "0", "-0", "1.5e-3", "123456789012345678901234567890", "1E+400",
        "0.49528059050664996", "\"\"", "true", "false", "null", " {\"a\" : [1, 2, {\"b\":null}]} ",
        "\"\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\"", "\"h\xC3\xA9\"", "[[],{},\"x\"]",
        "{\"a\":{},\"b\":[]}"}) {
    EXPECT_TRUE(Ok(s)) << s << ": " << CheckJson(s, 64).ToString();
  }
}

TEST(JsonCheckTest, RefusesWhatIsNotOneJsonValue) {
  for (const char* s : {"", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "01",
                        "1.", ".5", "-", "1e", "+1", "tru", "nul", "\"abc", "[1 2]", "{} {}",
                        "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
                        "NaN", "[1]]", "'a'"}) {
    EXPECT_FALSE(Ok(s)) << s;
  }
  // Raw control characters, NUL (also after the value) and invalid UTF-8 in strings.
  EXPECT_FALSE(Ok(std::string("\"a\nb\"")));
  EXPECT_FALSE(Ok(std::string("{}\0", 3)));
  EXPECT_FALSE(Ok(std::string("\"a\0b\"", 5)));
  EXPECT_FALSE(Ok("\"\xC3\x28\""));
  EXPECT_FALSE(Ok("\"\xED\xA0\x80\""));  // a surrogate encoded in UTF-8
  EXPECT_FALSE(Ok("\"\xC0\xAF\""));      // overlong
}

TEST(JsonCheckTest, DepthBound) {
  EXPECT_TRUE(Ok("[[[1]]]", 3));
  EXPECT_FALSE(Ok("[[[1]]]", 2));
  EXPECT_TRUE(Ok("{\"a\":{\"b\":{}}}", 3));
  EXPECT_FALSE(Ok("{\"a\":{\"b\":{}}}", 2));
  EXPECT_TRUE(Ok("1", 0));
  Status st = CheckJson("[[[", 2);
  EXPECT_NE(st.message().find("nested deeper than 2"), std::string::npos) << st.ToString();
}

// 10 million levels: no recursion, so no stack overflow; refused at the bound, and accepted
// when the bound allows it (iteration only).
TEST(JsonCheckTest, HostileNestingNeverRecurses) {
  const size_t n = 10'000'000;
  std::string deep(n, '[');
  deep.append(n, ']');
  EXPECT_FALSE(Ok(deep, kMaxJsonDepthLimit));
  EXPECT_TRUE(Ok(deep, static_cast<int>(n)));
}

TEST(Utf8Test, Validity) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC3\x28"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
}

}  // namespace
}  // namespace sluice
