#!/usr/bin/env bash
# tensor-info end to end: statistics against numpy for every dtype and layout,
# every input format, streams and stdin, table and JSON output, every option of
# --help, and the bad-input and bad-output matrices.
TOOL=tensor-info
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
INFO=$(bin tensor-info)
D=$T/in
mkdir -p "$D"

# ------------------------------------------------------------ --help, options
# Every option of --help is exercised below; a new one must be added here.
expect_help_version tensor-info --json --help --version --output --to --quiet --threads

# ------------------------------------------------------------ inputs
py '
import os, struct
d = sys.argv[1]
rng = np.random.default_rng(1)
def save(name, a, **kw):
    np.save(os.path.join(d, name), a, **kw)
x = rng.normal(3, 2, (7, 5)).astype(np.float32)
x[1, 2] = np.nan; x[4, 0] = np.inf; x[6, 4] = -np.inf; x[0, 0] = np.nan
save("f4.npy", x)
save("f8.npy", rng.normal(-1e6, 1e5, (3, 4, 5)))
save("f2.npy", np.array([0.5, -1, 65504, np.nan, 3.25], dtype=np.float16))
save("i1.npy", np.array([-128, 127, 0, 5], dtype=np.int8))
save("u1.npy", np.array([[0, 255], [7, 9]], dtype=np.uint8))
save("i2.npy", np.array([-32768, 32767, 1], dtype=np.int16))
save("u2.npy", np.array([0, 1, 5, 65535], dtype=np.uint16))
save("i4.npy", np.arange(-10, 14, dtype=np.int32).reshape(2, 3, 4))
save("u4.npy", np.array([4000000000, 1, 2], dtype=np.uint32))
save("i8.npy", np.array([-2**62, 2**62, 12345678912345], dtype=np.int64))
save("u8.npy", np.array([2**64 - 1, 0, 17], dtype=np.uint64))
save("b1.npy", np.array([[True, False, True], [True, True, False]]))
save("be_f8.npy", np.arange(12, dtype=">f8").reshape(3, 4) / 3)
save("be_i2.npy", np.array([-300, 2, 1000], dtype=">i2"))
save("be_u2.npy", np.array([300, 2, 1000], dtype=">u2"))
save("fortran.npy", np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4) ** 2))
save("scalar.npy", np.float64(-2.5))
save("empty.npy", np.zeros((0, 3), dtype=np.float32))
save("allnan.npy", np.array([np.nan, np.inf, -np.inf], dtype=np.float32))
save("single.npy", np.array([[42]], dtype=np.int64))
# npy versions 2.0 and 3.0 as numpy writes them
from numpy.lib import format as fmt
for v in [(2, 0), (3, 0)]:
    with open(os.path.join(d, "v%d.npy" % v[0]), "wb") as f:
        fmt.write_array(f, np.arange(10, dtype=np.float32) - 4.5, version=v)
# a stream: three arrays back to back
with open(os.path.join(d, "stream.npy"), "wb") as f:
    for a in [np.arange(6, dtype=np.float32), np.array([[1, 2], [3, 4]], dtype=np.int16), np.float64(7)]:
        np.save(f, a)
