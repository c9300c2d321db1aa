#!/usr/bin/env python3
"""Trains the small 2-D diffusion models shipped in examples/models/ and
exports them as nnkit `mlp` models (safetensors, architecture in __metadata__).

    python3 examples/models/train.py [moons|rings|classes ...] [--iters N]

moons    two interleaved half circles, epsilon prediction
rings    two concentric circles (radii 1 and 2), v_prediction
classes  a class-conditional mixture of 4 elongated Gaussians, epsilon
         prediction with 10% of the labels dropped (classifier-free guidance)

Schedule: diffusers' DDPM default (T = 1000, linear betas 1e-4 to 0.02), written
into the metadata so ddim-sample uses it. CPU, one thread, about a minute each.
Also writes tests/fixtures/diffusion/ref_NAME.safetensors: PyTorch's output
for fixed inputs, which the C++ test matches to 1e-5.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nnkit_mlp import MLPDenoiser, export, save_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "tests", "fixtures", "diffusion")


def moons(rng, n):
    k = rng.integers(0, 2, n)
    a = rng.uniform(0, math.pi, n)
    x = np.where(k == 0, np.cos(a), 1 - np.cos(a))
    y = np.where(k == 0, np.sin(a), 0.5 - np.sin(a))
    p = np.stack([x - 0.5, y - 0.25], 1) * 1.6 + rng.normal(0, 0.05, (n, 2))
    return p.astype(np.float32), None


def rings(rng, n):
    r = np.where(rng.integers(0, 2, n) == 0, 1.0, 2.0)
    a = rng.uniform(0, 2 * math.pi, n)
    p = np.stack([r * np.cos(a), r * np.sin(a)], 1) + rng.normal(0, 0.06, (n, 2))
    return p.astype(np.float32), None


CLASS_MEANS = np.array([[1.5, 0.0], [0.0, 1.5], [-1.5, 0.0], [0.0, -1.5]])


def classes(rng, n):
    c = rng.integers(0, 4, n)
    # Each class is stretched along its direction from the centre.
    u = CLASS_MEANS[c] / 1.5
    along, across = rng.normal(0, 0.35, n), rng.normal(0, 0.1, n)
    p = CLASS_MEANS[c] + u * along[:, None] + np.stack([-u[:, 1], u[:, 0]], 1) * across[:, None]
    return p.astype(np.float32), c


SETS = {
    "moons": (moons, "epsilon", 0),
    "rings": (rings, "v_prediction", 0),
    "classes": (classes, "epsilon", 4),
}


def alphas_cumprod(T=1000, b0=1e-4, b1=0.02):
    betas = np.linspace(b0, b1, T).astype(np.float32)
    return np.cumprod((1 - betas).astype(np.float64)).astype(np.float32)


def train(name, iters, seed=0):
    data_fn, prediction, ncls = SETS[name]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MLPDenoiser(dim=2, hidden=128, depth=3, activation="gelu", residual=True, time_dim=64,
                        input_dim=32, input_scale=8.0, num_classes=ncls, class_dim=16)
    ac = torch.from_numpy(alphas_cumprod())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=iters)
    t0 = time.time()
    for it in range(iters):
        x0, c = data_fn(rng, 1024)
        x0 = torch.from_numpy(x0)
        t = torch.randint(0, 1000, (x0.shape[0],))
        eps = torch.randn_like(x0)
        a = ac[t].sqrt()[:, None]
        s = (1 - ac[t]).sqrt()[:, None]
        xt = a * x0 + s * eps
        labels = None
        if ncls:
            labels = torch.from_numpy(c).long()
            labels[torch.rand(labels.shape) < 0.1] = -1  # label dropout for guidance
        target = eps if prediction == "epsilon" else a * eps - s * x0
        loss = ((model(xt, t.float(), labels) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 1000 == 0 or it == iters - 1:
            print(f"{name}: iter {it} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    path = os.path.join(HERE, name + ".safetensors")
    export(model, path, prediction, train_steps=1000, beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
    print("wrote", path)
    write_reference(model, name, ncls)


def write_reference(model, name, ncls, seed=1):
    """PyTorch's outputs for fixed inputs: x [G, R, 2], t [G], labels [G, R]."""
    rng = np.random.default_rng(seed)
    G, R = 6, 40
    x = (rng.standard_normal((G, R, 2)) * 1.5).astype(np.float32)
    t = np.array([0, 1, 17, 250, 731, 999], dtype=np.float32)
    labels = rng.integers(-1, ncls, (G, R)) if ncls else np.full((G, R), -1)
    out = np.zeros_like(x)
    with torch.no_grad():
        for g in range(G):
            lab = torch.from_numpy(labels[g]).long() if ncls else None
            out[g] = model(torch.from_numpy(x[g]), torch.full((R,), float(t[g])), lab).numpy()
    os.makedirs(FIXTURES, exist_ok=True)
    p = os.path.join(FIXTURES, "ref_" + name + ".safetensors")
    save_safetensors(p, {"x": x, "t": t, "labels": labels.astype(np.int64), "out": out},
                     {"made_by": "examples/models/train.py", "torch": torch.__version__})
    print("wrote", p)


def untrained_variants():
    """Architecture variants the shipped models do not use (SiLU, ReLU, no
    residual, no input embedding, classes without input embedding), with
    random weights: test fixtures of the forward pass only."""
    for name, kw in {
        "silu_plain": dict(activation="silu", residual=False, input_dim=0, num_classes=3, class_dim=8, depth=2,
                           hidden=48, time_dim=16, time_scale=0.01),
        "relu_res": dict(activation="relu", residual=True, input_dim=16, input_scale=3.0, depth=1, hidden=40,
                         time_dim=8),
    }.items():
        torch.manual_seed(5)
        m = MLPDenoiser(dim=2, **kw).eval()
        export(m, os.path.join(FIXTURES, name + ".safetensors"), "epsilon")
        write_reference(m, name, kw.get("num_classes", 0))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="*", default=list(SETS))
    ap.add_argument("--iters", type=int, default=6000)
    ap.add_argument("--variants", action="store_true", help="also the untrained test variants")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for s in args.sets:
        train(s, args.iters)
    if args.variants:
        untrained_variants()
