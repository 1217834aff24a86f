// Keeps the process's resident memory close to what it holds. With glibc's defaults every
// thread that allocates gets its own arena (up to 8 per core), and freed buffers of a burst
// (multi-MiB packs and Insert calls) stay in them. A replicator runs for months with bursts.
#pragma once

namespace cdc {

// Call once at start, before any thread: at most two malloc arenas. (A fixed, low mmap
// threshold would return big buffers at once, but doubled the CPU per row: page faults.)
void TuneAllocator();

// Gives freed heap pages back to the system (malloc_trim). Cheap; call every second or so.
void ReleaseFreeMemory();

}  // namespace cdc
