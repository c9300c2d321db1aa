#!/usr/bin/env bash
# Peer comparison: each nnkit tool against the numpy code a user would write
# instead, on the same machine in the same run, plus the two foundation
# targets: an npy stream through a pipe (>= 1 GB/s for 1 GiB of float32) and
# `tool --version` start-up (< 5 ms median).
# Usage: bash tests/bench/compare.sh [BUILD_DIR] [SIZE_MIB]   (default build, 1024)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
mib=${2:-1024}
bin=$build/bin
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
# best of 3 wall-clock seconds of a shell command
best() {
  local b=""
  for _ in 1 2 3; do
    local s e
    s=$(now); bash -c "$1" >/dev/null; e=$(now)
    b=$(echo "$s $e ${b:-1e9}" | awk '{d=$2-$1; print (d<$3)?d:$3}')
  done
  echo "$b"
}
row() { printf '%-16s %-34s %10.3f s %10.3f s %8.1fx\n' "$1" "$2" "$3" "$4" "$(echo "$4 $3" | awk '{print $1/$2}')"; }

n=$((mib * 1024 * 1024 / 4))
"$py" -c "import numpy as np; np.save('$work/big.npy', np.random.default_rng(0).standard_normal($n, dtype=np.float32))"
rows=$((n / 64))
"$py" -c "import numpy as np; np.save('$work/mat.npy', np.random.default_rng(1).standard_normal(($rows, 64), dtype=np.float32))"
"$py" -c "import numpy as np; np.savetxt('$work/small.csv', np.random.default_rng(2).standard_normal((20000, 16)), delimiter=',')"

echo "nnkit vs numpy on $(nproc) cores, ${mib} MiB of float32 (best of 3)"
printf '%-16s %-34s %12s %12s %9s\n' tool case nnkit numpy speedup

t_ours=$(best "cat $work/big.npy | $bin/tensor-convert | cat > /dev/null")
t_peer=$(best "$py -c \"import sys, numpy as np; np.save(sys.stdout.buffer, np.load('$work/big.npy'))\" > /dev/null")
row tensor-convert "npy through a pipe" "$t_ours" "$t_peer"
gbps=$(echo "$mib $t_ours" | awk '{printf "%.2f", $1*1048576/$2/1e9}')

t_ours=$(best "cat $work/big.npy | $bin/tensor-convert --dtype float16 > /dev/null")
t_peer=$(best "$py -c \"import sys, numpy as np; np.save(sys.stdout.buffer, np.load('$work/big.npy').astype(np.float16))\" > /dev/null")
row tensor-convert "cast float32 -> float16" "$t_ours" "$t_peer"

t_ours=$(best "$bin/tensor-convert $work/small.csv --to npy > /dev/null")
t_peer=$(best "$py -c \"import sys, numpy as np; np.save(sys.stdout.buffer, np.loadtxt('$work/small.csv', delimiter=',', dtype=np.float32))\" > /dev/null")
row tensor-convert "csv 20000x16 -> npy" "$t_ours" "$t_peer"

t_ours=$(best "$bin/tensor-info $work/big.npy")
t_peer=$(best "$py -c \"import numpy as np; a=np.load('$work/big.npy'); f=a[np.isfinite(a)]; print(f.min(), f.max(), f.mean(dtype=np.float64), f.std(dtype=np.float64), np.isnan(a).sum(), np.isinf(a).sum())\"")
row tensor-info "stats of the array" "$t_ours" "$t_peer"

t_ours=$(best "$bin/tensor-split --part 1/4 --axis 1 $work/mat.npy > /dev/null")
t_peer=$(best "$py -c \"import sys, numpy as np; np.save(sys.stdout.buffer, np.array_split(np.load('$work/mat.npy'), 4, axis=1)[1])\" > /dev/null")
row tensor-split "part 1/4 of the columns" "$t_ours" "$t_peer"

t_ours=$(best "$bin/tensor-cat --axis 1 $work/mat.npy $work/mat.npy > /dev/null")
t_peer=$(best "$py -c \"import sys, numpy as np; a=np.load('$work/mat.npy'); np.save(sys.stdout.buffer, np.concatenate([a, a], axis=1))\" > /dev/null")
row tensor-cat "two arrays along axis 1" "$t_ours" "$t_peer"

# No receptive-field library in Debian: the peer is the same recurrence in plain Python.
"$py" "$root/tests/bench/rf_peer.py" --chain 10000 > "$work/chain.net"
t_ours=$(best "$bin/rf-calc $work/chain.net --to csv > /dev/null")
t_peer=$(best "$py $root/tests/bench/rf_peer.py $work/chain.net > /dev/null")
row rf-calc "10,000-layer chain (vs Python)" "$t_ours" "$t_peer"

# Start-up: median of 101 runs of --version.
startup() {
  local ts=()
  for _ in $(seq 101); do s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); ts+=($(( (e - s) / 1000 ))); done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}
