#!/usr/bin/env bash
# tensor-plot over the output of the other tools: rf-calc's unit boxes as a
# scatter, tensor-split parts as overlaid histograms and line plots, rope-embed's
# cos table as a heatmap, and a grid of PNG images. (tests/cli/tensor-plot.sh
# runs this script.)
# Usage: NNKIT_BIN=build/bin bash examples/plot/run.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NNKIT_BIN=$(cd "${NNKIT_BIN:-$here/../../build/bin}" && pwd)
export PATH="$NNKIT_BIN:$PATH"
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/plot-example.XXXXXX")}
mkdir -p "$out"
cd "$out"

echo "== the corners of the receptive field of every unit of a small network"
# [H*W, 4] boxes x1,y1,x2,y2 split into two [H*W, 2] tensors: the top-left and
# bottom-right corners, two series of one scatter (the unit grid, shifted).
printf 'c1: conv k=7 s=2 p=3\nc2: conv k=3 s=2 p=1\nc3: conv k=3 s=2\n' > net.txt
rf-calc net.txt --input-size 96 --boxes | tensor-split --parts 2 --axis 1 |
  tensor-plot -k scatter --title "receptive fields of c3" --xlabel x --ylabel y -o rf-corners.png

echo "== overlaid histograms of the two halves of a column, cut by tensor-split"
tensor-convert "$here/../data/points.csv" -o points.npy
tensor-split --parts 2 points.npy | tensor-plot -k hist --bins 20 --title "points.csv, two halves" -o halves.png
echo "== the two halves as two series of a scatter, and joined back by tensor-cat as a line"
tensor-split --parts 2 points.npy | tensor-plot -k scatter --point-size 6 --title "points.csv" -o points.png
tensor-split --parts 2 points.npy | tensor-cat | tensor-split --part 0/2 --axis 1 | tensor-convert --reshape -1 |
  tensor-plot -k line --xlabel row --ylabel x -o column0.png

echo "== rope-embed's cos table, positions down, rotary channels across"
rope-embed --emit cos-sin --rotary-dim 64 --seq-len 128 | tensor-convert --key 0 |
  tensor-plot -k heatmap --cmap coolwarm --title "RoPE cos(p w_j)" --xlabel channel --ylabel position -o rope-cos.png

echo "== a grid of PNG images"
/usr/bin/python3 -c '
import sys, numpy as np
for k in range(6):
    y, x = np.mgrid[0:32, 0:48]
    img = np.stack([(x * 5 + k * 30) % 256, (y * 8) % 256, np.full_like(x, k * 40)], -1).astype(np.uint8)
    np.save("tile%d.npy" % k, img)
' && for k in 0 1 2 3 4 5; do tensor-convert "tile$k.npy" -o "tile$k.png"; done
tensor-plot -k grid --cols 3 --title tiles tile?.png -o tiles.png

ls -1 ./*.png
