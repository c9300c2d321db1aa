#!/usr/bin/env python3
"""The peer of BM_PeerDdim: the same DDIM sampler (diffusers' equations, eta 0,
linear schedule, 50 leading steps) and the same MLP (the shipped moons model)
in PyTorch on the CPU, N = 100,000 2-D samples. Prints "ddim_100000 SECONDS"
(best of --repeat, in-process, after a warm-up), or nothing and exit 1 when
torch is missing.

    python3 tests/bench/ddim_peer.py --threads N [--n 100000] [--steps 50]
"""
import argparse
import os
import sys
import time

try:
    import numpy as np
    import torch
except ImportError:
    sys.exit(1)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "examples", "models"))
from nnkit_mlp import load_model  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(os.path.join(ROOT, "examples", "models", "moons.safetensors"))
    T, S = 1000, args.steps
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float32)
    ac = torch.cumprod(1 - betas, 0)
    ts = (np.arange(S) * (T // S))[::-1].copy()

    @torch.no_grad()
    def sample(x):
        for k, t in enumerate(ts):
            a_t = ac[t]
            a_p = ac[ts[k + 1]] if k + 1 < S else torch.tensor(1.0)
            eps = model(x, torch.full((x.shape[0],), float(t)))
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_p.sqrt() * x0 + (1 - a_p).sqrt() * eps
        return x

    x = torch.randn(args.n, 2, generator=torch.Generator().manual_seed(0))
    sample(x[:1000])
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        sample(x)
        best = min(best, time.perf_counter() - t0)
    print("ddim_%d %.4f" % (args.n, best))


if __name__ == "__main__":
    main()
