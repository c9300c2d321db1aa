#!/usr/bin/env bash
# Compares 1, 2, 4 and 50 Euler steps of the shipped 1-rectified and
# 2-rectified (reflowed) moons models: the reflowed model's paths are nearly
# straight, so a few steps already give the data distribution. Prints, for
# each, the mean distance of the few-step samples from the 50-step samples
# of the same noise, and plots every run with tensor-plot.
# Usage: NNKIT_BIN=build/bin bash examples/flow/run.sh [OUTDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${NNKIT_BIN:-$root/build/bin}
out=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$out"

for m in rf rf2; do
  model=$root/examples/models/${m}_moons.safetensors
  for s in 1 2 4 50; do
    "$bin/flow-sample" -m "$model" -n 3000 --steps $s --seed 1 --stats -o "$out/${m}_$s.npy"
    if [ -x "$bin/tensor-plot" ]; then
      "$bin/tensor-plot" -k scatter "$out/${m}_$s.npy" --title "${m}_moons, Euler steps: $s" \
        -o "$out/${m}_$s.png"
    fi
  done
  # 40 paths from noise to data: straight for rf2.
  "$bin/flow-sample" -m "$model" -n 40 --steps 50 --seed 2 --trajectory "$out/${m}_paths.npy" -o /dev/null
  [ -x "$bin/tensor-plot" ] && "$bin/tensor-plot" --trajectory "$out/${m}_paths.npy" -o "$out/${m}_paths.png"
done

# Distance of the 1-, 2- and 4-step samples from the 50-step ones (same noise).
py=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import numpy' 2>/dev/null; then py=$p; break; fi
done
if [ -n "$py" ]; then
  "$py" - "$out" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
print("mean |x_S - x_50| over 3000 samples")
print("model      S=1     S=2     S=4")
for m in ("rf", "rf2"):
    ref = np.load(f"{d}/{m}_50.npy")
    errs = [np.linalg.norm(np.load(f"{d}/{m}_{s}.npy") - ref, axis=1).mean() for s in (1, 2, 4)]
    print(f"{m + '_moons':10s}" + "".join(f"{e:8.3f}" for e in errs))
PY
fi
echo "outputs in $out"