echo
for t in tensor-info tensor-convert tensor-cat tensor-split; do
  echo "start-up $t --version: median $(startup "$bin/$t" --version) ms (target < 5 ms)"
done
echo "start-up of python3 -c 'import numpy': median $(startup "$py" -c 'import numpy') ms"
echo "npy pipe throughput: $gbps GB/s (target >= 1 GB/s)"
echo
echo "Micro-benchmarks (Google Benchmark):"
"$build/nnkit_bench_io" --benchmark_min_time=0.2 2>/dev/null | tail -n +4

# rope-embed: [32 heads, 4096 tokens, 128 dims] float32 against PyTorch's
# (transformers') computation on the same threads, and against a copy of the
# same bytes (the bandwidth bound).
echo
echo "rope-embed vs PyTorch, $(nproc) threads:"
"$build/nnkit_bench_rope" --benchmark_min_time=0.2 --benchmark_format=json >"$work/rope.json" 2>/dev/null
"$py" "$root/tests/bench/rope_peer.py" --threads "$(nproc)" --ours "$work/rope.json"

# iou and nms: the cases of bench_boxes.cpp (BM_Peer*: 4000 x 4000 IoU and
# GIoU, NMS of 100,000 boxes) against torchvision's CPU time for the same
# boxes on the same threads (boxes_peer.py), and the dense output rate
# against a memcpy of the same 64 MB.
echo
echo "iou and nms vs torchvision, $(nproc) threads (best of 5, in-process times):"
"$build/nnkit_bench_boxes" --threads="$(nproc)" --benchmark_filter='BM_Peer|BM_Memcpy' \
  --benchmark_repetitions=5 --benchmark_format=csv >"$work/boxes.csv" 2>/dev/null
peer=$("$py" "$root/tests/bench/boxes_peer.py" --threads "$(nproc)" 2>/dev/null) || peer=""
ours_s() { awk -F, -v n="\"$1/real_time\"" '$1 == n { t = $3 / 1000; if (b == "" || t < b) b = t } END { print b }' "$work/boxes.csv"; }
rate() { awk -F, -v n="\"$1/real_time\"" '$1 == n && $6 > b { b = $6 } END { printf "%.2f", b / 1e9 }' "$work/boxes.csv"; }
for c in "iou|iou 4000 x 4000 pairwise|BM_PeerIoU/4000|iou_4000" \
         "iou|giou 4000 x 4000 pairwise|BM_PeerGIoU/4000|giou_4000" \
         "nms|100,000 boxes, IoU > 0.5|BM_PeerNms/100000|nms_100000"; do
  IFS='|' read -r tool what bench key <<<"$c"
  t_ours=$(ours_s "$bench")
  t_peer=$(awk -v k="$key" '$1 == k { print $2 }' <<<"$peer")
  if [ -n "$t_peer" ]; then
    row "$tool" "$what" "$t_ours" "$t_peer"
  else
    printf '%-16s %-34s %10.3f s %12s\n' "$tool" "$what" "$t_ours" "torchvision not installed"
  fi
done
echo "iou dense output: $(rate BM_PeerIoU/4000) GB/s written; memcpy of the same size:" \
  "$(rate BM_Memcpy/0) GB/s on one thread, $(rate BM_Memcpy/1) GB/s on all"

# clip-score: 20,000 x 20,000 x 512 similarity and recall@{1,5,10} both ways
# against PyTorch on the same threads (clip_peer.py; whole commands, best of 3,
# so `import torch` counts against PyTorch as start-up counts against us), and
# the matrix part's rate against one plain 2-D cblas_sgemm of the same shape
# on all threads (bench_clip.cpp; target >= 70%).
echo
echo "clip-score vs PyTorch, $(nproc) threads:"
"$py" -c "import numpy as np; r = np.random.default_rng(5); a = r.standard_normal((20000, 512), dtype=np.float32)
np.save('$work/clip_img.npy', a); np.save('$work/clip_txt.npy', a + 5 * r.standard_normal(a.shape, dtype=np.float32))"
t_ours=$(best "$bin/clip-score --mode retrieval --k 1,5,10 $work/clip_img.npy $work/clip_txt.npy")
if "$py" -c 'import torch' 2>/dev/null; then
  t_peer=$(best "$py $root/tests/bench/clip_peer.py $work/clip_img.npy $work/clip_txt.npy $(nproc)")
  row clip-score "retrieval 20000^2 x 512, R@1/5/10" "$t_ours" "$t_peer"
else
  printf '%-16s %-34s %10.3f s %12s\n' clip-score "retrieval 20000^2 x 512, R@1/5/10" "$t_ours" "PyTorch not installed"
fi
"$build/nnkit_bench_clip" --benchmark_filter='BM_Sgemm/20000|BM_RetrievalRanks/20000/' --benchmark_repetitions=3 \
  --benchmark_format=json >"$work/clip.json" 2>/dev/null
