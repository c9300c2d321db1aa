#!/usr/bin/env bash
# Configures and builds the tools, then runs the main job (examples/main-job.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNNKIT_TESTS=OFF -DNNKIT_BENCH=OFF
cmake --build "$build" -j "$jobs"
NNKIT_BIN=$build/bin "$root/examples/main-job.sh"
