#!/usr/bin/env bash
# The main job: a real pipeline of every nnkit tool over the shipped example
# data: text in, shard, per-shard work, merge and check against the unsharded
# run, receptive fields, RoPE, boxes, CLIP, sampling, vector quantization
# (with a sharded k-means map-reduce), pictures and a summary.
# examples/cluster runs the sharded steps under SLURM, GNU parallel and xargs.
#   NNKIT_BIN  folder of the built tools (default: build/bin)
#   OUT        where results go (default: out/main-job)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${NNKIT_BIN:-$root/build/bin}
out=${OUT:-$root/out/main-job}
export PATH="$bin:$PATH"
mkdir -p "$out"

# 1. Text to a float32 tensor.
tensor-convert "$here/data/points.csv" --dtype float32 -o "$out/points.npy"

# 2. Shard the rows three ways, as a job array would.
tensor-split --parts 3 --prefix "$out/shard_" "$out/points.npy"

# 3. Per-shard work: here a round trip through float16 and back, the kind of
#    step a later tool replaces (vq-encode, iou, ...). Each shard is one process.
for k in 0 1 2; do
  tensor-convert --dtype float16 "$out/shard_$k.npy" | tensor-convert --dtype float32 -o "$out/done_$k.npy"
done

# 4. Merge the shards in order and compare with the unsharded computation.
cat "$out"/done_{0,1,2}.npy | tensor-cat -o "$out/merged.npy"
tensor-convert --dtype float16 "$out/points.npy" | tensor-convert --dtype float32 -o "$out/unsharded.npy"
if ! cmp -s "$out/merged.npy" "$out/unsharded.npy"; then
  echo "main-job: sharded and unsharded results differ" >&2
  exit 1
fi

# 5. Receptive fields of the embedded torchvision ResNet-50 on a 224x224 image,
#    and the image box of every unit of its layer3, summarised.
rf-calc --model resnet50 --input-size 224 --to txt | tail -n 3
rf-calc --model resnet50 --input-size 224 -o "$out/resnet50_rf.json"
rf-calc --model resnet50 --input-size 224 --layer layer3 --boxes --clip -o "$out/layer3_boxes.npy"

# 6. Rotary position embeddings: the 120 points as a sequence of 2-channel
#    tokens, rotated by position (and undone again), plus a cos/sin table.
rope-embed --base 100 "$out/points.npy" -o "$out/rotated.npy"
rope-embed --base 100 --inverse "$out/rotated.npy" -o "$out/unrotated.npy"
rope-embed --emit cos-sin --seq-len 16 --rotary-dim 8 -o "$out/rope_tables.npy"

# 7. Box overlaps: which layer3 units see nearly the same image region
#    (sparse IoU >= 0.5), then NMS over those boxes, scored by their x1.
iou --min-iou 0.5 --sparse "$out/layer3_boxes.npy" -o "$out/layer3_overlaps.npy"
tensor-split --part 0/4 --axis 1 "$out/layer3_boxes.npy" | tensor-convert --reshape -1 -o "$out/layer3_scores.npy"
nms "$out/layer3_boxes.npy" "$out/layer3_scores.npy" --iou-threshold 0.5 -o "$out/layer3_kept.npy"

# 8. CLIP scores and retrieval recall on the shipped embeddings.
clip-score "$here/clip/images.npy" "$here/clip/candidates.npy" --mean --to json -o "$out/clipscore.json"
clip-score --mode retrieval "$here/clip/images.npy" "$here/clip/candidates.npy" \
  --to json -o "$out/retrieval.json"
cat "$out/clipscore.json" "$out/retrieval.json"
#    The same retrieval in 3 shards of the similarity matrix, merged.
for k in 0 1 2; do
  clip-score --mode retrieval --shard $k/3 "$here/clip/images.npy" "$here/clip/candidates.npy" \
    -o "$out/retrieval_state$k.safetensors"
done
clip-score --merge "$out"/retrieval_state{0,1,2}.safetensors --to json -o "$out/retrieval_merged.json"
cmp -s "$out/retrieval_merged.json" "$out/retrieval.json" ||
  { echo "main-job: merged retrieval shards differ from the unsharded run" >&2; exit 1; }

# 9. Diffusion sampling: the embedded Gaussian-mixture model (exact) and the
#    shipped moons MLP, 2,000 samples each, in two shards merged as one run.
ddim-sample -n 2000 --seed 0 -o "$out/gmm_samples.npy"
for k in 0 1; do
  ddim-sample --model "$here/models/moons.safetensors" -n 2000 --seed 0 --shard $k/2 \
    -o "$out/moons_part$k.npy"
