#!/usr/bin/env bash
# The work of the cluster recipes, one step at a time. Every engine (SLURM job
# arrays, GNU parallel, xargs -P) runs these same steps; only the way it
# starts them differs. A step is one process and touches only its own outputs,
# each written atomically, so any step can be killed and run again: the rerun
# writes the same bytes.
#
#   steps.sh prepare      inputs and settings, once, before any shard
#   steps.sh shard K      shard K's independent work: DDIM samples, IoU rows,
#                         retrieval state
#   steps.sh map I K      vq-train statistics of shard K's samples, iteration I
#   steps.sh reduce I     the codebook of iteration I+1 from all the statistics
#   steps.sh converged I  exit 0 when the codebook stopped changing before I
#   steps.sh encode K     the codes of shard K's samples, final codebook
#   steps.sh merge        the whole results from the parts (prints where)
#   steps.sh reference    the same pipeline in one process, unsharded
#   steps.sh compare      cmp of every merged result with the reference
#
# Settings (environment). `prepare` records the ones that change results in
# $WORK/config; every later step reads them from there, whatever its own
# environment says, and `prepare` refuses a WORK that holds other settings.
#   NNKIT_BIN  folder of the nnkit tools (default: the tools on PATH, else the
#              build/bin of this checkout)
#   WORK       the run's folder, shared by all nodes (default: out/cluster)
#   SHARDS     number of shards (4)
#   SAMPLES    DDIM samples of the moons model (20000), STEPS its steps (50)
#   CODES      codebook size (16), ITERS at most this many k-means iterations (10)
#   SEED       seed of the sampler and of k-means (0)
#   SKIP_DONE  1: a shard step whose output exists does nothing (resuming a
#              failed run; safe, as outputs appear only when complete)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
me="steps.sh"
die() { echo "$me: $*" >&2; exit 1; }

if [ -n "${NNKIT_BIN:-}" ]; then
  PATH=$(cd "$NNKIT_BIN" && pwd):$PATH
elif ! command -v ddim-sample >/dev/null 2>&1 && [ -x "$root/build/bin/ddim-sample" ]; then
  PATH=$root/build/bin:$PATH
fi
mkdir -p "${WORK:=$root/out/cluster}"
cd "$WORK"
WORK=$(pwd)

step=${1:-}
[ -n "$step" ] || die "usage: steps.sh prepare|shard K|map I K|reduce I|converged I|encode K|merge|reference|compare"
shift

settings() {
  printf 'SHARDS=%d\nSAMPLES=%d\nSTEPS=%d\nCODES=%d\nITERS=%d\nSEED=%d\n' \
    "${SHARDS:-4}" "${SAMPLES:-20000}" "${STEPS:-50}" "${CODES:-16}" "${ITERS:-10}" "${SEED:-0}"
}
if [ "$step" = prepare ]; then
  for v in "SHARDS=${SHARDS:-4}" "SAMPLES=${SAMPLES:-20000}" "STEPS=${STEPS:-50}" "CODES=${CODES:-16}" \
    "ITERS=${ITERS:-10}" "SEED=${SEED:-0}"; do
    [[ $v =~ =[0-9]+$ && $v != SHARDS=0 ]] || die "want a whole number (SHARDS at least 1): $v"
  done
  settings >config.new
  if [ -f config ] && ! cmp -s config config.new; then
    rm -f config.new
    die "$WORK holds a run with other settings ($(tr '\n' ' ' <config)); use another WORK or remove it"
  fi
  mv config.new config
fi
[ -f config ] || die "$WORK/config is missing: run 'steps.sh prepare' first"
. ./config

shard_arg() {  # shard_arg K: K if 0 <= K < SHARDS
  if [[ ${1:-} =~ ^[0-9]+$ ]] && [ "$1" -lt "$SHARDS" ]; then printf '%s' "$1"; else
    die "$step: want a shard 0..$((SHARDS - 1)), got '${1:-}'"
  fi
}
iter_arg() {  # iter_arg I: I if 0 <= I < ITERS
  if [[ ${1:-} =~ ^[0-9]+$ ]] && [ "$1" -lt "$ITERS" ]; then printf '%s' "$1"; else
    die "$step: want an iteration 0..$((ITERS - 1)), got '${1:-}'"
  fi
}
done_already() { [ "${SKIP_DONE:-0}" = 1 ] && [ -f "$1" ]; }
# parts PREFIX EXT: PARTS=(PREFIX.0.EXT ...), every shard's file of one kind in
# shard order (never a glob: it sorts part.10 before part.2).
parts() {
  local k
  PARTS=()
  for ((k = 0; k < SHARDS; k++)); do
    [ -f "$1.$k.$2" ] || die "$1.$k.$2 is missing: run shard $k of that step (again)"
    PARTS+=("$1.$k.$2")
  done
}
converged() {  # converged I: two consecutive codebooks up to I are equal, byte for byte
  local j  # (after convergence at j the later codebooks are never written)
  for ((j = 1; j <= $1; j++)); do
    [ -f "vq/cb.$j.npy" ] || return 1
    cmp -s "vq/cb.$((j - 1)).npy" "vq/cb.$j.npy" && return 0
  done
  return 1
}
final_codebook() {  # the last codebook: at convergence or after ITERS iterations
  local i
  for ((i = 0; i < ITERS; i++)); do
    [ -f "vq/cb.$((i + 1)).npy" ] || die "vq/cb.$((i + 1)).npy is missing: k-means has not finished"
    cmp -s "vq/cb.$i.npy" "vq/cb.$((i + 1)).npy" && break
  done
  printf 'vq/cb.%d.npy' "$((i < ITERS ? i + 1 : ITERS))"
}

