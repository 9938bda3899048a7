#include "tests/cloud-broker/thread_probe.h"

#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>

namespace sluice::broker::testing {
namespace {
std::atomic<int64_t> g_created{0};
std::atomic<int64_t> g_allowed{-1};  // < 0: no limit
}  // namespace

int64_t ThreadsCreated() { return g_created.load(); }
void FailThreadCreationAfter(int64_t n) { g_allowed.store(n); }

}  // namespace sluice::broker::testing

extern "C" int pthread_create(pthread_t* thread, const pthread_attr_t* attr,
                              void* (*start)(void*), void* arg) {
  using Fn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "pthread_create"));
  using sluice::broker::testing::g_allowed;
  sluice::broker::testing::g_created.fetch_add(1);
  int64_t allowed = g_allowed.load();
  while (allowed >= 0) {
    if (allowed == 0) {
      return EAGAIN;
    }
    if (g_allowed.compare_exchange_weak(allowed, allowed - 1)) {
      break;
    }
  }
  return real(thread, attr, start, arg);
}