"$py" - "$work/clip.json" <<'PY'
import json, sys
best = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type") == "iteration":
        best[b["run_name"]] = max(best.get(b["run_name"], 0), b["GFLOP/s"])
sgemm = best.get("BM_Sgemm/20000/real_time", 0)
ours = best.get("BM_RetrievalRanks/20000/512/real_time", 0)
print("clip-score matrix part: %.1f GFLOP/s streamed with recall; plain cblas_sgemm: %.1f GFLOP/s (%.0f%%, target >= 70%%)"
      % (ours, sgemm, 100 * ours / sgemm if sgemm else 0))
PY

# tensor-plot: no matplotlib for /usr/bin/python3 (it is not in the install script).
"$py" -c "import numpy as np; np.save('$work/pts.npy', np.random.default_rng(3).standard_normal((1000000, 2), dtype=np.float32))"
t_ours=$(best "$bin/tensor-plot -k scatter $work/pts.npy -o $work/pts.png")
if "$py" -c 'import matplotlib' 2>/dev/null; then
  t_peer=$(best "$py -c \"import numpy as np, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; a=np.load('$work/pts.npy'); plt.figure(figsize=(6.4,4.8)); plt.scatter(a[:,0], a[:,1], s=4); plt.savefig('$work/peer.png', dpi=100)\"")
  row tensor-plot "scatter of 1M points to PNG" "$t_ours" "$t_peer"
else
  printf '%-16s %-34s %10.3f s %12s\n' tensor-plot "scatter of 1M points to PNG" "$t_ours" "matplotlib not installed"
fi

# ddim-sample: the shipped moons MLP, N = 100,000 2-D samples, 50 DDIM steps,
# against the same sampler and MLP in PyTorch (ddim_peer.py) on the same threads.
echo
echo "ddim-sample vs PyTorch, $(nproc) threads (in-process times):"
t_ours=$("$build/nnkit_bench_diffusion" --threads="$(nproc)" --benchmark_filter='BM_PeerDdim' \
  --benchmark_format=csv 2>/dev/null | awk -F, '/BM_PeerDdim/ { printf "%.3f", $3 / 1000 }')
t_peer=$("$py" "$root/tests/bench/ddim_peer.py" --threads "$(nproc)" 2>/dev/null | awk '{ print $2 }') || t_peer=""
if [ -n "$t_peer" ]; then
  row ddim-sample "moons MLP, 100,000 x 50 steps" "$t_ours" "$t_peer"
else
  printf '%-16s %-34s %10.3f s %12s\n' ddim-sample "moons MLP, 100,000 x 50 steps" "$t_ours" "torch not installed"
fi

# vq-encode / vq-train: N = 200,000 x D = 64 against K = 1,024 codes, and k-means
# with 25 iterations, against faiss (vq_peer.py) on the same threads; without
# python3-faiss only nnkit's figures are printed.
echo
echo "vq vs faiss, $(nproc) threads:"
# SGEMM and encode repetitions are interleaved, so both see the same machine.
"$build/nnkit_bench_vq" --benchmark_filter='Sgemm|Encode|Decode' --benchmark_repetitions=5 \
  --benchmark_enable_random_interleaving=true --benchmark_format=json >"$work/vq.json" 2>/dev/null
"$build/nnkit_bench_vq" --benchmark_filter='Kmeans' --benchmark_format=json >"$work/vq_kmeans.json" 2>/dev/null
"$py" "$root/tests/bench/vq_peer.py" --threads "$(nproc)" --ours "$work/vq.json" --ours "$work/vq_kmeans.json"

# flow-sample: the shipped 1-rectified moons model, N = 100,000 2-D samples,
# 50 Euler and 50 RK4 steps, against the same loops and MLP in PyTorch
# (flow_peer.py) on the same threads.
echo
echo "flow-sample vs PyTorch, $(nproc) threads (in-process times):"
"$build/nnkit_bench_flow" --threads="$(nproc)" --benchmark_filter='BM_PeerFlow' --benchmark_format=csv \
  2>/dev/null >"$work/flow.csv"
peer=$("$py" "$root/tests/bench/flow_peer.py" --threads "$(nproc)" 2>/dev/null) || peer=""
for s in Euler Rk4; do
  t_ours=$(awk -F, -v b="BM_PeerFlow$s" '$1 ~ b { printf "%.3f", $3 / 1000 }' "$work/flow.csv")
  key=$(echo "$s" | tr 'A-Z' 'a-z')
  t_peer=$(echo "$peer" | awk -v k="${key}_100000" '$1 == k { print $2 }')
  if [ -n "$t_peer" ]; then
    row flow-sample "rf moons MLP, 100,000 x 50 $key" "$t_ours" "$t_peer"
  else
    printf '%-16s %-34s %10.3f s %12s\n' flow-sample "rf moons MLP, 100,000 x 50 $key" "$t_ours" "torch not installed"
  fi
done