# safetensors, written by hand (header JSON, then the data)
def safetensors(path, tensors):
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    codes = {"float32": "F32", "int64": "I64", "uint8": "U8", "float16": "F16"}
    for name, a in tensors:
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        hdr[name] = {"dtype": codes[a.dtype.name], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
safetensors(os.path.join(d, "model.safetensors"),
            [("enc.weight", rng.normal(0, 1, (4, 3)).astype(np.float32)),
             ("enc.idx", np.array([3, -1, 9], dtype=np.int64)),
             ("img", np.array([[0, 9], [250, 3]], dtype=np.uint8)),
             ("half", np.array([1.5, -2, np.inf], dtype=np.float16))])
np.savez(os.path.join(d, "bundle.npz"), alpha=np.arange(5.0), beta=np.eye(3, dtype=np.float32))
np.savez_compressed(os.path.join(d, "packed.npz"), gamma=np.full((10, 10), 2, dtype=np.int32))
# text and csv
with open(os.path.join(d, "table.csv"), "w") as f:
    f.write("# a comment\n1.5,2,3\n4,5,-6e2\n")
with open(os.path.join(d, "ints.txt"), "w") as f:
    f.write("1 2 3\n4 5 6\n")
# a stream of many small tensors: its table is bigger than a pipe buffer
one = open(os.path.join(d, "i1.npy"), "rb").read()
with open(os.path.join(d, "many.npy"), "wb") as f:
    f.write(one * 20000)
' "$D"
# A PNG from the bad-input maker (a valid 16x16 RGB image).
make_bad_inputs
cp "$BAD/good.png" "$D/image.png"

# Reference statistics: numpy over the finite values, std with ddof=0.
REF='
def load_all(path):
    raw = open(path, "rb").read()
    if raw[:6] == b"\x93NUMPY":
        import io
        f, out = io.BytesIO(raw), []
        while f.tell() < len(raw):
            out.append(("", np.load(f)))
        return out
    if raw[:4] == b"PK\x03\x04":
        z = np.load(path)
        return [(k, z[k]) for k in z.files]
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        return [("", np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3))]
    if raw[8:9] == b"{":
        import struct
        n = struct.unpack("<Q", raw[:8])[0]
        hdr = json.loads(raw[8:8 + n]); base = 8 + n
        codes = {"F32": "<f4", "I64": "<i8", "U8": "u1", "F16": "<f2"}
        out = []
        for k, v in hdr.items():
            if k == "__metadata__": continue
            b, e = v["data_offsets"]
            out.append((k, np.frombuffer(raw[base + b:base + e], dtype=codes[v["dtype"]]).reshape(v["shape"])))
        return out
    return [("", np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2).astype(
        np.int64 if path.endswith("ints.txt") else np.float32))]

def stats(a):
    a = np.asarray(a)
    v = a.astype(np.float64).ravel()
    fin = v[np.isfinite(v)]
    nan = int(np.isnan(v).sum()); inf = int(np.isinf(v).sum())
    if fin.size == 0:
        return dict(min=None, max=None, mean=None, std=None, nan=nan, inf=inf)
    if a.dtype.kind in "iu":
        ints = [int(t) for t in a.ravel()]
        from fractions import Fraction
        m = Fraction(sum(ints), len(ints))
        var = sum((Fraction(t) - m) ** 2 for t in ints) / len(ints)
        return dict(min=float(min(ints)), max=float(max(ints)), mean=float(m), std=float(var) ** 0.5, nan=0, inf=0)
    s = float(np.abs(fin).max()) or 1.0  # scaled, so that huge values do not overflow
    return dict(min=float(fin.min()), max=float(fin.max()), mean=float((fin / s).mean()) * s,
                std=float((fin / s).std(ddof=0)) * s, nan=nan, inf=inf)

