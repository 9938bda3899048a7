// Logging: one line per event on stderr, "2024-05-01T12:00:00.123Z LEVEL component: message".
// RateLimitedLog keeps a repeated warning (a drop, a refused batch) from flooding the log: it
// prints at most one line per key per interval, with the count suppressed since the last one.
// Thread-safety: all functions are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace sluice {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

void SetLogLevel(LogLevel level);
bool ParseLogLevel(const std::string& text, LogLevel* level);
void Log(LogLevel level, const std::string& component, const std::string& message);

inline void LogInfo(const std::string& c, const std::string& m) { Log(LogLevel::kInfo, c, m); }
inline void LogWarn(const std::string& c, const std::string& m) { Log(LogLevel::kWarn, c, m); }
inline void LogError(const std::string& c, const std::string& m) { Log(LogLevel::kError, c, m); }

class RateLimitedLog {
 public:
  explicit RateLimitedLog(int64_t interval_ms = 5000) : interval_ms_(interval_ms) {}
  void Log(LogLevel level, const std::string& component, const std::string& key,
           const std::string& message);

 private:
  struct Slot {
    int64_t last_ms = 0;
    uint64_t suppressed = 0;
  };
  int64_t interval_ms_;
  std::mutex mu_;
  std::map<std::string, Slot> slots_;
};

}  // namespace sluice
