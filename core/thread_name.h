// Names the calling thread (at most 15 characters, the kernel's limit; longer names are cut), so
// `top -H`, `ps -L`, perf and gdb show which of the gateway's or broker's threads is busy.
#pragma once

#include <pthread.h>

#include <string>

namespace sluice {

inline void SetCurrentThreadName(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace sluice
