// UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), shared by
// the gateway (event fields it accepts) and the broker (JSON it writes). Thread-safety: pure
// functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace sluice {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if none starts there.
// Requires i < s.size().
size_t Utf8SeqLen(std::string_view s, size_t i);

// True if all of `s` is valid UTF-8.
bool IsValidUtf8(std::string_view s);

// Valid UTF-8 without control characters (U+0000..U+001F, U+007F): text that is safe to route,
// log and serve back as a JSON string unchanged (sensor names, gateway ids).
bool IsPrintableUtf8(std::string_view s);

}  // namespace sluice
