#!/usr/bin/env python3
"""Trains the 2-D coupling flows shipped in examples/models/ (kinds nice and
realnvp, nnkit-formats(5)) on the moons data by maximum likelihood, and writes
PyTorch's forward, inverse and log-likelihood on fixed inputs to
tests/fixtures/flow/ref_KIND.safetensors for tests/unit/test_flow.cpp.

    python3 examples/flow/train_coupling.py [--iters N]

The flow f maps data x to latent z; log p(x) = log prior(f(x)) + log|det df/dx|.
Layer i (mask m_i: 1 marks the coordinates it changes, 0 those it conditions
on; alternating 0,1,0,1... then 1,0,1,0... unless given), then a diagonal
scaling z = y * exp(scale):
  nice     y = x + m * net(x * (1 - m))                          log-det 0
  realnvp  [s, t] = net(x * (1 - m)) split in halves, s = tanh(s)
           y = x * (1 - m) + m * (x * exp(s) + t)                log-det sum(m * s)
net: Linear(D, H), act, (Linear(H, H), act) * (depth - 1), Linear(H, D or 2D)
(state_dict names layers.i.net.{0,2,4..}.weight/bias and layers.i.mask).
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "examples", "models"))
from nnkit_mlp import save_safetensors  # noqa: E402

ACTS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class Coupling(nn.Module):
    def __init__(self, kind, mask, hidden, depth, activation):
        super().__init__()
        d = mask.numel()
        self.kind = kind
        self.register_buffer("mask", mask)
        mods = [nn.Linear(d, hidden), ACTS[activation]()]
        for _ in range(depth - 1):
            mods += [nn.Linear(hidden, hidden), ACTS[activation]()]
        mods.append(nn.Linear(hidden, d if kind == "nice" else 2 * d))
        self.net = nn.Sequential(*mods)

    def forward(self, x):
        m = self.mask
        out = self.net(x * (1 - m))
        if self.kind == "nice":
            return x + m * out, torch.zeros(x.shape[0])
        s, t = out.chunk(2, dim=1)
        s = torch.tanh(s)
        return x * (1 - m) + m * (x * torch.exp(s) + t), (m * s).sum(1)

    def inverse(self, y):
        m = self.mask
        out = self.net(y * (1 - m))
        if self.kind == "nice":
            return y - m * out
        s, t = out.chunk(2, dim=1)
        s = torch.tanh(s)
        return y * (1 - m) + m * (y - t) * torch.exp(-s)


class Flow(nn.Module):
    def __init__(self, kind, dim=2, layers=6, hidden=64, depth=2, activation="relu", prior="gaussian"):
        super().__init__()
        self.meta = dict(kind=kind, dim=dim, layers=layers, hidden=hidden, depth=depth, activation=activation,
                         prior=prior)
        masks = [torch.tensor([float((j + i) % 2) for j in range(dim)]) for i in range(layers)]
        self.layers = nn.ModuleList([Coupling(kind, mk, hidden, depth, activation) for mk in masks])
        self.scale = nn.Parameter(torch.zeros(dim))

    def forward(self, x):  # x -> z, log|det|
        ld = torch.zeros(x.shape[0])
        for layer in self.layers:
            x, l = layer(x)
            ld = ld + l
        return x * torch.exp(self.scale), ld + self.scale.sum()

    def inverse(self, z):
        x = z * torch.exp(-self.scale)
        for layer in reversed(self.layers):
            x = layer.inverse(x)
        return x

    def log_prior(self, z):
        if self.meta["prior"] == "gaussian":
            return (-0.5 * z * z - 0.5 * math.log(2 * math.pi)).sum(1)
        return -(nn.functional.softplus(z) + nn.functional.softplus(-z)).sum(1)

    def log_prob(self, x):
        z, ld = self(x)
        return self.log_prior(z) + ld


def moons(rng, n):
    k = rng.integers(0, 2, n)
    a = rng.uniform(0, math.pi, n)
    x = np.where(k == 0, np.cos(a), 1 - np.cos(a))
    y = np.where(k == 0, np.sin(a), 0.5 - np.sin(a))
    p = np.stack([x - 0.5, y - 0.25], 1) * 1.6 + rng.normal(0, 0.05, (n, 2))
    return p.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=1500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for kind, prior in (("nice", "logistic"), ("realnvp", "gaussian")):
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        flow = Flow(kind, prior=prior)
        opt = torch.optim.Adam(flow.parameters(), lr=2e-3)
        for it in range(args.iters):
            x = torch.from_numpy(moons(rng, 256))
            loss = -flow.log_prob(x).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if it % 500 == 0 or it == args.iters - 1:
                print(f"{kind}: iter {it} nll {loss.item():.3f}", flush=True)
        flow.eval()
        sd = {k: v.detach().numpy().astype(np.float32) for k, v in flow.state_dict().items()}
        meta = {k: str(v) for k, v in flow.meta.items()}
        meta["made_by"] = "examples/flow/train_coupling.py"
        save_safetensors(os.path.join(ROOT, "examples", "models", kind + "_moons.safetensors"), sd, meta)
        # Reference values on fixed inputs.
        r = np.random.default_rng(1)
        x = (r.standard_normal((64, 2)) * 1.2).astype(np.float32)
        zin = r.standard_normal((64, 2)).astype(np.float32)
        with torch.no_grad():
            z, ld = flow(torch.from_numpy(x))
            lp = flow.log_prob(torch.from_numpy(x))
            xi = flow.inverse(torch.from_numpy(zin))
        save_safetensors(os.path.join(ROOT, "tests", "fixtures", "flow", "ref_" + kind + ".safetensors"),
                         {"x": x, "z": z.numpy(), "logdet": ld.numpy().astype(np.float64),
                          "log_prob": lp.numpy().astype(np.float64), "z_in": zin, "x_inv": xi.numpy()},
                         {"made_by": "examples/flow/train_coupling.py", "torch": torch.__version__})
        print("wrote", kind)


if __name__ == "__main__":
    main()
