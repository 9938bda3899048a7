#include "core/allocator_tuning.h"

#include <malloc.h>

namespace sluice {

void TuneAllocatorForLargeBuffers() {
  // Bodies are capped by http.max_body_bytes (16 MiB by default); larger ones still use mmap.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  // Keep up to 128 MiB of freed heap instead of trimming it after every large request.
  mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
}

}  // namespace sluice
