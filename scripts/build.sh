#!/usr/bin/env bash
# Configures and builds milvus-cdc into build/ (installs system packages first).
# Env: CDC_WERROR=ON to fail on warnings (CI), BUILD_TYPE (default RelWithDebInfo),
# CDC_DEBUG_INFO=OFF to build RelWithDebInfo without -g (same code, faster build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
extra=()
if [ "${CDC_DEBUG_INFO:-ON}" = OFF ]; then extra+=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG"); fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DCDC_WERROR="${CDC_WERROR:-OFF}" "${extra[@]}" >/dev/null
cmake --build build -j"$(nproc)"
