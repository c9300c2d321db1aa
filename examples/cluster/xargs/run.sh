#!/usr/bin/env bash
# The cluster pipeline (../steps.sh) with xargs -P: every shard of a step is
# one process, JOBS at a time; a failing one is retried RETRIES times, and
# the run stops after a step with a shard that still fails. Run it again to
# finish: every shard rewrites the same bytes (SKIP_DONE=1 skips the shards
# whose outputs exist).
#   JOBS     processes at once (default: the number of cores)
#   THREADS  threads of each process, BLAS included (default: 1)
#   RETRIES  extra attempts of a failing shard (default: 2)
#   and the settings of ../steps.sh: NNKIT_BIN, WORK, SHARDS, SAMPLES, ...
# Usage: bash examples/cluster/xargs/run.sh   (results: $WORK/result)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
steps=$here/steps.sh
export WORK=${WORK:-$(dirname "$(dirname "$here")")/out/cluster/xargs}
export OPENBLAS_NUM_THREADS=${THREADS:-1}

bash "$steps" prepare
. "$WORK/config"
each() {  # each STEP [ARG]: bash steps.sh STEP [ARG] K for every shard K
  seq 0 $((SHARDS - 1)) | xargs -P "${JOBS:-$(nproc)}" -I{} bash -c \
    'n=$1; shift; until "$@"; do [ $((n -= 1)) -ge 0 ] || exit 1; echo "retrying: steps.sh ${*:3}" >&2; done' \
    retry "${RETRIES:-2}" bash "$steps" "$@" {} ||
    { echo "xargs/run.sh: a shard of step '$*' failed; run again to finish" >&2; exit 1; }
}
each shard
for ((i = 0; i < ITERS; i++)); do
  bash "$steps" converged "$i" && break
  each map "$i"
  bash "$steps" reduce "$i"
done
each encode
bash "$steps" merge
