// A strict, iterative JSON validator (RFC 8259): decides whether bytes are exactly one JSON value,
// so they can be embedded verbatim in a JSON answer (the broker's fetch and query, docs/API.md)
// instead of being parsed into a DOM and re-serialised, which altered numbers and recursed once
// per nesting level (a deeply nested payload overflowed the stack).
//
// Contract: CheckJson accepts `text` iff it is one JSON value with optional whitespace around
// it, whose strings are valid UTF-8 with no raw control characters and valid escapes (a \u
// surrogate must be a high one followed by a low one), and whose containers nest at most
// `max_depth` deep (`{}` is depth 1, a scalar depth 0). Numbers follow the RFC grammar with no
// range limit (they are never converted). Memory: O(max_depth) bits; no recursion.
// Thread-safety: pure function.
#pragma once

#include <string_view>

#include "core/status.h"

namespace sluice {

// The deepest JSON nesting any Sluice component accepts from a device or writes into an answer:
// the gateway's `ingest.max_json_depth` may not exceed it, and the broker renders stored
// payloads up to this depth as JSON (deeper ones as base64), so a consumer parsing an answer
// recursively never recurses more than a few hundred levels.
inline constexpr int kMaxJsonDepthLimit = 256;

// Ok, or kInvalidArgument naming the first problem and its byte offset.
Status CheckJson(std::string_view text, int max_depth);

}  // namespace sluice