def std_ok(got, want, spread, a):
    # numpy itself overflows (inf) when the squares of finite values exceed
    # float64; there the exact std or "no value" are both taken.
    if want is not None and got is None:
        v = np.asarray(a, dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        return not np.isfinite(v.std())
    return close(got, want, scale=spread)

def close(got, want, rtol=2e-6, atol=0.0, scale=0.0):
    if want is None:
        return got is None
    if got is None:
        return False
    return abs(got - want) <= rtol * max(abs(want), scale) + atol
'

# ------------------------------------------------------------ --json vs numpy
ALL=(f4 f8 f2 i1 u1 i2 u2 i4 u4 i8 u8 b1 be_f8 be_i2 be_u2 fortran scalar empty allnan single v2 v3)
for name in "${ALL[@]}"; do
  run "$INFO" --json "$D/$name.npy"
  expect_ok "--json $name.npy"
  pycheck "--json $name.npy: dtype, shape, bytes, min/max/mean/std/nan/inf match numpy" "$REF"'
path, out = sys.argv[1], sys.argv[2]
got = json.load(open(out))
assert isinstance(got, list) and len(got) == 1, got
g = got[0]
a = np.load(path)
want = stats(a)
assert g["dtype"] == a.dtype.name, (g["dtype"], a.dtype.name)
assert g["shape"] == list(a.shape), (g["shape"], a.shape)
assert g["bytes"] == a.nbytes, (g["bytes"], a.nbytes)
assert g["index"] == 0 and g["input"] == path, g
assert g["nan"] == want["nan"] and g["inf"] == want["inf"], (g, want)
spread = max(abs(want["min"] or 0), abs(want["max"] or 0))
for k in ("min", "max", "mean"):
    assert close(g[k], want[k], scale=spread * 1e-9), (k, g[k], want[k])
# std: relative to the spread of the data (a float32 sum may round)
assert std_ok(g["std"], want["std"], spread, a), ("std", g["std"], want["std"])
' "$D/$name.npy" "$T/out"
done

# Several inputs at once; a stream; named containers; text; PNG.
run "$INFO" --json "$D/f4.npy" "$D/stream.npy" "$D/model.safetensors" "$D/bundle.npz" "$D/packed.npz" \
  "$D/table.csv" "$D/ints.txt" "$D/image.png"
expect_ok "--json of every input format"
pycheck "--json of every input format matches numpy" "$REF"'
got = json.load(open(sys.argv[1]))
paths = sys.argv[2:]
want = []
for p in paths:
    for i, (name, a) in enumerate(load_all(p)):
        want.append((p, i, name, a))
assert len(got) == len(want), (len(got), len(want))
for g, (p, i, name, a) in zip(got, want):
    assert g["input"] == p and g["index"] == i, (g, p, i)
    assert g["name"] == name, (g["name"], name)
    assert g["dtype"] == a.dtype.name and g["shape"] == list(a.shape) and g["bytes"] == a.nbytes, (g, a.dtype, a.shape)
    w = stats(a)
    spread = max(abs(w["min"] or 0), abs(w["max"] or 0))
    assert g["nan"] == w["nan"] and g["inf"] == w["inf"], (p, name, g, w)
    for k in ("min", "max", "mean"):
        assert close(g[k], w[k], scale=spread), (p, name, k, g[k], w[k])
    assert std_ok(g["std"], w["std"], spread, a), (p, name, "std", g["std"], w["std"])
' "$T/out" "$D/f4.npy" "$D/stream.npy" "$D/model.safetensors" "$D/bundle.npz" "$D/packed.npz" \
  "$D/table.csv" "$D/ints.txt" "$D/image.png"

# Committed fixtures, when there: every valid npy fixture (streams included).
MAN=${NNKIT_FIXTURES:+$NNKIT_FIXTURES/npy/manifest.json}
if [ -n "$MAN" ] && [ -f "$MAN" ]; then
  mapfile -t VALID < <("$PY" -c 'import json, sys; [print(e["file"]) for e in json.load(open(sys.argv[1]))["valid"]]' "$MAN")
  for f in "${VALID[@]}"; do
    run "$INFO" --json "$NNKIT_FIXTURES/npy/$f"
    expect_ok "--json fixture $f"
    pycheck "--json fixture $f matches numpy" "$REF"'
got = json.load(open(sys.argv[1]))
want = load_all(sys.argv[2])
assert len(got) == len(want), (len(got), len(want))
for g, (name, a) in zip(got, want):
    w = stats(a)
    spread = max(abs(w["min"] or 0), abs(w["max"] or 0))
    assert g["dtype"] == a.dtype.name and g["shape"] == list(a.shape) and g["bytes"] == a.nbytes, (g, a.dtype, a.shape)
    assert g["nan"] == w["nan"] and g["inf"] == w["inf"], (g, w)
    for k in ("min", "max", "mean"):
        assert close(g[k], w[k], scale=spread), (k, g[k], w[k])
    assert std_ok(g["std"], w["std"], spread, a), ("std", g["std"], w["std"])
' "$T/out" "$NNKIT_FIXTURES/npy/$f"
  done
fi

# ------------------------------------------------------------ the table
run "$INFO" "$D/i4.npy" "$D/scalar.npy" "$D/empty.npy"
expect_ok "table"
pycheck "table: header, one row per tensor, %.6g numbers, - for no finite value" '
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()]
d = sys.argv[2]
assert rows[0] == ["input", "tensor", "dtype", "shape", "bytes", "min", "max", "mean", "std", "nan", "inf"], rows[0]
a = np.arange(-10, 14).reshape(2, 3, 4)
want = [[d + "/i4.npy", "0", "int32", "[2,", "3,", "4]", "96", "-10", "13", "1.5", "%.6g" % a.std(), "0", "0"],
        [d + "/scalar.npy", "0", "float64", "[]", "8", "-2.5", "-2.5", "-2.5", "0", "0", "0"],
        [d + "/empty.npy", "0", "float32", "[0,", "3]", "0", "-", "-", "-", "-", "0", "0"]]
