#!/usr/bin/env bash
# The cluster pipeline (../steps.sh) with GNU parallel: every shard of a step
# is one job, JOBS at a time; a failing job is retried; the next step starts
# when all shards of this one succeeded. Add PARALLEL="--sshloginfile nodes"
# to spread the jobs over machines that share WORK.
#   JOBS     jobs at once (default: 100%, one per core)
#   THREADS  threads of each job, BLAS included (default: 1)
#   RETRIES  attempts of a failing job before the run stops (default: 3)
#   and the settings of ../steps.sh: NNKIT_BIN, WORK, SHARDS, SAMPLES, ...
# Usage: bash examples/cluster/parallel/run.sh   (results: $WORK/result)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
steps=$here/steps.sh
export WORK=${WORK:-$(dirname "$(dirname "$here")")/out/cluster/parallel}
command -v parallel >/dev/null ||
  { echo "parallel/run.sh: GNU parallel is not installed (Debian: apt-get install parallel)" >&2; exit 69; }
export OPENBLAS_NUM_THREADS=${THREADS:-1}

bash "$steps" prepare
. "$WORK/config"
each() {  # each LOG STEP [ARG]: bash steps.sh STEP [ARG] K for every shard K
  local log=$1
  shift
  # -q: parallel quotes the command's words, so a checkout path with spaces works.
  seq 0 $((SHARDS - 1)) | parallel -q --jobs "${JOBS:-100%}" --retries "${RETRIES:-3}" --halt soon,fail=1 \
    --joblog "$WORK/logs/$log.joblog" bash "$steps" "$@" {}
}
each shard shard
for ((i = 0; i < ITERS; i++)); do
  bash "$steps" converged "$i" && break
  each "map.$i" map "$i"
  bash "$steps" reduce "$i"
done
each encode encode
bash "$steps" merge
