#!/usr/bin/env bash
# Submits the cluster pipeline (../steps.sh) to SLURM and returns at once:
# a job array per sharded step, one job per reduce and for the merge, each
# waiting for the one before (--dependency); a failure cancels what depends
# on it (--kill-on-invalid-dep). The checkout and WORK must be on a file
# system the nodes share. Prints the job ids and where the results will be.
#   SBATCH_ARGS  more sbatch options for every job (--partition=..., --account=...)
#   and the settings of ../steps.sh: NNKIT_BIN, WORK, SHARDS, SAMPLES, ...
# Usage: bash examples/cluster/slurm/submit.sh   (results: $WORK/result)
# After a failure: fix the cause, then SKIP_DONE=1 bash submit.sh reruns only
# what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
STEPS_SH=$(dirname "$here")/steps.sh
WORK=${WORK:-$(dirname "$(dirname "$(dirname "$here")")")/out/cluster/slurm}
export STEPS_SH WORK
if [ -n "${NNKIT_BIN:-}" ]; then NNKIT_BIN=$(cd "$NNKIT_BIN" && pwd); export NNKIT_BIN; fi

command -v sbatch >/dev/null || { echo "submit.sh: no sbatch here: run it on a SLURM submit host" >&2; exit 69; }
bash "$STEPS_SH" prepare  # small: inputs and the first codebook, here
. "$WORK/config"
WORK=$(cd "$WORK" && pwd)
# sb OPTIONS... SCRIPT STEP [ARG]: submits, prints the job id. Every job gets
# this environment (sbatch's default --export=ALL), so STEPS_SH, WORK, NNKIT_BIN.
sb() {
  # shellcheck disable=SC2086
  sbatch --parsable --kill-on-invalid-dep=yes ${SBATCH_ARGS:-} "$@" | cut -d';' -f1
}
array=(--array=0-$((SHARDS - 1)) --output="$WORK/logs/%x-%A_%a.out")
single=(--output="$WORK/logs/%x-%j.out")

shard=$(sb "${array[@]}" --job-name=nnkit-shard "$here/shard.sbatch" shard)
jobs=$shard
last=$shard dep=aftercorr  # map task K of iteration 0 needs only shard task K
for ((i = 0; i < ITERS; i++)); do
  map=$(sb "${array[@]}" --dependency=$dep:$last --job-name=nnkit-map$i "$here/shard.sbatch" map "$i")
  last=$(sb "${single[@]}" --dependency=afterok:$map --job-name=nnkit-reduce$i "$here/step.sbatch" reduce "$i")
  dep=afterok jobs="$jobs $map $last"
done
encode=$(sb "${array[@]}" --dependency=afterok:$last --job-name=nnkit-encode "$here/shard.sbatch" encode)
merge=$(sb "${single[@]}" --dependency=afterok:$shard:$encode --job-name=nnkit-merge "$here/step.sbatch" merge)
jobs="$jobs $encode $merge"
echo "$jobs" >"$WORK/logs/jobs"
echo "submit.sh: jobs $jobs; the merge is job $merge"
echo "submit.sh: results will be in $WORK/result, logs in $WORK/logs (squeue --me to follow)"
