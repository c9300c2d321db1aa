#!/usr/bin/env bash
# Colour quantization: a 16-colour palette learnt from an image (k-means++ and
# Lloyd iterations on its pixels), every pixel replaced by its nearest palette
# colour, and the image before and after, side by side.
#
# Usage: NNKIT_BIN=build/bin bash examples/vq/colour_quantize.sh [IMAGE.png] [WORKDIR] [COLOURS]
# IMAGE defaults to the shipped tests/fixtures/vq/picture.png; COLOURS to 16.
# Writes palette.npy, indices.npy, before.png, after.png and compare.png in WORKDIR.
set -euo pipefail
export PATH="${NNKIT_BIN:+$NNKIT_BIN:}$PATH"
root=$(cd "$(dirname "$0")/../.." && pwd)
image=$(cd "$(dirname "${1:-$root/tests/fixtures/vq/picture.png}")" && pwd)/$(basename "${1:-picture.png}")
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/vq-colours.XXXXXX")}
colours=${3:-16}
mkdir -p "$work"
cd "$work"

# The training set is the [H, W, 3] pixels of the PNG: H*W vectors of 3 values.
vq-train --k "$colours" "$image" -o palette.npy
# The index of every pixel's nearest colour, [H, W] int64, with the usage of
# the palette and the mean squared error per channel on stderr.
vq-encode --codebook palette.npy "$image" -o indices.npy --stats
# Back to pixels: the palette colour of every index, rounded to uint8 for PNG.
vq-decode --codebook palette.npy indices.npy -o after.png
cp "$image" before.png
tensor-cat --axis 1 before.png after.png -o compare.png
tensor-info palette.npy indices.npy before.png after.png
echo "before.png, after.png and compare.png (before | after) are in $work"
