#!/usr/bin/env bash
# Configures and builds milvus-cdc into build/ (installs system packages first).
# Env: CDC_WERROR=ON to fail on warnings (CI), BUILD_TYPE (default RelWithDebInfo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DCDC_WERROR="${CDC_WERROR:-OFF}" >/dev/null
cmake --build build -j"$(nproc)"
