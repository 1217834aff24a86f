#!/usr/bin/env bash
# Builds and runs the insert hot-path micro-benchmark (bench/micro, Google Benchmark); no test bed.
#   bench/micro.sh                         all benchmarks
#   bench/micro.sh --benchmark_filter=768  any Google Benchmark flag
# Env: CDC_BUILD_DIR (default build; configured like scripts/build.sh when it is not yet).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${CDC_BUILD_DIR:-build}
bash scripts/install-deps.sh >/dev/null
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
fi
cmake -S . -B "$dir" -DCDC_BUILD_BENCH=ON >/dev/null
cmake --build "$dir" --target cdc_micro_bench -j"$(nproc)"
exec "$dir/bench/micro/cdc_micro_bench" "$@"