done
tensor-cat "$out/moons_part0.npy" "$out/moons_part1.npy" -o "$out/moons_samples.npy"
ddim-sample --model "$here/models/moons.safetensors" -n 2000 --seed 0 -o "$out/moons_unsharded.npy"
cmp -s "$out/moons_samples.npy" "$out/moons_unsharded.npy" ||
  { echo "main-job: sharded sampling differs from the unsharded run" >&2; exit 1; }

# 9b. Flow matching: the reflowed (2-rectified) moons model in 2 Euler steps
#     and RK4, the exact log-likelihood of the gmm samples under their own
#     model, and a NICE coupling flow sampled exactly.
flow-sample --model "$here/models/rf2_moons.safetensors" -n 2000 --seed 0 --solver euler --steps 2 \
  -o "$out/flow2_samples.npy"
flow-sample --model "$here/models/rf2_moons.safetensors" -n 2000 --seed 0 --solver rk4 --steps 20 \
  -o "$out/flow_rk4_samples.npy"
flow-sample --log-prob "$out/gmm_samples.npy" -o "$out/gmm_logprob.npy"
flow-sample --model "$here/models/nice_moons.safetensors" -n 2000 --seed 0 -o "$out/nice_samples.npy"

# 10. Vector quantization: a 3-code codebook of the points by k-means, their
#     codes and reconstruction, and 64 codes for the moons samples.
vq-train --k 3 --seed 0 -q "$out/points.npy" -o "$out/codebook3.npy"
vq-encode --codebook "$out/codebook3.npy" "$out/points.npy" -o "$out/codes.npy" --stats-json "$out/vq_stats.json"
vq-decode --codebook "$out/codebook3.npy" "$out/codes.npy" -o "$out/points_vq.npy"
vq-train --k 64 --seed 0 -q "$out/moons_samples.npy" -o "$out/codebook64.npy"
cat "$out/vq_stats.json"
#     k-means of the moons samples as a map-reduce over 2 shards (what a
#     cluster runs when the data exceed one machine), 5 iterations from the
#     same start, equal to the single run byte for byte.
vq-train --k 16 --seed 0 --iters 0 -q "$out/moons_samples.npy" -o "$out/km_0.npy"
for k in 0 1; do tensor-split --part $k/2 "$out/moons_samples.npy" -o "$out/moons_shard$k.npy"; done
for i in 0 1 2 3 4; do
  for k in 0 1; do
    vq-train --map --init "$out/km_$i.npy" "$out/moons_shard$k.npy" -o "$out/km_stats$k.npy"
  done
  cat "$out"/km_stats{0,1}.npy | vq-train --reduce --init "$out/km_$i.npy" --iteration $i --seed 0 -q \
    -o "$out/km_$((i + 1)).npy"
done
vq-train --init "$out/km_0.npy" --iters 5 --seed 0 -q "$out/moons_samples.npy" -o "$out/km_single.npy"
cmp -s "$out/km_5.npy" "$out/km_single.npy" ||
  { echo "main-job: the k-means map-reduce differs from the single run" >&2; exit 1; }

# 11. Pictures: the samples, the IoU values, the RoPE table.
tensor-plot --kind scatter "$out/gmm_samples.npy" "$out/moons_samples.npy" --title "DDIM samples" \
  -o "$out/samples.png"
tensor-convert --key 1 "$out/layer3_overlaps.npy" | tensor-plot --kind hist --title "layer3 IoU >= 0.5" \
  -o "$out/overlaps.png"
tensor-convert --key 0 "$out/rope_tables.npy" | tensor-plot --kind heatmap --title "RoPE cos" \
  -o "$out/rope_cos.png"

# 12. Summaries: a table on stdout, JSON and CSV beside the results.
tensor-info "$out/points.npy" "$out/merged.npy" "$out"/shard_*.npy "$out/layer3_boxes.npy" \
  "$out/rotated.npy" "$out/unrotated.npy" "$out/rope_tables.npy" \
  "$out/layer3_overlaps.npy" "$out/layer3_kept.npy" "$out/gmm_samples.npy" "$out/moons_samples.npy" \
  "$out/samples.png" "$out/flow2_samples.npy" "$out/flow_rk4_samples.npy" "$out/gmm_logprob.npy" \
  "$out/nice_samples.npy" "$out/codebook3.npy" "$out/codes.npy" "$out/points_vq.npy" "$out/codebook64.npy" \
  "$out/km_5.npy"
tensor-info --json "$out/points.npy" "$out/merged.npy" -o "$out/summary.json"
tensor-convert "$out/merged.npy" -o "$out/merged.csv"
echo "main-job: every sharded result equals its unsharded run; results in $out"
