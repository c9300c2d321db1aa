"""The PyTorch side of nnkit's `mlp` model kind: the network, and safetensors
reading and writing by hand (the `safetensors` package is not needed).

The architecture (nnkit-formats(5), "Models"):

    features = [emb(x * input_scale) or x, emb(t * time_scale), class_emb(c)]
    h = act(input(features))
    h = h + act(blocks[i](h))      (residual)   or   h = act(blocks[i](h))
    out = output(h)

emb(u) = [sin(u f_j), cos(u f_j)], f_j = exp(-ln(10000) j / (half - 1)), j < half,
the frequencies computed in double and rounded to float32. The input
embedding embeds each coordinate separately, coordinates one after another.
Class index num_classes is the "no class" row for classifier-free guidance.
"""
import json
import math
import struct

import numpy as np
import torch
from torch import nn


def frequencies(size):
    half = size // 2
    f = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / (half - 1))
    return torch.from_numpy(f.astype(np.float32))


class Sinusoidal(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.register_buffer("freq", frequencies(size), persistent=False)

    def forward(self, u):  # u: [n] -> [n, size]
        a = u[:, None] * self.freq[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


ACTS = {"gelu": nn.GELU, "silu": nn.SiLU, "relu": nn.ReLU}


class MLPDenoiser(nn.Module):
    def __init__(self, dim=2, hidden=128, depth=3, activation="gelu", residual=True, time_dim=64,
                 time_scale=1.0, input_dim=0, input_scale=1.0, num_classes=0, class_dim=16):
        super().__init__()
        self.arch = dict(dim=dim, hidden=hidden, depth=depth, activation=activation, residual=residual,
                         time_dim=time_dim, time_scale=time_scale, input_dim=input_dim,
                         input_scale=input_scale, num_classes=num_classes,
                         class_dim=class_dim if num_classes else 0)
        self.time_emb = Sinusoidal(time_dim)
        self.input_emb = Sinusoidal(input_dim) if input_dim else None
        feats = (dim * input_dim if input_dim else dim) + time_dim
        if num_classes:
            self.class_emb = nn.Embedding(num_classes + 1, class_dim)
            feats += class_dim
        self.input = nn.Linear(feats, hidden)
        self.blocks = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(depth)])
        self.output = nn.Linear(hidden, dim)
        self.act = ACTS[activation]()

    def forward(self, x, t, labels=None):
        a = self.arch
        if self.input_emb is not None:
            xs = x * a["input_scale"]
            parts = [torch.cat([self.input_emb(xs[:, j]) for j in range(a["dim"])], dim=1)]
        else:
            parts = [x]
        parts.append(self.time_emb(t * a["time_scale"]))
        if a["num_classes"]:
            if labels is None:
                labels = torch.full((x.shape[0],), a["num_classes"], dtype=torch.long)
            labels = torch.where(labels < 0, torch.full_like(labels, a["num_classes"]), labels)
            parts.append(self.class_emb(labels))
        h = self.act(self.input(torch.cat(parts, dim=1)))
        for blk in self.blocks:
            h = h + self.act(blk(h)) if a["residual"] else self.act(blk(h))
        return self.output(h)

    def metadata(self, prediction, **extra):
        m = {"kind": "mlp", "prediction": prediction}
        for k, v in self.arch.items():
            m[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
        m.update({k: str(v) for k, v in extra.items()})
        return m


DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}
NP = {v: k for k, v in DTYPES.items()}


def save_safetensors(path, tensors, metadata=None):
    """tensors: name -> numpy array. u64 LE header length, JSON header, data."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        s, t = e["data_offsets"]
        out[name] = np.frombuffer(data[s:t], dtype=NP[e["dtype"]]).reshape(e["shape"]).copy()
    return out, meta


def export(model, path, prediction, **extra):
    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    save_safetensors(path, sd, model.metadata(prediction, **extra))


def load_model(path):
    tensors, meta = load_safetensors(path)
    kw = dict(dim=int(meta["dim"]), hidden=int(meta["hidden"]), depth=int(meta["depth"]),
              activation=meta.get("activation", "gelu"), residual=meta.get("residual", "true") == "true",
              time_dim=int(meta["time_dim"]), time_scale=float(meta.get("time_scale", 1)),
              input_dim=int(meta.get("input_dim", 0)), input_scale=float(meta.get("input_scale", 1)),
              num_classes=int(meta.get("num_classes", 0)), class_dim=int(meta.get("class_dim", 16)))
    m = MLPDenoiser(**kw)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    return m.eval(), meta
