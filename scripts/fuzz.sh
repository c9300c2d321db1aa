#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (in build-fuzz), replays the committed regression
# inputs, then fuzzes each target for a fixed time on its seed corpus.
# Fails when any target crashes; the crashing input is left in
# build-fuzz/findings/TARGET/ (copy it to tests/fuzz/regressions/TARGET/).
#
# Usage: scripts/fuzz.sh [TARGET...]        (default: every target)
# Environment:
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_JOBS      build jobs (default 2)
#   FUZZ_BUILD     build folder (default build-fuzz)
#   CXX            clang++ to use (default: clang++, else clang++-14)
#   FUZZ_ARGS      extra libFuzzer flags for every run
#   FUZZ_NO_BUILD  1: run the targets already built in FUZZ_BUILD as they are
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-2}
cxx=${CXX:-}
if [ -z "$cxx" ]; then
  for c in clang++ clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
  done
fi
[ -n "$cxx" ] || { echo "fuzz.sh: no clang++ found (scripts/install-deps.sh installs it)" >&2; exit 1; }

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DNNKIT_FUZZ=ON -DNNKIT_TESTS=OFF -DNNKIT_BENCH=OFF >/dev/null
cmake --build "$build" --target fuzz-targets -j "$jobs"
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.cpp; do
    t=${f##*/fuzz_}
    targets+=("${t%.cpp}")
  done
fi

# Huge claims must be refused before allocation: a single malloc above
# -malloc_limit_mb (default: the RSS limit, 2048 MB) counts as a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
summary=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz.sh: no target $t" >&2; failed+=("$t"); continue; }
  seeds=$root/tests/fuzz/corpus/$t
  regress=$root/tests/fuzz/regressions/$t
  work=$build/corpus/$t         # the growing corpus, outside the source tree
  findings=$build/findings/$t
  mkdir -p "$work" "$findings"
  log=$build/fuzz-$t.log

  # Regression inputs first: each must run clean.
  if [ -d "$regress" ] && [ -n "$(ls -A "$regress")" ]; then
    if ! "$bin" -runs=0 "$regress"/* >"$build/regress-$t.log" 2>&1; then
      echo "fuzz.sh: $t: a regression input crashes again (see $build/regress-$t.log)" >&2
      failed+=("$t")
      continue
    fi
  fi

  echo "fuzz.sh: $t for ${seconds}s"
  before=$(find "$findings" -type f | wc -l)
  set +e
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$findings/" -print_final_stats=1 ${FUZZ_ARGS:-} \
    "$work" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  crashes=$(($(find "$findings" -type f | wc -l) - before))  # crash-, leak-, oom-, timeout- files
  summary+=("$(printf '%-16s %4ss %10s execs  %d crashes  %s' "$t" "$seconds" "${execs:-?}" "$crashes" "${cov:-}")")
  if [ $rc -ne 0 ]; then
    echo "fuzz.sh: $t CRASHED (exit $rc); input in $findings/, log $log" >&2
    grep -E 'ERROR: |runtime error|invariant violated|uncaught|SUMMARY' "$log" | head -5 >&2 || true
    failed+=("$t")
  fi
done

echo "fuzz.sh: summary (target, time, executions, crashes, coverage)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no crashes"