assert rows[1:] == want, rows[1:]
' "$T/out" "$D"
# Columns line up: every row is as wide as the header puts the last column.
pycheck "table: columns are aligned" '
lines = open(sys.argv[1]).read().splitlines()
col = lines[0].index("inf")
for l in lines[1:]:
    assert len(l) >= col and l[col - 2:col] == "  " and l[col] != " ", (l, col)
' "$T/out"
run "$INFO" "$D/model.safetensors"
expect_ok "table of a safetensors file"
pycheck "table names the tensors of a container" '
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()]
assert [r[1] for r in rows[1:]] == ["enc.weight", "enc.idx", "img", "half"], rows
' "$T/out"
run "$INFO" "$D/stream.npy"
expect_ok "table of a stream"
pycheck "table numbers a stream's tensors 0, 1, 2" '
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()]
assert [r[1] for r in rows[1:]] == ["0", "1", "2"] and [r[2] for r in rows[1:]] == ["float32", "int16", "float64"], rows
' "$T/out"

# ------------------------------------------------------------ stdin and pipes
run "$INFO" --json "$D/stream.npy"
cp "$T/out" "$T/ref_stream.json"
for how in "cat $D/stream.npy | $INFO --json" "cat $D/stream.npy | $INFO --json -" \
           "$INFO --json < $D/stream.npy" "$INFO --json - < $D/stream.npy"; do
  run_sh "$how"
  expect_ok "$how"
  pycheck "$how: same as the file, input named <stdin>" '
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert len(a) == len(b) == 3
for x, y in zip(a, b):
    assert y["input"] == "<stdin>", y["input"]
    x.pop("input"); y.pop("input")
    assert x == y, (x, y)
' "$T/ref_stream.json" "$T/out"
done
run_sh "cat $D/f4.npy $D/i1.npy | $INFO --json - $D/u1.npy"
expect_ok "stdin and a file together"
pycheck "stdin and a file together: 3 rows in order" '
g = json.load(open(sys.argv[1]))
assert [(x["input"].split("/")[-1], x["index"], x["dtype"]) for x in g] == [("<stdin>", 0, "float32"), ("<stdin>", 1, "int8"), ("u1.npy", 0, "uint8")], g
' "$T/out"
run_sh "cat $D/model.safetensors | $INFO --json"
expect_ok "safetensors from a pipe"
pycheck "safetensors from a pipe: 4 named tensors" '
g = json.load(open(sys.argv[1])); assert [x["name"] for x in g] == ["enc.weight", "enc.idx", "img", "half"], g
' "$T/out"
run_sh "cat $D/bundle.npz | $INFO --json"
expect_ok "npz from a pipe"
run_sh "printf '1 2\n3 4\n' | $INFO --json"
expect_ok "text from a pipe"
pycheck "text from a pipe: int64 [2,2]" '
g = json.load(open(sys.argv[1]))[0]; assert g["dtype"] == "int64" and g["shape"] == [2, 2] and g["mean"] == 2.5, g
' "$T/out"
# The same tensor twice in a stream from a pipe, bigger than a pipe buffer.
py 'np.save(sys.argv[1], np.arange(300000, dtype=np.float32))' "$D/big.npy"
run_sh "cat $D/big.npy $D/big.npy | $INFO --json"
expect_ok "big stream from a pipe"
pycheck "big stream from a pipe: two tensors with exact stats" '
g = json.load(open(sys.argv[1])); a = np.arange(300000, dtype=np.float64)
assert len(g) == 2
for x in g:
    assert x["min"] == 0 and x["max"] == 299999 and abs(x["mean"] - a.mean()) < 1e-6 * a.mean() and abs(x["std"] - a.std()) < 1e-6 * a.std(), x
' "$T/out"

