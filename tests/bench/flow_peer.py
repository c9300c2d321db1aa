#!/usr/bin/env python3
"""The peer of BM_PeerFlowEuler and BM_PeerFlowRk4: the same Euler and RK4
loops (t from 1 to 0 in 50 uniform steps, x_t = (1 - t) x0 + t eps, dx/dt = v)
and the same MLP (the shipped rf_moons model) in PyTorch on the CPU,
N = 100,000 2-D samples. Prints "euler_100000 SECONDS" and "rk4_100000
SECONDS" (best of --repeat, in-process, after a warm-up), or nothing and exit 1
when torch is missing.

    python3 tests/bench/flow_peer.py --threads N [--n 100000] [--steps 50]
"""
import argparse
import os
import sys
import time

try:
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
    model, _ = load_model(os.path.join(ROOT, "examples", "models", "rf_moons.safetensors"))
    S = args.steps

    @torch.no_grad()
    def v(x, t):
        return model(x, torch.full((x.shape[0],), t))

    @torch.no_grad()
    def euler(x):
        for i in range(S):
            t, h = 1 - i / S, -1 / S
            x = x + h * v(x, t)
        return x

    @torch.no_grad()
    def rk4(x):
        for i in range(S):
            t, h = 1 - i / S, -1 / S
            k1 = v(x, t)
            k2 = v(x + h / 2 * k1, t + h / 2)
            k3 = v(x + h / 2 * k2, t + h / 2)
            k4 = v(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x

    x = torch.randn(args.n, 2, generator=torch.Generator().manual_seed(0))
    for name, fn in (("euler", euler), ("rk4", rk4)):
        fn(x[:1000])
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - t0)
        print("%s_%d %.4f" % (name, args.n, best), flush=True)


if __name__ == "__main__":
    main()
