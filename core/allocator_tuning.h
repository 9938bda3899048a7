// Allocator tuning for servers that handle request bodies of hundreds of KiB.
// glibc serves allocations above M_MMAP_THRESHOLD (128 KiB at start) with a fresh mmap, so every
// produce or ingest body paid for page faults and zeroed pages, and trimming returned freed heap
// to the kernel only to fault it in again: ~11% of broker CPU in the produce profile
// (docs/BENCHMARKS.md). Keeping such buffers on the heap lets them be reused.
// Thread-safety: call once at start-up, before threads are started.
#pragma once

namespace sluice {

void TuneAllocatorForLargeBuffers();

}  // namespace sluice
