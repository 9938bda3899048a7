#include "core/logging.h"

#include <atomic>
#include <cstdio>

#include "core/clock.h"
#include "core/time_util.h"

namespace sluice {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_write_mu;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool ParseLogLevel(const std::string& text, LogLevel* level) {
  if (text == "debug") *level = LogLevel::kDebug;
  else if (text == "info") *level = LogLevel::kInfo;
  else if (text == "warn" || text == "warning") *level = LogLevel::kWarn;
  else if (text == "error") *level = LogLevel::kError;
  else return false;
  return true;
}

void Log(LogLevel level, const std::string& component, const std::string& message) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  std::string line = FormatRfc3339Ms(SystemClock::Instance().NowMs());
  line += ' ';
  line += LevelName(level);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  std::lock_guard<std::mutex> lock(g_write_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void RateLimitedLog::Log(LogLevel level, const std::string& component, const std::string& key,
                         const std::string& message) {
  const int64_t now = SystemClock::Instance().MonotonicUs() / 1000;
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& slot = slots_[key];
    if (slot.last_ms != 0 && now - slot.last_ms < interval_ms_) {
      ++slot.suppressed;
      return;
    }
    suppressed = slot.suppressed;
    slot.suppressed = 0;
    slot.last_ms = now;
  }
  if (suppressed > 0) {
    sluice::Log(level, component,
                message + " (" + std::to_string(suppressed) + " similar suppressed)");
  } else {
    sluice::Log(level, component, message);
  }
}

}  // namespace sluice
