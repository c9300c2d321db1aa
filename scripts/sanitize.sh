#!/usr/bin/env bash
# Builds everything with AddressSanitizer (leaks included) and
# UndefinedBehaviorSanitizer in build-asan and runs the whole CTest suite
# (unit, interop, CLI with its bad-input matrix, docs, main job) under them.
# Any sanitizer report fails the test that triggered it.
#
# Usage: scripts/sanitize.sh [CTEST_ARGS...]   (e.g. -R cli.tensor-info)
# Environment:
#   SANITIZE_BUILD  build folder (default build-asan)
#   SANITIZE_JOBS   build and test jobs (default: nproc)
#   CXX             compiler (default: the system c++; clang++ works too)
#   RUN_TIMEOUT     seconds per command in the CLI tests (default 60 here:
#                   sanitized binaries are 2-3x slower)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD:-$root/build-asan}
jobs=${SANITIZE_JOBS:-$(nproc 2>/dev/null || echo 2)}

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=None \
  ${CXX:+-DCMAKE_CXX_COMPILER="$CXX"} \
  -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer $san" \
  -DCMAKE_EXE_LINKER_FLAGS="$san" \
  -DNNKIT_TESTS=ON -DNNKIT_BENCH=OFF -DNNKIT_FUZZ=OFF >/dev/null
cmake --build "$build" -j "$jobs"

# Some tests probe huge allocations on purpose: a failed allocation must come
# back as null (then std::bad_alloc, which nnkit turns into a data error), not
# kill the process. Leaks are errors.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-}
export RUN_TIMEOUT=${RUN_TIMEOUT:-60}
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 1800 "$@"
