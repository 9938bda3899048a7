// Counts (and can refuse) thread creation in this test binary: thread_probe.cc defines
// pthread_create, which the dynamic linker binds ahead of libc's (and ASan's), and forwards to
// the next definition. Link thread_probe.cc into a test binary to use it.
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>

namespace sluice::broker::testing {

// pthread_create calls since the process started (successful or refused).
int64_t ThreadsCreated();
// From now on let `n` more pthread_create calls through, then fail them with EAGAIN, as the
// kernel does at a thread limit (RLIMIT_NPROC, pids.max). n < 0: never fail (the default).
void FailThreadCreationAfter(int64_t n);

}  // namespace sluice::broker::testing
