#!/usr/bin/env bash
# iou and nms in pipelines: detections of a small synthetic scene matched to
# the ground truth with iou --sparse, cleaned up with nms (plain, per class
# and soft), and looked at with the tensor tools. (tests/cli/nms.sh runs it.)
# Usage: NNKIT_BIN=build/bin bash examples/boxes/run.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NNKIT_BIN=$(cd "${NNKIT_BIN:-$here/../../build/bin}" && pwd)
export PATH="$NNKIT_BIN:$PATH"
py=${PYTHON:-/usr/bin/python3}  # with numpy, to make the scene
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/boxes-example.XXXXXX")}
mkdir -p "$out"
cd "$out"

# A scene of 8 objects and a detector's 200 guesses around them: dets.npy is
# an [N, 6] float32 matrix x1, y1, x2, y2, score, class, as many detectors
# write; gt.npy the [8, 4] true boxes.
"$py" - <<'PY'
import numpy as np
rng = np.random.default_rng(0)
gt = np.array([[40, 30, 120, 110], [150, 40, 260, 120], [60, 160, 140, 300], [200, 180, 300, 260],
               [320, 20, 380, 200], [330, 230, 460, 300], [420, 40, 500, 140], [10, 320, 200, 380]], np.float32)
cls = np.array([0, 1, 0, 2, 1, 2, 0, 1])
k = rng.integers(0, 8, 200)
size = gt[k, 2:] - gt[k, :2]
jit = rng.normal(0, 0.08, (200, 4)) * np.concatenate([size, size], 1)
boxes = gt[k] + jit
boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
score = np.clip(1 - np.abs(jit).mean(1) / 20 - rng.uniform(0, 0.3, 200), 0.01, 0.99)
np.save("dets.npy", np.column_stack([boxes, score, cls[k]]).astype(np.float32))
np.save("boxes.npy", boxes.astype(np.float32))
np.save("scores.npy", score.astype(np.float32))
np.save("gt.npy", gt)
PY

echo "== which detections overlap which true box by IoU >= 0.7: pairs (i, j) and values"
iou --sparse --min-iou 0.7 boxes.npy gt.npy | tensor-info

echo "== nms per class (the 6th column) at IoU 0.5, the best 8, as text"
nms dets.npy --iou-threshold 0.5 --max-output 8 -o keep.npy
tensor-convert keep.npy --to txt

echo "== the same from csv through a pipe"
tensor-convert dets.npy --to csv | nms - -t 0.5 -k 8 --to txt

echo "== the kept boxes against the truth: each one's best IoU (one box per object)"
"$py" -c "import numpy as np; d = np.load('dets.npy'); np.save('kept.npy', d[np.load('keep.npy'), :4])"
iou kept.npy gt.npy -o kept_gt.npy
"$py" -c "import numpy as np; m = np.load('kept_gt.npy'); print(m.argmax(1), m.max(1).round(3))"

echo "== soft-NMS (gaussian): kept indices, then decayed scores; the first five as csv"
nms boxes.npy scores.npy --soft gaussian --sigma 0.5 --score-threshold 0.05 -k 5 --to csv

echo "== GIoU and CIoU of each kept box with its true box, pair by pair (--aligned)"
"$py" -c "import numpy as np; np.save('matched.npy', np.load('gt.npy')[np.load('kept_gt.npy').argmax(1)])"
iou --aligned --metric giou kept.npy matched.npy --to txt
iou --aligned --metric ciou kept.npy matched.npy --to txt

echo "== rotated boxes: a square and the same turned by 45 degrees (the octagon)"
printf '0 0 2 2 0\n0 0 2 2 45\n' > rot.txt
iou --rotated --f64 rot.txt --to txt
echo "outputs in $out"
