#!/bin/bash
# The Python examples, tested (CTest: examples.python). Runs every console
# example of README.md against the real tools and compares its output with the
# README's, then checks nnkit_stream.py itself (every dtype, pipes, truncation).
#
# README conventions: in a ```console block, "$ " starts a command, "> " lines
# continue it, and the lines up to the next command are its expected output
# (stdout and stderr together; "..." matches any text). Every command must
# exit 0. A ```python block whose first line is "# NAME.py" is written to
# NAME.py first. Commands run in one scratch directory, in order, with bash
# -o pipefail, the tools of $NNKIT_BIN first on PATH, python3 a Python with
# numpy, and this directory on PYTHONPATH.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${NNKIT_BIN:?set NNKIT_BIN to the directory of the built tools}"

py=""
for cand in ${NNKIT_PYTHON:-} /usr/bin/python3 python3 python; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import numpy' >/dev/null 2>&1; then
    py=$(command -v "$cand")
    break
  fi
done
if [ -z "$py" ]; then
  echo "examples/python: no Python with numpy found (tried \$NNKIT_PYTHON, /usr/bin/python3, python3, python)" >&2
  exit 1
fi
for t in tensor-convert tensor-info tensor-cat tensor-split; do
  if [ ! -x "$NNKIT_BIN/$t" ]; then
    echo "examples/python: $NNKIT_BIN/$t is missing" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/nnkit_pyex.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/shim" "$work/run"
ln -s "$py" "$work/shim/python3"
export PATH="$NNKIT_BIN:$work/shim:$PATH"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C

exec "$py" - "$here/README.md" "$work/run" <<'PYTHON'
import io
import os
import re
import subprocess
import sys

import numpy as np
import nnkit_stream as ns

readme, work = sys.argv[1], sys.argv[2]
failures = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
    return ok


# --- the README's examples ---------------------------------------------------

def examples(path):
    """Yields ("file", name, text) and ("cmd", command, expected output, line)."""
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        kind, body, i = m.group(1), [], i + 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        start = i - len(body)
        i += 1
        if kind == "python" and body and re.match(r"^# (\S+\.py)\s*$", body[0]):
            yield ("file", body[0][2:].strip(), "\n".join(body) + "\n")
        elif kind == "console":
            j = 0
            while j < len(body):
                if not body[j].startswith("$ "):
                    raise SystemExit(f"{path}:{start + j + 1}: console output before any command")
                cmd, line = body[j][2:], start + j + 1
                j += 1
                while j < len(body) and body[j].startswith("> "):
                    cmd += "\n" + body[j][2:]
                    j += 1
                out = []
                while j < len(body) and not body[j].startswith("$ "):
                    out.append(body[j])
                    j += 1
                yield ("cmd", cmd, "\n".join(out), line)


def matches(expected, got):
    exp = [l.rstrip() for l in expected.strip("\n").split("\n")] if expected.strip() else []
    got = [l.rstrip() for l in got.strip("\n").split("\n")] if got.strip() else []
    pattern = "\n".join(re.escape(l).replace(r"\.\.\.", ".*") for l in exp)
    return re.fullmatch(pattern, "\n".join(got), re.S) is not None


n_cmds = 0
for ex in examples(readme):
    if ex[0] == "file":
        with open(os.path.join(work, ex[1]), "w") as f:
            f.write(ex[2])
        continue
    _, cmd, expected, line = ex
    n_cmds += 1
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    got = p.stdout.decode("utf-8", "replace")
    where = f"README.md:{line}: $ {cmd.splitlines()[0]}"
    if check(p.returncode == 0, f"{where}\n    exit status {p.returncode}\n    output:\n{got}"):
        check(matches(expected, got), f"{where}\n    expected:\n{expected}\n    got:\n{got}")
check(n_cmds >= 15, f"README.md: only {n_cmds} commands found")
print(f"examples/python: {n_cmds} README commands run")


# --- nnkit_stream itself -------------------------------------------------------

CODES = ["b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"]
rng = np.random.default_rng(7)


