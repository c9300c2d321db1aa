#!/usr/bin/env python3
"""Writes points.csv: 120 points of three Gaussian clusters (seeded), the
example input of the main job until the tools that make their own data land."""
import numpy as np

rng = np.random.default_rng(7)
centres = np.array([[0.0, 0.0], [3.0, 1.0], [1.0, 3.5]])
pts = np.concatenate([c + 0.5 * rng.standard_normal((40, 2)) for c in centres])
with open("points.csv", "w") as f:
    f.write("# 120 points of three Gaussian clusters (x, y), made by examples/data/make_points.py\n")
    for x, y in pts:
        f.write(f"{x:.6f},{y:.6f}\n")
