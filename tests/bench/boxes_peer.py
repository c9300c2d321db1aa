#!/usr/bin/python3
"""torchvision's CPU time for the cases of bench_boxes.cpp (BM_Peer*), on the
same boxes: both draw them from the same counter-based generator
(splitmix64), so the inputs are equal bit for bit.

    python3 tests/bench/boxes_peer.py [--threads N] [--repeat R]

Prints one line per case: "CASE SECONDS" (the best of R runs after a warm-up),
e.g. "iou_4000 0.0812". Exits 3 with "torchvision not installed" on stderr
when torch or torchvision cannot be imported.
"""
import argparse
import sys
import time

import numpy as np

try:
    import torch
    import torchvision.ops as tvops
except ImportError:
    print("torchvision not installed", file=sys.stderr)
    sys.exit(3)

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix(x):
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def uniform(stream, i):
    """The i-th number of a stream, as bench_boxes.cpp's uniform()."""
    x = splitmix((np.uint64(stream) << np.uint64(32)) + np.asarray(i, np.uint64))
    return (x >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def make_boxes(n, stream, extent, lo, hi):
    i = np.arange(n, dtype=np.uint64) * np.uint64(4)
    x = (uniform(stream, i) * extent).astype(np.float32)
    y = (uniform(stream, i + np.uint64(1)) * extent).astype(np.float32)
    w = (lo + uniform(stream, i + np.uint64(2)) * (hi - lo)).astype(np.float32)
    h = (lo + uniform(stream, i + np.uint64(3)) * (hi - lo)).astype(np.float32)
    return np.stack([x, y, x + w, y + h], 1)  # float32 sums, as the C++ side


def make_scores(n, stream):
    return uniform(stream, np.arange(n, dtype=np.uint64)).astype(np.float32)


def best(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    n = 4000
    a = torch.from_numpy(make_boxes(n, 1, 1000, 10, 110))
    b = torch.from_numpy(make_boxes(n, 2, 1000, 10, 110))
    print("iou_4000 %.6f" % best(lambda: tvops.box_iou(a, b), args.repeat))
    print("giou_4000 %.6f" % best(lambda: tvops.generalized_box_iou(a, b), args.repeat))
    nb = torch.from_numpy(make_boxes(100000, 3, 2000, 16, 128))
    ns = torch.from_numpy(make_scores(100000, 4))
    print("nms_100000 %.6f" % best(lambda: tvops.nms(nb, ns, 0.5), max(1, args.repeat // 2)))
    print("# torch %s, %d threads; nms kept %d" % (torch.__version__, torch.get_num_threads(),
                                                 len(tvops.nms(nb, ns, 0.5))))


if __name__ == "__main__":
    main()
