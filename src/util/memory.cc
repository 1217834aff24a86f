#include "util/memory.h"

#include <malloc.h>

namespace cdc {

void TuneAllocator() { mallopt(M_ARENA_MAX, 2); }

void ReleaseFreeMemory() { malloc_trim(0); }

}  // namespace cdc