# ------------------------------------------------------------ output options
O=$(freshdir o)
run "$INFO" "$D/f4.npy" "$D/i1.npy" -o "$O/info.json"
expect_ok "-o info.json"
[ ! -s "$T/out" ] && pass || fail "-o info.json: stdout not empty"
pycheck "-o x.json writes JSON (as --json)" 'g = json.load(open(sys.argv[1])); assert len(g) == 2' "$O/info.json"
run "$INFO" --json "$D/f4.npy" "$D/i1.npy"
cmp -s "$T/out" "$O/info.json" && pass || fail "-o info.json differs from --json on stdout"
run "$INFO" --to json "$D/f4.npy" "$D/i1.npy"
cmp -s "$T/out" "$O/info.json" && pass || fail "--to json differs from --json"
run "$INFO" --to txt "$D/f4.npy" "$D/i1.npy" -o "$O/info.json"
expect_ok "--to txt -o info.json"
head -n 1 "$O/info.json" | grep -q '^input  *tensor' && pass || fail "--to txt wins over the .json extension"
run "$INFO" "$D/f4.npy" -o "$O/info.txt"
expect_ok "-o info.txt"
run "$INFO" "$D/f4.npy"
cmp -s "$T/out" "$O/info.txt" && pass || fail "-o info.txt differs from the table on stdout"
run "$INFO" "$D/f4.npy" -o -
cmp -s "$T/out" "$O/info.txt" && pass || fail "-o - is stdout"
run "$INFO" --output "$O/long.txt" "$D/f4.npy"
expect_ok "--output FILE"
cmp -s "$O/long.txt" "$O/info.txt" && pass || fail "--output FILE is -o FILE"
left=("$O"/.*nnkit*)
[ ! -e "${left[0]}" ] && pass || fail "-o left a temporary behind: ${left[*]}"
# Permissions of a created file follow the umask, as a plain create would.
(umask 022 && "$INFO" "$D/f4.npy" -o "$O/perm.txt")
[ "$(stat -c %a "$O/perm.txt")" = 644 ] && pass || fail "-o file mode $(stat -c %a "$O/perm.txt"), want 644 under umask 022"
# Replacing an existing file.
printf 'old\n' >"$O/info.txt"
run "$INFO" "$D/i1.npy" -o "$O/info.txt"
expect_ok "-o over an existing file"
grep -q int8 "$O/info.txt" && pass || fail "-o over an existing file did not replace it"
# -q and --threads change nothing in the result.
run "$INFO" --json "$D/f8.npy"
cp "$T/out" "$T/ref.json"
for opts in "-q" "--quiet" "--threads 1" "--threads 3" "--threads 0" "-q --threads 2"; do
  # shellcheck disable=SC2086
  run "$INFO" $opts --json "$D/f8.npy"
  expect_ok "$opts"
  cmp -s "$T/out" "$T/ref.json" && pass || fail "$opts changes the output"
done

# Every output format the help lists for --to is one the tool writes.
expect_to_formats tensor-info "$BAD/good.png"

# ------------------------------------------------------------ bad options
bad_option tensor-info 64 "--bogus" --bogus "$D/f4.npy"
bad_option tensor-info 64 "threads" --threads -1 "$D/f4.npy"
bad_option tensor-info 64 "threads" --threads x "$D/f4.npy"
bad_option tensor-info 64 "threads" --threads "$D/f4.npy"
bad_option tensor-info 64 "npy" --to npy "$D/f4.npy"
bad_option tensor-info 64 "png" --to png "$D/f4.npy"
bad_option tensor-info 64 "json" --json=yes "$D/f4.npy"
bad_option tensor-info 64 "" --to "$D/f4.npy"
bad_option tensor-info 64 "" -x "$D/f4.npy"
# An unknown option wins over a missing input.
run "$INFO" --bogus /nonexistent/x.npy
expect_error 64 "bogus" "--bogus with a missing input"
# A failing input after good ones leaves nothing, whatever came before.
run "$INFO" "$D/f4.npy" /nonexistent/x.npy -o "$O/partial.json"
expect_error 66 "/nonexistent/x.npy" "good input then a missing one"
[ ! -e "$O/partial.json" ] && pass || fail "good input then a missing one: output left behind"

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix tensor-info info.json
bad_input_matrix tensor-info info.txt "$D/f4.npy"
bad_output_matrix tensor-info "$D/f4.npy" "$D/many.npy"

finish
