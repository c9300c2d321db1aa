#!/usr/bin/python3
"""faiss on the case of tests/bench/bench_vq.cpp, for the peer comparison.

N = 200,000 float32 vectors of D = 64 (standard normal), K = 1,024 codes:
  encode  faiss.IndexFlatL2(D).search(x, 1), best of --repeat runs;
  k-means faiss.Kmeans(D, K, niter=25, seed=1234).train(x), once (faiss's
          default: K random training vectors, then 25 Lloyd iterations).
faiss.omp_set_num_threads(--threads) for both, as nnkit's --threads.

Usage: vq_peer.py [--threads N] [--repeat K] [--ours BENCH_JSON]...
  --ours  the JSON of nnkit_bench_vq --benchmark_format=json (several files
          may be given; each benchmark's best repetition counts): prints
          nnkit's times beside faiss's, the speed-ups, and the encode's share
          of the machine's SGEMM rate (2 N K D flops per second).
Without faiss (python3-faiss) it prints nnkit's figures and says so.
"""
import argparse
import json
import os
import time

import numpy as np

try:
    import faiss
except ImportError:
    faiss = None

N, D, K, ITERS = 200000, 64, 1024, 25
FLOPS = 2.0 * N * K * D


def ours(paths):
    """nnkit's seconds (best of the repetitions) from nnkit_bench_vq's JSON files."""
    runs = {}
    for path in paths:
        for b in json.load(open(path))["benchmarks"]:
            if b.get("run_type", "iteration") != "iteration":
                continue  # aggregates
            name = b.get("run_name", b["name"])
            if name not in runs or b["real_time"] < runs[name]["real_time"]:
                runs[name] = b

    def seconds(name):
        b = runs[name]
        return b["real_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]

    return {
        "sgemm": 2.0 * 2048 ** 3 / seconds("BM_Sgemm2D/2048/real_time") / 1e9,
        "sgemm_shape": FLOPS / seconds("BM_SgemmEncodeShape/real_time") / 1e9,
        "encode": seconds("BM_Encode/0/1/real_time"),
        "encode_cosine": seconds("BM_Encode/1/1/real_time"),
        "kmeans_pp": seconds("BM_Kmeans/0/iterations:1/real_time"),
        "kmeans_random": seconds("BM_Kmeans/1/iterations:1/real_time"),
        "inertia_pp": runs["BM_Kmeans/0/iterations:1/real_time"]["inertia"],
        "inertia_random": runs["BM_Kmeans/1/iterations:1/real_time"]["inertia"],
    }


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ours", action="append", help="nnkit_bench_vq JSON (may be given several times)")
    a = ap.parse_args()
    o = ours(a.ours) if a.ours else None
    if o:
        print("nnkit: encode %.3f s = %.1f GFLOP/s = %.0f%% of the machine's SGEMM rate (%.1f GFLOP/s square 2048; "
              "%.1f GFLOP/s for plain SGEMMs of the encode's shape); cosine %.3f s"
              % (o["encode"], FLOPS / o["encode"] / 1e9, 100 * FLOPS / o["encode"] / 1e9 / o["sgemm"], o["sgemm"],
                 o["sgemm_shape"], o["encode_cosine"]))
        print("nnkit: k-means 25 iterations %.2f s (k-means++, inertia %.6g), %.2f s (random init, inertia %.6g)"
              % (o["kmeans_pp"], o["inertia_pp"], o["kmeans_random"], o["inertia_random"]))
    if faiss is None:
        print("faiss not installed (python3-faiss): no peer figures")
        return
    faiss.omp_set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D), dtype=np.float32)
    codes = rng.standard_normal((K, D), dtype=np.float32)
    index = faiss.IndexFlatL2(D)
    index.add(codes)
    t_enc = best(lambda: index.search(x, 1), a.repeat)
    km = faiss.Kmeans(D, K, niter=ITERS, seed=1234)
    t0 = time.perf_counter()
    km.train(x)
    t_km = time.perf_counter() - t0
    _, nearest = km.index.search(x, 1)
    inertia = float(((x.astype(np.float64) - km.centroids[nearest[:, 0]]) ** 2).sum())
    print("faiss %s, %d threads: IndexFlatL2 encode %.3f s = %.1f GFLOP/s; Kmeans 25 iterations %.2f s (inertia %.6g)"
          % (faiss.__version__, a.threads, t_enc, FLOPS / t_enc / 1e9, t_km, inertia))
    if o:
        print("encode: nnkit %.2fx faiss; k-means: nnkit %.2fx faiss (k-means++), %.2fx (random init, as faiss)"
              % (t_enc / o["encode"], t_km / o["kmeans_pp"], t_km / o["kmeans_random"]))


if __name__ == "__main__":
    main()
