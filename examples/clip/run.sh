#!/usr/bin/env bash
# CLIPScore, RefCLIPScore and retrieval recall on the shipped embeddings
# (examples/clip/README.md). Uses the tools on PATH, or those in $NNKIT_BIN;
# writes its results to $OUT (default: a temporary folder, printed at the end).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ -n "${NNKIT_BIN:-}" ] && PATH=$NNKIT_BIN:$PATH
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
cd "$here"

echo "== CLIPScore of each image with its candidate caption (Hessel et al.), 95% bootstrap interval"
clip-score images.npy candidates.npy --mean --bootstrap 1000 --seed 1
clip-score images.npy candidates.npy --mean --bootstrap 1000 --seed 1 -o "$out/clipscore.json"

echo
echo "== the same pairs as torchmetrics reports them (100 * cos, mean clamped at 0)"
clip-score images.npy candidates.npy --convention torchmetrics --mean

echo
echo "== a baseline: every image against the caption of another image (candidates rotated by 64)"
# Rotate the candidates with two halves in swapped order, through pipes.
cat <(tensor-split --part 1/2 candidates.npy) <(tensor-split --part 0/2 candidates.npy) | tensor-cat >"$out/rotated.npy"
clip-score images.npy "$out/rotated.npy" --mean

echo
echo "== CLIPScore and RefCLIPScore per caption (4 references each), summarised by tensor-info"
clip-score images.npy candidates.npy --refs references.npy -o "$out/scores.safetensors"
tensor-info "$out/scores.safetensors"

echo
echo "== retrieval over all 640 captions (5 per image), both directions"
# The captions: the candidates, then the references flattened to [512, 128]
# (image i's references are rows 4i..4i+3); caption_image.npy says whose each is.
tensor-convert --reshape -1,128 references.npy | cat candidates.npy - | tensor-cat >"$out/captions.npy"
clip-score --mode retrieval --text-image caption_image.npy images.npy "$out/captions.npy"
clip-score --mode retrieval --text-image caption_image.npy images.npy "$out/captions.npy" -o "$out/recall.json"

echo
echo "results in $out: clipscore.json scores.safetensors recall.json"
