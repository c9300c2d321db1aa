#!/usr/bin/env python3
"""Trains the 2-D rectified-flow velocity models shipped in examples/models/
and exports them as nnkit `mlp` models with prediction=velocity.

    python3 examples/flow/train_flow.py [--iters N] [--reflow-iters N]

Convention (flow-sample(1)): x_t = (1 - t) x0 + t eps, t in [0, 1], t = 1 is
noise, and the network v(x_t, t) regresses the velocity eps - x0.

rf_moons   1-rectified flow: (x0, eps) drawn independently (moons data).
rf2_moons  2-rectified flow ("reflow", Liu et al. 2022): the pairs are
           (x0^, eps) with x0^ the 1-rectified model's ODE solution from eps
           (50 Euler steps), so the learned paths are nearly straight and a
           few Euler steps suffice. Initialised from rf_moons.

CPU, one thread, well under two minutes each. Also writes
tests/fixtures/flow/ref_rf_moons.safetensors: PyTorch's output for fixed
inputs, which tests/unit/test_flow.cpp matches to 1e-5.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "examples", "models"))
from nnkit_mlp import MLPDenoiser, export, save_safetensors  # noqa: E402

MODELS = os.path.join(ROOT, "examples", "models")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "flow")
ARCH = dict(dim=2, hidden=64, depth=3, activation="gelu", residual=True, time_dim=32, time_scale=1000.0)


def moons(rng, n):
    k = rng.integers(0, 2, n)
    a = rng.uniform(0, math.pi, n)
    x = np.where(k == 0, np.cos(a), 1 - np.cos(a))
    y = np.where(k == 0, np.sin(a), 0.5 - np.sin(a))
    p = np.stack([x - 0.5, y - 0.25], 1) * 1.6 + rng.normal(0, 0.05, (n, 2))
    return p.astype(np.float32)


@torch.no_grad()
def euler(model, eps, steps):
    x = eps.clone()
    for i in range(steps):
        t = 1 - i / steps
        x = x - (1 / steps) * model(x, torch.full((x.shape[0],), t))
    return x


def fit(model, pairs, iters, lr, seed):
    """pairs(it) -> (x0, eps) tensors; flow-matching loss on the linear path."""
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=iters)
    t0 = time.time()
    for it in range(iters):
        x0, eps = pairs(it)
        t = torch.rand(x0.shape[0])
        xt = (1 - t[:, None]) * x0 + t[:, None] * eps
        loss = ((model(xt, t) - (eps - x0)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 500 == 0 or it == iters - 1:
            print(f"iter {it} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    return model.eval()


def write_reference(model, name, seed=1):
    """PyTorch's velocity for fixed inputs: x [G, R, 2] at flow times t [G]."""
    rng = np.random.default_rng(seed)
    G, R = 5, 40
    x = (rng.standard_normal((G, R, 2)) * 1.5).astype(np.float32)
    t = np.array([0, 0.013, 0.5, 0.871, 1], dtype=np.float32)
    out = np.zeros_like(x)
    with torch.no_grad():
        for g in range(G):
            out[g] = model(torch.from_numpy(x[g]), torch.full((R,), float(t[g]))).numpy()
    os.makedirs(FIXTURES, exist_ok=True)
    p = os.path.join(FIXTURES, "ref_" + name + ".safetensors")
    save_safetensors(p, {"x": x, "t": t, "out": out}, {"made_by": "examples/flow/train_flow.py",
                                                       "torch": torch.__version__})
    print("wrote", p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=2500)
    ap.add_argument("--reflow-iters", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)

    # 1-rectified: independent coupling of data and noise.
    torch.manual_seed(0)
    rf = MLPDenoiser(**ARCH)

    def independent(it):
        return torch.from_numpy(moons(rng, args.batch)), torch.randn(args.batch, 2)

    fit(rf, independent, args.iters, 3e-3, 0)
    export(rf, os.path.join(MODELS, "rf_moons.safetensors"), "velocity", made_by="examples/flow/train_flow.py")
    write_reference(rf, "rf_moons")

    # 2-rectified: the coupling the 1-rectified ODE defines.
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(20000, 2, generator=g)
    x0 = euler(rf, eps, 50)
    rf2 = MLPDenoiser(**ARCH)
    rf2.load_state_dict(rf.state_dict())

    def coupled(it):
        idx = torch.randint(0, eps.shape[0], (args.batch,))
        return x0[idx], eps[idx]

    fit(rf2, coupled, args.reflow_iters, 1e-3, 1)
    export(rf2, os.path.join(MODELS, "rf2_moons.safetensors"), "velocity", made_by="examples/flow/train_flow.py",
           reflow="2")
    print("wrote", os.path.join(MODELS, "rf_moons.safetensors"), "and rf2_moons.safetensors")


if __name__ == "__main__":
    main()
