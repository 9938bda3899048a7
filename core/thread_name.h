// Names the calling thread (at most 15 characters, the kernel's limit; longer names are cut), so
// `top -H`, `ps -L`, perf and gdb show which of the gateway's or broker's threads is busy.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

namespace sluice {

inline void SetCurrentThreadName(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

// Makes the calling thread yield the CPU to normal threads: nice 19 (the default) for background
// work that may fall behind when the machine is busy (the broker's query indexer) but must not
// slow what clients wait for; nice 10 for work a client waits for that must still come after
// ingest (queries: at nice 10 a busy query thread gets about a tenth of a core that a normal
// thread also wants). Best effort: false if the kernel refused.
inline bool LowerCurrentThreadPriority(int nice = 19) {
  return setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), nice) == 0;
}

}  // namespace sluice
