// RFC 3339 timestamps <-> epoch milliseconds. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

// Accepts "2024-05-01T12:00:00Z", fractional seconds, and "+hh:mm"/"-hh:mm" offsets.
bool ParseRfc3339Ms(const std::string& text, int64_t* epoch_ms);
// "2024-05-01T12:00:00.123Z" (UTC, millisecond precision).
std::string FormatRfc3339Ms(int64_t epoch_ms);

}  // namespace sluice