def sample(code, shape):
    if code == "b1":
        return rng.integers(0, 2, shape).astype(bool)
    dt = np.dtype("<" + code)
    bits = rng.integers(0, 256, int(np.prod(shape, dtype=np.int64)) * dt.itemsize, dtype=np.uint8)
    return bits.view(dt).reshape(shape)


def same(a, b):
    return a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=") and a.shape == b.shape and \
        np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes() == \
        np.ascontiguousarray(b).astype(b.dtype.newbyteorder("<")).tobytes()


arrays = []
for code in CODES:
    for shape in [(), (0,), (3,), (2, 3), (2, 0, 3), (1, 2, 3, 2)]:
        arrays.append(sample(code, shape))
arrays.append(np.asfortranarray(sample("f4", (3, 4))))
arrays.append(sample("i4", (2, 5)).astype(">i4"))
arrays.append(sample("f2", (4,)).astype(">f2"))

# Written by the module, read back by the module and by numpy.
buf = io.BytesIO()
ns.write_all(buf, arrays)
stream = buf.getvalue()
back = ns.read_all(io.BytesIO(stream))
check(len(back) == len(arrays), f"read_all gave {len(back)} of {len(arrays)} arrays")
for i, (a, b) in enumerate(zip(arrays, back)):
    check(same(a, b), f"write_all/read_all: array {i} {a.dtype} {a.shape} differs")
f = io.BytesIO(stream)
for i, a in enumerate(arrays):
    b = np.load(f)
    check(same(a, b), f"np.load of write_all output: array {i} {a.dtype} {a.shape} differs")
    check(b.dtype.byteorder in "<|=" and (b.flags.c_contiguous or b.ndim < 2),
          f"write_array wrote array {i} not little-endian C order")

# Through the tools and real pipes: python | tensor-convert | python.
p = subprocess.run(["tensor-convert"], input=stream, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
if check(p.returncode == 0, f"tensor-convert of the module's stream: exit {p.returncode}: {p.stderr!r}"):
    back = ns.read_all(io.BytesIO(p.stdout))
    check(len(back) == len(arrays), f"tensor-convert gave {len(back)} of {len(arrays)} arrays")
    for i, (a, b) in enumerate(zip(arrays, back)):
        check(same(a, b), f"through tensor-convert: array {i} {a.dtype} {a.shape} differs")
proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
import threading
threading.Thread(target=lambda: (proc.stdin.write(stream * 20), proc.stdin.close())).start()
n = sum(1 for _ in ns.iter_arrays(proc.stdout))
proc.wait()
check(n == 20 * len(arrays), f"iter_arrays over a pipe: {n} arrays, expected {20 * len(arrays)}")

# A stream cut anywhere but between arrays is a StreamError.
two = io.BytesIO()
ns.write_all(two, [np.arange(3, dtype=np.float32), np.float64(2.5)])
two = two.getvalue()
first = len(two) - (128 + 8)
for cut in range(len(two)):
    try:
        got = ns.read_all(io.BytesIO(two[:cut]))
        check(cut in (0, first), f"read_all of {cut} of {len(two)} bytes: no error")
        check(len(got) == (0 if cut == 0 else 1), f"read_all of {cut} bytes: {len(got)} arrays")
    except ns.StreamError as e:
        check(cut not in (0, first), f"read_all of {cut} bytes: {e}")
        check("truncated" in str(e), f"read_all of {cut} bytes: message {e}")
for bad, word in [(b"hello world, not npy", "magic"), (b"\x93NUMPY\x09\x00" + two[8:], "version")]:
    try:
        ns.read_all(io.BytesIO(bad))
        check(False, f"read_all of {bad[:12]!r}: no error")
    except ns.StreamError as e:
        check(word in str(e), f"read_all of {bad[:12]!r}: message {e}")
try:
    ns.write_array(io.BytesIO(), np.zeros(2, dtype=np.complex64))
    check(False, "write_array of complex64: no error")
except TypeError:
    check(True, "")

print(f"examples/python: {passed} checks passed, {len(failures)} failed")
for f in failures:
    print("FAILED: " + f, file=sys.stderr)
sys.exit(1 if failures else 0)
PYTHON
