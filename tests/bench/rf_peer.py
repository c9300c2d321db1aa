#!/usr/bin/env python3
"""The receptive-field recurrence in plain Python: rf-calc's peer in compare.sh.

There is no receptive-field library in Debian to compare with, so this is the
straightforward implementation a user would write: it reads a network in
rf-calc's language (the part that chains and residual networks use: conv,
maxpool, avgpool, point-wise layers, add and concat; k, s, p as N, HxW, valid
or stride-1 same, d, from) and prints what `rf-calc --to csv` prints without
an input size, with exact fractions as rf-calc computes them.

    rf_peer.py NET                 the CSV table of NET
    rf_peer.py --chain N > NET     writes the generated N-layer chain
"""
import sys
from fractions import Fraction

POINTWISE = {"identity", "bn", "relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "gelu",
             "silu", "swish", "hardswish", "mish", "sigmoid", "hardsigmoid", "tanh", "dropout", "lrn"}


def chain(n):
    """A chain of n layers: dilated non-square convolutions, ReLUs, 'same'
    convolutions and a stride-2 pool every 2,000 layers."""
    lines = []
    for i in range(n):
        if i % 2000 == 1999:
            lines.append("l%d: maxpool k=3 s=2 p=1" % i)
        elif i % 3 == 0:
            lines.append("l%d: conv k=3x5 d=2 p=2x4" % i)
        elif i % 3 == 1:
            lines.append("l%d: relu" % i)
        else:
            lines.append("l%d: conv k=3 p=same" % i)
    return "\n".join(lines) + "\n"


def pair(v):
    h, _, w = v.partition("x")
    return (int(h), int(w or h))


def number(x):
    return str(x.numerator) if x.denominator == 1 else repr(float(x))


def table(text):
    # name -> per axis (r, S, P)
    fields = {"input": [(Fraction(1), Fraction(1), Fraction(0))] * 2}
    prev, rows = "input", []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, rest = line.partition(":")
        name, words = name.strip(), rest.split()
        op, keys = words[0], dict(w.split("=", 1) for w in words[1:])
        inputs = keys.get("from", prev).split(",")
        srcs = [fields[i] for i in inputs]
        if op in ("conv", "maxpool", "avgpool"):
            k = pair(keys["k"])
            s = pair(keys.get("s", keys["k"] if op != "conv" else "1"))
            d = pair(keys.get("d", "1"))
            p = keys.get("p", "0")
            out = []
            for a in range(2):
                span = d[a] * (k[a] - 1) + 1
                if p == "same":
                    if s[a] != 1:
                        sys.exit("line %d: strided same padding is not supported here" % lineno)
                    before = (span - 1) // 2
                else:
                    before = 0 if p == "valid" else pair(p)[a]
                r, S, P = srcs[0][a]
                out.append((r + (span - 1) * S, S * s[a], P + before * S))
        elif op in POINTWISE:
            out = srcs[0]
        elif op in ("add", "concat"):
            # Aligned paths (same stride and centre): the widest one.
            out = [max((f[a] for f in srcs), key=lambda x: x[0]) for a in range(2)]
        else:
            sys.exit("line %d: op %s is not supported here" % (lineno, op))
        fields[name] = out
        rows.append((name, op, out))
        prev = name
    head = ("name,op,receptive_field_h,receptive_field_w,effective_stride_h,effective_stride_w,"
            "effective_padding_h,effective_padding_w,center_h,center_w,output_size_h,output_size_w")
    lines = [head]
    for name, op, out in rows:
        cols = [name, op]
        for q in range(4):
            for a in range(2):
                r, S, P = out[a]
                cols.append(number((r, S, P, (r - 1) / 2 - P)[q]))
        lines.append(",".join(cols) + ",,")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--chain":
        sys.stdout.write(chain(int(sys.argv[2])))
    elif len(sys.argv) == 2:
        with open(sys.argv[1]) as f:
            sys.stdout.write(table(f.read()))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
