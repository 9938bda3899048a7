// Exact text of the records in a broker answer (fetch, query: docs/API.md), so the CLI shows
// payloads as the broker sent them instead of re-serialising a DOM, which changed numbers
// (0.49528059050664996 -> 0.4952805905066499). Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::cli {

// The `next` cursor of a query answer (a JSON object), or "" (absent, null, or not an object).
std::string NextCursor(const std::string& answer);

// One element of the answer's top-level "records" array: its text, and the text of its
// "payload" member (empty if it has none). Views into the answer.
struct RecordSpan {
  std::string_view record;
  std::string_view payload;
};

// The spans of every element of the top-level "records" array, in order (an element that is
// not an object or array gets empty spans). kInvalidArgument if `json` is not valid JSON.
// Iterative (no recursion); callers bound the depth first (core/json_check.h).
Result<std::vector<RecordSpan>> FindRecordSpans(std::string_view json);

// `json` without the whitespace outside its strings: one line, every value's text unchanged.
// Requires valid JSON.
std::string CompactJsonText(std::string_view json);

}  // namespace sluice::cli
