#!/usr/bin/python3
"""PyTorch's RoPE on the case of tests/bench/bench_rope.cpp, for the peer comparison.

[1, 32 heads, 4096 tokens, 128 dims] float32, computed as Hugging Face
transformers does in LlamaRotaryEmbedding.forward and apply_rotary_pos_emb
(restated here: transformers is not needed): inv_freq @ position_ids in
float32, cat(freqs, freqs), cos and sin, then q * cos + rotate_half(q) * sin.
Prints the best time of the whole computation and of the rotation alone.

Usage: rope_peer.py [--threads N] [--repeat K] [--ours BENCH_JSON]
  --threads  torch.set_num_threads (default: all cores, as nnkit)
  --ours     the JSON of nnkit_bench_rope --benchmark_format=json: prints
             the speed-up and the share of the copy bandwidth beside torch.
"""
import argparse
import json
import os
import time

try:
    import torch
except ImportError:
    torch = None

HEADS, TOKENS, DIM, BASE = 32, 4096, 128, 500000.0


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def tables(inv_freq, position_ids):
    inv = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply(q, cos, sin):
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def ours(path):
    """nnkit's times (ms) from nnkit_bench_rope's JSON: tables + rotation, rotation, copy."""
    runs = {b["name"]: b for b in json.load(open(path))["benchmarks"]}

    def ms(name):
        b = runs[name]
        return b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]

    copy = min(ms("BM_MemcpySameBytes/real_time"), ms("BM_CopyLoopSameBytes/real_time"))  # the faster copy
    return ms("BM_RopeTablesAndApply/real_time"), ms("BM_RopeApply/0/real_time"), copy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--ours")
    a = ap.parse_args()
    nbytes = 2 * HEADS * TOKENS * DIM * 4  # read + written, as the copy
    if a.ours:
        full, rot, copy = ours(a.ours)
        print("nnkit: tables + rotation %.2f ms, rotation %.2f ms = %.0f%% of the copy bandwidth "
              "(the faster copy of the same bytes: %.2f ms, %.1f GB/s)" % (full, rot, 100 * copy / rot, copy, nbytes / copy / 1e6))
    if torch is None:
        print("torch not installed")
        return
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    q = torch.randn(1, HEADS, TOKENS, DIM)
    position_ids = torch.arange(TOKENS)[None, :]
    inv_freq = 1.0 / (BASE ** (torch.arange(0, DIM, 2, dtype=torch.int64).float() / DIM))
    with torch.inference_mode():
        cos, sin = tables(inv_freq, position_ids)
        t_full = best(lambda: apply(q, *tables(inv_freq, position_ids)), a.repeat) * 1e3
        t_apply = best(lambda: apply(q, cos, sin), a.repeat) * 1e3
    print("torch %s, %d threads: tables + rotation %.2f ms, rotation %.2f ms"
          % (torch.__version__, a.threads, t_full, t_apply))
    if a.ours:
        print("nnkit is %.1fx faster than torch (tables + rotation), %.1fx (rotation)" % (t_full / full, t_apply / rot))


if __name__ == "__main__":
    main()
