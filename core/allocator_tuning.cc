#include "core/allocator_tuning.h"

#include <malloc.h>

namespace sluice {

void TuneAllocatorForLargeBuffers() {
  // Bodies are capped by http.max_body_bytes (16 MiB by default); larger ones still use mmap.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  // Keep up to 8 MiB of freed heap at the top of each arena instead of trimming it after every
  // large request. Not more: malloc_trim() only shrinks the main arena's top, so what a thread
  // arena (one per HTTP thread) keeps below this stays resident while idle. With 128 MiB the
  // gateway's idle RSS after a burst of 1,000-event posts was 17-33 MB depending on the run
  // (bench/gateway_footprint.sh), with 8 MiB 16-23 MB; 2 MiB cost a third of NDJSON ingest.
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
}

}  // namespace sluice
