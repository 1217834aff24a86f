#include "task/pipeline.h"

#include <algorithm>

namespace cdc {

void FillLag(std::vector<ChannelProgress>* channels, int64_t now_ms) {
  for (auto& c : *channels) {
    if (c.replicate || c.ts == 0) continue;
    const int64_t applied_ms = static_cast<int64_t>(c.ts >> 18);  // physical part of a hybrid ts
    c.lag_ms = std::max<int64_t>(0, now_ms - applied_ms);
  }
}

}  // namespace cdc
