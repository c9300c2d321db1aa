#!/usr/bin/env bash
# Samples the shipped moons model with DDIM, summarises the samples and, when
# tensor-plot is built, plots them with a few trajectories.
# Usage: NNKIT_BIN=build/bin bash examples/ddim/run.sh [OUTDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${NNKIT_BIN:-$root/build/bin}
out=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$out"
model=$root/examples/models/moons.safetensors

# 5000 samples, 50 DDIM steps (eta 0), the schedule the model declares.
# The data lie within [-2.6, 2.6]; --clip-sample 3 keeps the rare sample that
# the small network sends astray (about 1 in 1000 without it) inside the box.
"$bin/ddim-sample" -m "$model" -n 5000 --steps 50 --seed 1 --clip-sample 3 -o "$out/moons.npy"
"$bin/tensor-info" "$out/moons.npy"

# 40 paths from noise to data.
"$bin/ddim-sample" -m "$model" -n 40 --steps 50 --seed 2 --trajectory "$out/paths.npy" -o /dev/null

# Invert the samples to noise and sample them back.
"$bin/ddim-sample" -m "$model" --invert "$out/moons.npy" --steps 50 -o "$out/noise.npy"
"$bin/ddim-sample" -m "$model" --init "$out/noise.npy" --steps 50 -o "$out/back.npy"
"$bin/tensor-info" "$out/noise.npy" "$out/back.npy"

if [ -x "$bin/tensor-plot" ]; then
  "$bin/tensor-plot" --kind scatter "$out/moons.npy" -o "$out/moons.png"
  "$bin/tensor-plot" --trajectory "$out/paths.npy" -o "$out/paths.png"
  echo "wrote $out/moons.png and $out/paths.png"
else
  echo "tensor-plot is not built: the samples are in $out/moons.npy"
fi
