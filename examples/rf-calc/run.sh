#!/usr/bin/env bash
# rf-calc in pipelines: the receptive fields of a built-in network and of one
# described inline, then the image box of every unit of a layer, piped into
# the tensor tools. (tests/cli/rf-calc.sh runs this script.)
# Usage: NNKIT_BIN=build/bin bash examples/rf-calc/run.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NNKIT_BIN=$(cd "${NNKIT_BIN:-$here/../../build/bin}" && pwd)
export PATH="$NNKIT_BIN:$PATH"
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/rf-calc-example.XXXXXX")}
mkdir -p "$out"
cd "$out"

echo "== torchvision ResNet-50 on a 480x640 image, up to layer3 (the last rows)"
rf-calc --model resnet50 --input-size 480x640 --layer layer3 --to txt | tail -n 4

echo "== the same as CSV and JSON files (the JSON's \"output\" is layer3)"
rf-calc --model resnet50 --input-size 480x640 --layer layer3 -o layer3.csv
rf-calc --model resnet50 --input-size 480x640 --layer layer3 -o layer3.json
head -n 1 layer3.csv
tail -n 1 layer3.csv

echo "== a small decoder, described inline: the 2x upsampled path is off by one pixel"
cat > decoder.net <<'NET'
# encoder: two stride-2 convolutions; decoder: upsample and add a skip connection
enc1: conv k=3 s=2 p=1
enc2: conv k=3 s=2 p=1
up:   upsample factor=2
skip: conv k=1 from=enc1
sum:  add from=up,skip
NET
rf-calc decoder.net --input-size 64 --to txt || echo "(exit $?: rf-calc refuses misaligned merges)"
rf-calc decoder.net --input-size 64 --allow-misaligned --to txt

echo "== the image box of every unit of layer3: an [H*W, 4] float32 tensor"
rf-calc --model resnet50 --input-size 480x640 --layer layer3 --boxes --clip | tensor-info

echo "== row 7 of the 30x40 units (units 280 to 319): the first three boxes, x1,y1,x2,y2"
rf-calc --model resnet50 --input-size 480x640 --layer layer3 --boxes --clip |
  tensor-split --part 7/30 | tensor-convert --to csv | head -n 3

echo "== one unit, and the boxes saved for numpy (np.load reads them)"
rf-calc --model resnet50 --input-size 480x640 --layer layer3 --unit 7,20 --to txt
rf-calc --model resnet50 --input-size 480x640 --layer layer3 --boxes --clip -o boxes.npy
tensor-info boxes.npy

echo "== units of layer3 that see all of an object at x 200-320, y 150-260"
printf '200 150 320 260\n' > object.txt
rf-calc --model resnet50 --input-size 480x640 --layer layer3 --boxes --clip |
  iou --legacy-pixels --metric ioa object.txt - --min-iou 0.99 --sparse | tensor-info
echo "outputs in $out"