case $step in
prepare)
  mkdir -p in parts vq result logs
  for f in models/moons.safetensors clip/images.npy clip/caption_image.npy; do
    cp "$root/examples/$f" "in/.${f##*/}.tmp" && mv "in/.${f##*/}.tmp" "in/${f##*/}"  # atomic too
  done
  # Boxes: the image region of every unit of ResNet-50's layer2 (A, 784) and layer3 (B, 196).
  rf-calc --model resnet50 --input-size 224 --layer layer2 --boxes --clip -o in/boxes_a.npy
  rf-calc --model resnet50 --input-size 224 --layer layer3 --boxes --clip -o in/boxes_b.npy
  # Captions: the 128 candidates, then the 4 references of each image (640 in all).
  tensor-convert --reshape -1,128 "$root/examples/clip/references.npy" |
    cat "$root/examples/clip/candidates.npy" - | tensor-cat -o in/captions.npy
  # The first codebook: k-means++ on a small pilot draw from the sampler.
  ddim-sample -q -m in/moons.safetensors -n 2000 --steps "$STEPS" --seed $((SEED + 1)) |
    vq-train -q --k "$CODES" --iters 0 --seed "$SEED" -o vq/cb.0.npy
  echo "$me: prepared $WORK for $SHARDS shards"
  ;;
shard)
  k=$(shard_arg "${1:-}")
  done_already "parts/sample.$k.npy" ||
    ddim-sample -q -m in/moons.safetensors -n "$SAMPLES" --steps "$STEPS" --seed "$SEED" \
      --shard "$k/$SHARDS" -o "parts/sample.$k.npy"
  done_already "parts/iou.$k.npy" ||
    tensor-split --part "$k/$SHARDS" in/boxes_a.npy | iou -q - in/boxes_b.npy -o "parts/iou.$k.npy"
  done_already "parts/clip.$k.state" ||
    clip-score -q --mode retrieval --shard "$k/$SHARDS" --text-image in/caption_image.npy \
      in/images.npy in/captions.npy -o "parts/clip.$k.state"
  ;;
map)
  i=$(iter_arg "${1:-}")
  k=$(shard_arg "${2:-}")
  converged "$i" || done_already "vq/stats.$i.$k.npy" ||
    vq-train -q --map --init "vq/cb.$i.npy" "parts/sample.$k.npy" -o "vq/stats.$i.$k.npy"
  ;;
reduce)
  i=$(iter_arg "${1:-}")
  if ! converged "$i" && ! done_already "vq/cb.$((i + 1)).npy"; then
    parts "vq/stats.$i" npy
    cat "${PARTS[@]}" | vq-train -q --reduce --init "vq/cb.$i.npy" --iteration "$i" --seed "$SEED" \
      -o "vq/cb.$((i + 1)).npy"
  fi
  if [ -f "vq/cb.$((i + 1)).npy" ] && cmp -s "vq/cb.$i.npy" "vq/cb.$((i + 1)).npy"; then
    echo "$me: k-means converged after iteration $i"
  fi
  ;;
converged)
  converged "$(iter_arg "${1:-}")"
  ;;
encode)
  k=$(shard_arg "${1:-}")
  cb=$(final_codebook)
  done_already "parts/codes.$k.npy" ||
    vq-encode -q --codebook "$cb" "parts/sample.$k.npy" -o "parts/codes.$k.npy"
  ;;
merge)
  parts parts/sample npy
  tensor-cat "${PARTS[@]}" -o result/samples.npy
  parts parts/iou npy
  tensor-cat "${PARTS[@]}" -o result/iou.npy
  parts parts/codes npy
  tensor-cat "${PARTS[@]}" -o result/codes.npy
  parts parts/clip state
  clip-score -q --merge "${PARTS[@]}" --to json -o result/retrieval.json
  cb=$(final_codebook)
  cp "$cb" result/.codebook.npy.tmp && mv result/.codebook.npy.tmp result/codebook.npy
  # Temporaries of shards killed by SIGKILL (never under a final name).
  rm -f parts/.*.nnkit-* vq/.*.nnkit-* result/.*.nnkit-*
  echo "$me: results in $WORK/result: samples.npy iou.npy codebook.npy codes.npy retrieval.json"
  ;;
reference)
  mkdir -p reference
  ddim-sample -q -m in/moons.safetensors -n "$SAMPLES" --steps "$STEPS" --seed "$SEED" -o reference/samples.npy
  iou -q in/boxes_a.npy in/boxes_b.npy -o reference/iou.npy
  vq-train -q --init vq/cb.0.npy --iters "$ITERS" --seed "$SEED" reference/samples.npy -o reference/codebook.npy
  vq-encode -q --codebook reference/codebook.npy reference/samples.npy -o reference/codes.npy
  clip-score -q --mode retrieval --text-image in/caption_image.npy in/images.npy in/captions.npy \
    --to json -o reference/retrieval.json
  echo "$me: the unsharded run is in $WORK/reference"
  ;;
compare)
  bad=0
  for f in samples.npy iou.npy codebook.npy codes.npy retrieval.json; do
    if cmp -s "result/$f" "reference/$f"; then echo "same: $f"; else echo "DIFFERENT: $f"; bad=1; fi
  done
  exit "$bad"
  ;;
*)
  die "unknown step '$step'"
  ;;
esac
