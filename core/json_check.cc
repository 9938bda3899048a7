#include "core/json_check.h"

#include <cstdint>
#include <string>
#include <vector>

#include "core/utf8.h"

namespace sluice {
namespace {

class Checker {
 public:
  Checker(std::string_view s, int max_depth) : s_(s), max_depth_(max_depth) {}

  Status Run() {
    SkipWs();
    // Each iteration reads one value; containers push and continue with their first element.
    while (true) {
      if (!Value()) {
        return error_;
      }
      // After a value: close containers or move to the next element.
      while (true) {
        SkipWs();
        if (stack_.empty()) {
          return i_ == s_.size() ? Status::Ok() : Fail("unexpected data after the JSON value");
        }
        const bool in_object = stack_.back();
        if (At(in_object ? '}' : ']')) {
          ++i_;
          stack_.pop_back();
          continue;
        }
        if (!At(',')) {
          return Fail(in_object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        ++i_;
        SkipWs();
        if (in_object && !MemberKey()) {
          return error_;
        }
        break;
      }
    }
  }

 private:
  bool At(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void SkipWs() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool Failed(const std::string& what) {
    error_ = Status::InvalidArgument("invalid JSON: " + what + " at offset " + std::to_string(i_));
    return false;
  }
  Status Fail(const std::string& what) {
    Failed(what);
    return error_;
  }

  // `"key"` then `:`; the caller skipped whitespace before it.
  bool MemberKey() {
    if (!At('"')) {
      return Failed("expected a string key");
    }
    if (!String()) {
      return false;
    }
    SkipWs();
    if (!At(':')) {
      return Failed("expected ':'");
    }
    ++i_;
    SkipWs();
    return true;
  }

  // One value at i_ (whitespace already skipped). A container is opened and, unless empty,
  // left open with i_ at its first element's start; an empty one is consumed whole.
  bool Value() {
    while (true) {
      if (i_ >= s_.size()) {
        return Failed("unexpected end");
      }
      const char c = s_[i_];
      if (c == '{' || c == '[') {
        if (static_cast<int>(stack_.size()) >= max_depth_) {
          return Failed("nested deeper than " + std::to_string(max_depth_));
        }
        ++i_;
        SkipWs();
        if (At(c == '{' ? '}' : ']')) {
          ++i_;
          return true;
        }
        stack_.push_back(c == '{');
        if (c == '{' && !MemberKey()) {
          return false;
        }
        continue;  // the first element
      }
      if (c == '"') {
        return String();
      }
      if (c == '-' || (c >= '0' && c <= '9')) {
        return Number();
      }
      return Literal("true") || Literal("false") || Literal("null") ||
             Failed("expected a JSON value");
    }
  }

  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) == word) {
      i_ += word.size();
      return true;
    }
    return false;
  }

  size_t Digits() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      ++i_;
    }
    return i_ - start;
  }

  bool Number() {
    if (At('-')) {
      ++i_;
    }
    if (At('0')) {
      ++i_;
    } else if (Digits() == 0) {
      return Failed("invalid number");
    }
    if (At('.')) {
      ++i_;
      if (Digits() == 0) {
        return Failed("invalid number fraction");
      }
    }
    if (At('e') || At('E')) {
      ++i_;
      if (At('+') || At('-')) {
        ++i_;
      }
      if (Digits() == 0) {
        return Failed("invalid number exponent");
      }
    }
    return true;
  }

  // Four hex digits after "\u" at i_; the code unit in *u.
  bool Hex4(uint32_t* u) {
    if (i_ + 4 > s_.size()) {
      return false;
    }
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_ + k];
      v <<= 4;
      if (h >= '0' && h <= '9') {
        v |= static_cast<uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        v |= static_cast<uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        v |= static_cast<uint32_t>(h - 'A' + 10);
      } else {
        return false;
      }
    }
    i_ += 4;
    *u = v;
    return true;
  }

  bool String() {
    ++i_;  // the opening quote
    while (true) {
      if (i_ >= s_.size()) {
        return Failed("unterminated string");
      }
      const auto c = static_cast<uint8_t>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) {
        return Failed("control character in a string");
      }
      if (c >= 0x80) {
        const size_t n = Utf8SeqLen(s_, i_);
        if (n == 0) {
          return Failed("invalid UTF-8 in a string");
        }
        i_ += n;
        continue;
      }
      if (c != '\\') {
        ++i_;
        continue;
      }
      ++i_;
      if (i_ >= s_.size()) {
        return Failed("unterminated string");
      }
      const char e = s_[i_++];
      if (e == 'u') {
        uint32_t u = 0;
        if (!Hex4(&u)) {
          return Failed("invalid \\u escape");
        }
        if (u >= 0xDC00 && u <= 0xDFFF) {
          return Failed("lone low surrogate");
        }
        if (u >= 0xD800 && u <= 0xDBFF) {
          uint32_t low = 0;
          if (!Literal("\\u") || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
            return Failed("high surrogate without a low one");
          }
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return Failed("invalid escape");
      }
    }
  }

  std::string_view s_;
  int max_depth_;
  size_t i_ = 0;
  std::vector<bool> stack_;  // open containers: true = object, false = array
  Status error_;
};

}  // namespace

Status CheckJson(std::string_view text, int max_depth) { return Checker(text, max_depth).Run(); }

}  // namespace sluice
