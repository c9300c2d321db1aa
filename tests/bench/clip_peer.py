#!/usr/bin/python3
"""The PyTorch peer of clip-score's retrieval benchmark: what a user writes
with torch on a CPU to get recall@{1,5,10} both ways from two embedding files
(as clip_benchmark's zero-shot retrieval does: normalise, one matrix product,
top-k). Pair i is image i and text i.

    clip_peer.py IMAGE_EMB.npy TEXT_EMB.npy THREADS [--ks 1,5,10]

Prints one JSON line: the recalls and the seconds spent loading, in the
matrix product and in the top-k (the process start and `import torch` are
not included; tests/bench/compare.sh times the whole command).
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def main():
    img_path, txt_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ks = [int(k) for k in (sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--ks" else "1,5,10").split(",")]
    torch.set_num_threads(threads)  # as clip-score --threads: the same number of cores
    t0 = time.perf_counter()
    img = F.normalize(torch.from_numpy(np.load(img_path)).float(), dim=-1)
    txt = F.normalize(torch.from_numpy(np.load(txt_path)).float(), dim=-1)
    t1 = time.perf_counter()
    with torch.no_grad():
        sim = img @ txt.T  # [N, M], float32: the whole matrix is held
        t2 = time.perf_counter()
        out = {}
        truth = torch.arange(sim.shape[0])
        for name, s in (("image_to_text", sim), ("text_to_image", sim.T)):
            top = s.topk(max(ks), dim=1).indices
            hit = top == truth[:, None]
            out[name] = {"recall@%d" % k: float(hit[:, :k].any(dim=1).float().mean()) for k in ks}
        t3 = time.perf_counter()
    out["seconds"] = {"load": t1 - t0, "matmul": t2 - t1, "topk": t3 - t2, "total": t3 - t0}
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
