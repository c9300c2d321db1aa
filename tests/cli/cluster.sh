#!/usr/bin/env bash
# The cluster recipes of examples/cluster run for real, with several shards on
# this machine: GNU parallel, xargs -P, and the SLURM submit script against a
# stand-in sbatch that runs each job at once. Every merged result (DDIM
# samples, IoU rows, the vq-train map-reduce codebook, vq-encode codes, the
# clip-score retrieval summary) must equal the unsharded run byte for byte,
# also after a shard killed by SIGKILL in the middle of its write, a shard that
# fails, and the whole engine killed mid-run, each followed by a rerun.
# (tests/cluster/slurm-localhost.sh does the same under a real SLURM.)
TOOL=""
. "$(dirname "$0")/lib.sh"
SRC=${NNKIT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
C=$SRC/examples/cluster
RUN_TIMEOUT=120

command -v parallel >/dev/null 2>&1 || {
  echo "FATAL: GNU parallel is not installed; it is a test dependency (bash scripts/install-deps.sh, or apt-get install parallel)" >&2
  exit 1
}
missing=""
"$NNKIT_BIN/vq-train" --help 2>/dev/null | grep -q -- '--reduce' || missing+=" vq-train --map/--reduce"
"$NNKIT_BIN/clip-score" --help 2>/dev/null | grep -q -- '--merge' || missing+=" clip-score --shard/--merge"
[ -z "$missing" ] || { echo "FATAL: the built tools lack$missing, which the cluster recipes use" >&2; exit 1; }

# Small settings: the recipes' work in seconds on two cores.
export SAMPLES=3000 STEPS=20 CODES=4 ITERS=5 SEED=0 JOBS=2 THREADS=1
unset SHARDS RETRIES SKIP_DONE PARALLEL

# fakebin NAME: a folder with every tool of NNKIT_BIN, for a wrapper to replace one.
fakebin() {
  local d=$T/$1 f
  mkdir -p "$d"
  for f in "$NNKIT_BIN"/*; do ln -sf "$f" "$d/"; done
  printf '%s' "$d"
}
RESULTS="samples.npy iou.npy codebook.npy codes.npy retrieval.json"
# same_as_ref WORK DESC: every merged result equals the unsharded run's
same_as_ref() {
  local f
  for f in $RESULTS; do expect_file_eq "$1/result/$f" "$REF/reference/$f" "$2: result/$f"; done
  for f in in/boxes_a.npy in/boxes_b.npy in/captions.npy vq/cb.0.npy; do
    expect_file_eq "$1/$f" "$REF/$f" "$2: prepared $f"
  done
}
no_temps() {  # no_temps WORK DESC: no temporary left anywhere
  local left
  left=$(find "$1" -name '.*.nnkit-*' | head -n 3)
  [ -z "$left" ] && pass || fail "$2: temporaries left: $left"
}

# --- the unsharded run: the reference ---
REF=$T/ref
run env WORK="$REF" SHARDS=1 NNKIT_BIN="$NNKIT_BIN" bash -c 'bash "$0" prepare && bash "$0" reference' "$C/steps.sh"
expect_rc 0 "steps.sh prepare && steps.sh reference"
for f in $RESULTS; do [ -s "$REF/reference/$f" ] && pass || fail "reference/$f was not written"; done
pycheck "the reference results have the shapes of the pipeline" '
r = sys.argv[1]
assert np.load(r + "/samples.npy").shape == (3000, 2)
assert np.load(r + "/iou.npy").shape == (784, 196)
cb = np.load(r + "/codebook.npy"); assert cb.shape == (4, 2) and cb.dtype == np.float32
codes = np.load(r + "/codes.npy"); assert codes.shape == (3000,) and codes.dtype == np.int64
json.load(open(r + "/retrieval.json"))' "$REF/reference"

# --- GNU parallel, 4 shards; shard 1's sampler is killed (SIGKILL) in the
# middle of its write, and parallel's --retries reruns it ---
B=$(fakebin bin-kill)
rm "$B/ddim-sample"
cat >"$B/ddim-sample" <<EOF
#!/bin/bash
case " \$* " in
*" --shard 1/4 "*)
  if mkdir "$T/killed" 2>/dev/null; then
    "$NNKIT_BIN/ddim-sample" "\$@" & pid=\$!
    for _ in \$(seq 1000); do compgen -G 'parts/.sample.1.npy.nnkit-*' >/dev/null && break; sleep 0.005; done
    kill -9 \$pid; wait \$pid; st=\$?
    { echo "status \$st"; ls -a parts; } >"$T/killed/log"
    exit \$st
  fi ;;
esac
exec "$NNKIT_BIN/ddim-sample" "\$@"
EOF
chmod +x "$B/ddim-sample"
W=$T/parallel
run env WORK="$W" SHARDS=4 NNKIT_BIN="$B" bash "$C/parallel/run.sh"
expect_rc 0 "parallel/run.sh with a shard killed once"
expect_stdout_has "results in $W/result" "parallel/run.sh says where its results are"
if [ -f "$T/killed/log" ] && grep -qx "status 137" "$T/killed/log"; then pass; else
  fail "the injected SIGKILL of shard 1 did not happen: $(cat "$T/killed/log" 2>/dev/null)"
fi
grep -q '^\.sample\.1\.npy\.nnkit-' "$T/killed/log" && ! grep -qx 'sample\.1\.npy' "$T/killed/log" && pass ||
  fail "the killed shard was not mid-write, or left a sample.1.npy: $(tr '\n' ' ' <"$T/killed/log")"
same_as_ref "$W" "parallel, 4 shards, one killed and retried"
no_temps "$W" "parallel: merge removes the killed shard's temporary"
[ "$(awk 'NR > 1 && $7 == 0' "$W/logs/shard.joblog" | wc -l)" -eq 4 ] && pass ||
  fail "parallel's joblog does not record 4 successful shards: $(cat "$W/logs/shard.joblog")"
# A rerun over the finished run rewrites the same bytes.
cp -r "$W/result" "$T/parallel-first"
run env WORK="$W" SHARDS=4 NNKIT_BIN="$NNKIT_BIN" bash "$C/parallel/run.sh"
expect_rc 0 "parallel/run.sh again"
for f in $RESULTS; do expect_file_eq "$W/result/$f" "$T/parallel-first/$f" "a rerun rewrites result/$f"; done
# Other settings in the same WORK are refused, not mixed in.
run env WORK="$W" SHARDS=5 NNKIT_BIN="$NNKIT_BIN" bash "$C/parallel/run.sh"
[ "$RC" -ne 0 ] && grep -q "other settings" "$T/err" && pass ||
  fail "parallel/run.sh with SHARDS=5 in a 4-shard WORK: exit $RC, stderr $(head -c 300 "$T/err")"

# --- xargs, 3 shards; a vq-train map shard fails, the run stops, a rerun
# finishes; k-means runs to convergence (3 codes) ---
B=$(fakebin bin-fail)
rm "$B/vq-train"
cat >"$B/vq-train" <<EOF
#!/bin/bash
case " \$* " in
*" --map "*"stats.2.2.npy"*) mkdir "$T/failed" 2>/dev/null && { echo "vq-train: error: injected failure" >&2; exit 75; } ;;
esac
exec "$NNKIT_BIN/vq-train" "\$@"
EOF
chmod +x "$B/vq-train"
W=$T/xargs
REF3=$T/ref3
run env WORK="$REF3" SHARDS=1 CODES=3 ITERS=15 NNKIT_BIN="$NNKIT_BIN" bash -c 'bash "$0" prepare && bash "$0" reference' "$C/steps.sh"
expect_rc 0 "the reference with 3 codes, 15 iterations"
run env WORK="$W" SHARDS=3 CODES=3 ITERS=15 RETRIES=0 NNKIT_BIN="$B" bash "$C/xargs/run.sh"
[ "$RC" -ne 0 ] && pass || fail "xargs/run.sh with a failing shard: want a failure, got exit 0"
grep -q "injected failure" "$T/err" && grep -q "run again" "$T/err" && pass ||
  fail "xargs/run.sh does not report the failed shard: $(head -c 400 "$T/err")"
[ -d "$T/failed" ] && [ ! -e "$W/vq/cb.3.npy" ] && [ ! -e "$W/result/codes.npy" ] && pass ||
  fail "xargs/run.sh went on after the failed shard of iteration 2"
run env WORK="$W" SHARDS=3 CODES=3 ITERS=15 RETRIES=0 NNKIT_BIN="$B" bash "$C/xargs/run.sh"
expect_rc 0 "xargs/run.sh rerun after the failure"
expect_stdout_has "k-means converged after iteration" "xargs/run.sh: k-means stops at convergence"
expect_stdout_has "results in $W/result" "xargs/run.sh says where its results are"
last=$(cd "$W/vq" && ls cb.*.npy | sed 's/cb\.\([0-9]*\)\.npy/\1/' | sort -n | tail -n 1)
[ "$last" -lt 15 ] && cmp -s "$W/vq/cb.$last.npy" "$W/vq/cb.$((last - 1)).npy" && pass ||
  fail "xargs/run.sh: the last codebook is cb.$last, not the repeat of its predecessor before iteration 15"
for f in $RESULTS; do expect_file_eq "$W/result/$f" "$REF3/reference/$f" "xargs, failed and rerun: result/$f"; done

# --- xargs, 5 shards, the whole engine killed (SIGKILL) mid-run; what it
# left is whole, and a rerun with SKIP_DONE=1 finishes from there ---
W=$T/xargs-killed
LAST_CMD="WORK=$W SHARDS=5 bash xargs/run.sh, killed"
# (an outer bash, quiet, so that the shell's "Killed" notice goes nowhere)
WORK=$W SHARDS=5 NNKIT_BIN=$NNKIT_BIN bash -c 'setsid bash "$1" >"$2/out" 2>"$2/err" & echo $! >"$2/pid"; wait' \
  run "$C/xargs/run.sh" "$T" 2>/dev/null &
outer=$!
for _ in $(seq 3000); do [ -f "$W/vq/stats.0.0.npy" ] && break; sleep 0.01; done
kill -9 -- "-$(cat "$T/pid")" 2>/dev/null
wait "$outer"
[ -f "$W/vq/stats.0.0.npy" ] && [ ! -f "$W/result/codes.npy" ] && pass ||
  fail "xargs/run.sh was not killed mid-run (no statistics yet, or already merged)"
sleep 0.2  # let the kernel reap the killed group
for k in 0 1 2 3 4; do
  f=$W/parts/sample.$k.npy
  [ -f "$f" ] || continue
  "$NNKIT_BIN/tensor-split" --part "$k/5" "$REF/reference/samples.npy" -o "$T/want.npy"
  expect_file_eq "$f" "$T/want.npy" "a sample shard left by the killed run is whole"
done
for f in "$W"/vq/stats.*.npy "$W"/vq/cb.*.npy; do
  [ -f "$f" ] || continue
  run "$NNKIT_BIN/tensor-info" "$f"
  expect_ok "a file left by the killed run is a whole npy stream: ${f#"$W/"}"
done
run env WORK="$W" SHARDS=5 SKIP_DONE=1 NNKIT_BIN="$NNKIT_BIN" bash "$C/xargs/run.sh"
expect_rc 0 "xargs/run.sh SKIP_DONE=1 after the kill"
same_as_ref "$W" "xargs, 5 shards, killed and resumed"
no_temps "$W" "xargs, killed and resumed"

# --- SLURM: submit.sh against a stand-in sbatch that runs every job (every
# task of an array) at once, after checking its dependencies ---
S=$T/fake-slurm
mkdir -p "$S/bin" "$S/jobs"
cat >"$S/bin/sbatch" <<EOF
#!/bin/bash
# stand-in sbatch: runs the job now; records its status in $S/jobs/ID
parsable=0 array="" dep="" out="slurm-%j.out" name=sbatch
while [ \$# -gt 0 ]; do
  case \$1 in
    --parsable) parsable=1 ;;
    --array=*) array=\${1#*=} ;;
    --dependency=*) dep=\${1#*=} ;;
    --output=*) out=\${1#*=} ;;
    --job-name=*) name=\${1#*=} ;;
    --kill-on-invalid-dep=*) ;;
    -*) echo "sbatch: unexpected option \$1" >&2; exit 1 ;;
    *) break ;;
  esac
  shift
done
script=\$1; shift
id=\$(( \$(cat $S/next 2>/dev/null || echo 0) + 1 ))
echo \$id >$S/next
echo "\$id \$name array=\$array dep=\$dep" >>$S/log
st=0
for d in \$(echo "\${dep#*:}" | tr ':' ' '); do
  [ "\$(cat $S/jobs/\$d 2>/dev/null)" = 0 ] || st=cancelled
done
if [ "\$st" = 0 ]; then
  tasks=""; [ -n "\$array" ] && tasks=\$(seq \${array%-*} \${array#*-})
  for k in \${tasks:-single}; do
    o=\${out//%x/\$name}; o=\${o//%A/\$id}; o=\${o//%j/\$id}; o=\${o//%a/\$k}
    if [ "\$k" = single ]; then
      env -u SLURM_ARRAY_TASK_ID SLURM_JOB_ID=\$id SLURM_CPUS_PER_TASK=1 bash "\$script" "\$@" >"\$o" 2>&1 || st=1
    else
      env SLURM_JOB_ID=\$id SLURM_ARRAY_TASK_ID=\$k SLURM_CPUS_PER_TASK=1 bash "\$script" "\$@" >"\$o" 2>&1 || st=1
    fi
  done
fi
echo \$st >$S/jobs/\$id
[ \$parsable = 1 ] && echo "\$id;fake" || echo "Submitted batch job \$id"
EOF
chmod +x "$S/bin/sbatch"
W=$T/slurm
run env WORK="$W" SHARDS=3 NNKIT_BIN="$NNKIT_BIN" PATH="$S/bin:$PATH" bash "$C/slurm/submit.sh"
expect_rc 0 "slurm/submit.sh (stand-in sbatch)"
expect_stdout_has "results will be in $W/result" "slurm/submit.sh says where its results go"
njobs=$(wc -l <"$S/log")
[ "$njobs" -eq $((1 + 2 * ITERS + 2)) ] && pass ||
  fail "slurm/submit.sh submitted $njobs jobs, want an array, a map array and a reduce per iteration, encode and merge"
[ "$(grep -c ' array=0-2 ' "$S/log")" -eq $((2 + ITERS)) ] && pass || fail "slurm/submit.sh: arrays are not --array=0-2: $(cat "$S/log")"
grep -q '^2 nnkit-map0 array=0-2 dep=aftercorr:1$' "$S/log" && grep -q "^$njobs nnkit-merge array= dep=afterok:1:$((njobs - 1))$" "$S/log" && pass ||
  fail "slurm/submit.sh: unexpected dependencies: $(cat "$S/log")"
[ -z "$(grep -Lx 0 "$S"/jobs/*)" ] && pass || fail "slurm/submit.sh: a job failed; logs: $(tail -n 3 "$W"/logs/*.out)"
same_as_ref "$W" "slurm (stand-in), 3 shards"
# Every iteration is submitted up front: when k-means converges long before
# ITERS, the later map and reduce jobs must find it so and succeed at once.
: >"$S/log"
rm -f "$S"/jobs/*
W=$T/slurm-converged
run env WORK="$W" SHARDS=3 CODES=3 ITERS=15 NNKIT_BIN="$NNKIT_BIN" PATH="$S/bin:$PATH" bash "$C/slurm/submit.sh"
expect_rc 0 "slurm/submit.sh (stand-in sbatch), 3 codes, 15 iterations"
[ -z "$(grep -Lx 0 "$S"/jobs/*)" ] && pass || fail "slurm/submit.sh after early convergence: a job failed; logs: $(tail -n 3 "$W"/logs/*.out)"
last=$(cd "$W/vq" && ls cb.*.npy | sed 's/cb\.\([0-9]*\)\.npy/\1/' | sort -n | tail -n 1)
[ "$last" -lt 14 ] && pass || fail "slurm (stand-in): k-means should converge well before iteration 15 (last codebook cb.$last)"
for f in $RESULTS; do expect_file_eq "$W/result/$f" "$REF3/reference/$f" "slurm (stand-in), early convergence: result/$f"; done

finish
