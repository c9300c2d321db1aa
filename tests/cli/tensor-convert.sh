#!/usr/bin/env bash
# tensor-convert end to end: every format in and out, --dtype casts against
# numpy's astype (and the refusals), --reshape against numpy's reshape, --key and
# --names with safetensors read back by a reader written from the spec, text
# output, stdin and pipes, SIGINT/SIGTERM during work, and the bad-input and
# bad-output matrices.
TOOL=tensor-convert
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
CONV=$(bin tensor-convert)
D=$T/in
mkdir -p "$D"
shopt -s nullglob

# ------------------------------------------------------------ --help, options
expect_help_version tensor-convert --key --dtype --reshape --names --precision \
  --help --version --output --to --quiet --threads

# ------------------------------------------------------------ inputs
py '
d = sys.argv[1]
rng = np.random.default_rng(11)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
# sources for the cast matrix
save("c_f8_mixed", np.array([-128.9, -1.7, -0.2, -0.0, 0.0, 0.5, 1.7, 127.9]))
save("c_f8_pos", np.array([0.0, 0.9, 1.5, 254.99, 255.5]))
save("c_f8_wide", np.array([-1e10, 3.5e9, 65504.0, 70000.0, 1e-8]))
save("c_f4_nan", np.array([1.0, np.nan], dtype=np.float32))
save("c_f4_inf", np.array([1.0, -np.inf], dtype=np.float32))
save("c_f4_small", np.array([[0.25, -3.75], [100.5, 7.0]], dtype=np.float32))
save("c_f2", np.array([0.5, -2.5, 65504, 1e-4], dtype=np.float16))
save("c_i8_big", np.array([-2**40, 2**40, 2**62, -2**63], dtype=np.int64))
save("s_i8_small", np.array([0, 1, 100, 127], dtype=np.int64))
save("c_u8_max", np.array([2**64 - 1, 0, 2**63], dtype=np.uint64))
save("c_i1", np.array([-128, 127, 0, -1], dtype=np.int8))
save("c_u2", np.array([0, 65535, 300], dtype=np.uint16))
save("c_i4_exact", np.array([2**24 + 1, -2**31, 2**31 - 1], dtype=np.int32))
save("c_b1", np.array([True, False, True]))
save("c_be_i2", np.array([-2, 300, 1], dtype=">i2"))
save("fortran_f8", np.asfortranarray(np.arange(12.0).reshape(3, 4) - 5.5))
# text round trips
save("t_f4", rng.normal(0, 1e3, (6, 5)).astype(np.float32) * np.float32(10.0) ** rng.integers(-20, 20, (6, 5)).astype(np.float32))
save("t_f8", rng.normal(0, 1, (4, 4)) * 10.0 ** rng.integers(-200, 200, (4, 4)))
save("t_f2", np.array([[0.1, -65504, 6e-8], [np.nan, np.inf, -np.inf]], dtype=np.float16))
save("t_special", np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4028235e38], dtype=np.float32))
save("t_i8", np.array([[-2**63, 2**63 - 1], [0, -1]], dtype=np.int64))
save("t_u8", np.array([2**64 - 1, 0, 12345678901234567890], dtype=np.uint64))
save("t_i2", np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 12)
save("t_b1", np.array([[True, False], [False, True]]))
save("t_scalar", np.float32(-0.375))
save("t_row", np.array([1.25, 2.0, -3.5], dtype=np.float32))
save("t_empty", np.zeros((0, 3), dtype=np.float32))
save("t_u1img", (np.arange(5 * 7 * 3) * 7 % 256).astype(np.uint8).reshape(5, 7, 3))
save("t_u2img", (np.arange(4 * 6 * 2) * 1361 % 65536).astype(np.uint16).reshape(4, 6, 2))
save("t_gray", np.arange(12, dtype=np.uint8).reshape(3, 4))
save("t_rgba", rng.integers(0, 256, (3, 2, 4)).astype(np.uint8))
save("t_f4img", np.ones((3, 4, 3), dtype=np.float32))
save("r_24", np.arange(24, dtype=np.float32))
save("big", rng.random(300000).astype(np.float32))
with open(os.path.join(d, "stream.npy"), "wb") as f:
    np.save(f, np.arange(6, dtype=np.float32).reshape(2, 3))
    np.save(f, np.array([[1, 2], [3, 4]], dtype=np.int16))
    np.save(f, np.float64(7.5))
with open(os.path.join(d, "table.csv"), "w") as f:
    f.write("# weights\n1.5,2,3\n\n4,5,-6e2\n")
with open(os.path.join(d, "ints.txt"), "w") as f:
    f.write("1 2 3\n4 5 6\n")
with open(os.path.join(d, "crlf.csv"), "wb") as f:
    f.write(b"1,2\r\n3,4\r\n")
np.savez(os.path.join(d, "bundle.npz"), alpha=np.arange(5.0), beta=np.eye(3, dtype=np.float32))
# The plan of the cast matrix: for each source and target, whether the cast
# is allowed (integers: finite and in range after truncation toward zero).
plan = []
targets = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32", "float64"]
for f in sorted(os.listdir(d)):
    if not f.startswith("c_"): continue
    a = np.load(os.path.join(d, f))
    for t in targets:
        dt = np.dtype(t)
        ok = True
        if dt.kind in "iu":
            info = np.iinfo(dt)
            for v in a.ravel().tolist():
                v = float(v) if a.dtype.kind == "f" else int(v)
                if a.dtype.kind == "f":
                    if v != v or v in (float("inf"), float("-inf")): ok = False; break
                    v = int(v)  # truncation toward zero
                if not (info.min <= v <= info.max): ok = False; break
        plan.append("%s %s %d\n" % (f[:-4], t, 0 if ok else 65))
open(os.path.join(d, "plan"), "w").write("".join(plan))
' "$D"
make_bad_inputs

# A safetensors reader written from the published format, a PNG decoder for
# 8/16-bit non-interlaced images, and the npy header, for the checks.
PYPRELUDE='
import struct, zlib
ST_CODES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
            "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = hdr.pop("__metadata__", None)
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in hdr.items())
    pos = 0
    for b, e, k in spans:
        assert b == pos, ("gap or overlap before", k, b, pos)
        pos = e
    assert pos == len(data), ("data size", pos, len(data))
    out = []
    for b, e, k in spans:
        v = hdr[k]
        a = np.frombuffer(data[b:e], dtype=ST_CODES[v["dtype"]])
        assert a.size == int(np.prod(v["shape"])), (k, a.size, v["shape"])
        out.append((k, a.reshape(v["shape"])))
    return meta, out

def read_png(path):
    raw = open(path, "rb").read()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "signature"
    pos, idat, ihdr, end = 8, b"", None, False
    while pos < len(raw):
        n = struct.unpack(">I", raw[pos:pos + 4])[0]
        kind, body = raw[pos + 4:pos + 8], raw[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", raw[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(kind + body) & 0xffffffff, ("crc", kind)
        if kind == b"IHDR": ihdr = struct.unpack(">IIBBBBB", body)
        if kind == b"IDAT": idat += body
        if kind == b"IEND": end = True
        pos += 12 + n
    assert end, "no IEND"
    w, h, depth, ctype, _, _, interlace = ihdr
    assert interlace == 0
    ch = {0: 1, 4: 2, 2: 3, 6: 4}[ctype]
    bpp = ch * depth // 8
    stride = w * bpp
    buf = zlib.decompress(idat)
    rows, prev = [], bytearray(stride)
    for r in range(h):
        f, line = buf[r * (stride + 1)], bytearray(buf[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = line
    dt = np.uint8 if depth == 8 else np.dtype(">u2")
    return np.frombuffer(b"".join(rows), dtype=dt).reshape(h, w, ch).astype(np.uint8 if depth == 8 else np.uint16)

def npy_header(path):
    raw = open(path, "rb").read(512)
    assert raw[:6] == b"\x93NUMPY", "magic"
    n = struct.unpack("<H", raw[8:10])[0]
    return (raw[6], raw[7]), raw[10:10 + n].decode("latin1"), 10 + n

def load_stream(path):
    import io
    raw = open(path, "rb").read()
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append(np.load(f))
    return out

def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.dtype.kind == "f":
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b)), (a, b)
    else:
        assert np.array_equal(a, b), (a, b)
'

O=$(freshdir o)

# ------------------------------------------------------------ --dtype vs numpy astype
# The plan: for each source and target, whether numpy's astype is exact enough
# to be allowed (integers: finite and in range after truncation toward zero).
mapfile -t PLAN <"$D/plan"
# Casts that fit: one run per target over a stream of all its sources.
declare -A OKSRC=()
for line in "${PLAN[@]}"; do
  read -r src tgt want <<<"$line"
  if [ "$want" -eq 0 ]; then
    OKSRC[$tgt]="${OKSRC[$tgt]:-} $src"
  else
    # Casts that do not fit: each refused on its own, leaving nothing.
    run "$CONV" --dtype "$tgt" "$D/$src.npy" -o "$O/cast.npy"
    expect_error 65 "$tgt" "--dtype $tgt $src (does not fit)"
    expect_empty_dir "$O" "--dtype $tgt $src (does not fit)"
  fi
done
for tgt in "${!OKSRC[@]}"; do
  srcs=()
  for src in ${OKSRC[$tgt]}; do srcs+=("$D/$src.npy"); done
  cat "${srcs[@]}" >"$O/cast-in.npy"
  run "$CONV" --dtype "$tgt" "$O/cast-in.npy" -o "$O/cast.npy"
  expect_ok "--dtype $tgt of ${OKSRC[$tgt]}"
  pycheck "--dtype $tgt equals numpy astype for${OKSRC[$tgt]}" '
out = load_stream(sys.argv[1]); tgt = sys.argv[2]; srcs = sys.argv[3:]
assert len(out) == len(srcs), (len(out), len(srcs))
for b, src in zip(out, srcs):
    a = np.load(src)
    try:
        same(b, a.astype(tgt))
    except AssertionError as e:
        raise AssertionError("%s: %s" % (os.path.basename(src), e))
' "$O/cast.npy" "$tgt" "${srcs[@]}"
  rm -f "$O/cast.npy" "$O/cast-in.npy"
done
rm -f "$O/cast.npy"
# NaN and Inf are named as such in the refusal.
run "$CONV" --dtype int32 "$D/c_f4_nan.npy" -o "$O/x.npy"
expect_error 65 "nan" "--dtype int32 of NaN"
run "$CONV" -d int64 "$D/c_f4_inf.npy" -o "$O/x.npy"
expect_error 65 "inf" "-d int64 of -Inf"
expect_empty_dir "$O" "-d int64 of -Inf"
# Short codes are the same dtypes.
for pair in b1:bool i1:int8 u1:uint8 i2:int16 u2:uint16 i4:int32 u4:uint32 i8:int64 u8:uint64 f2:float16 f4:float32 f8:float64; do
  run "$CONV" -d "${pair%%:*}" "$D/s_i8_small.npy" -o "$O/short.npy"
  expect_ok "-d ${pair%%:*}"
  run "$CONV" -d "${pair##*:}" "$D/s_i8_small.npy" -o "$O/long.npy"
  expect_file_eq "$O/short.npy" "$O/long.npy" "-d ${pair%%:*} is -d ${pair##*:}"
done
rm -f "$O"/*

# ------------------------------------------------------------ npy output is what numpy writes
for f in c_be_i2 fortran_f8 t_scalar t_empty t_i2 stream; do
  run "$CONV" "$D/$f.npy" -o "$O/$f.npy"
  expect_ok "npy to npy: $f"
  pycheck "npy to npy: $f gives the same values, version 1.0, little-endian, C order" '
a, b = load_stream(sys.argv[1]), load_stream(sys.argv[2])
assert len(a) == len(b)
for x, y in zip(a, b):
    same(y, x.astype(x.dtype.newbyteorder("=")))
ver, hdr, n = npy_header(sys.argv[2])
assert ver == (1, 0), ver
assert n % 64 == 0, ("data not 64-byte aligned", n)
h = eval(hdr)
assert h["fortran_order"] is False and h["descr"][0] in "<|", h
' "$D/$f.npy" "$O/$f.npy"
done
# A big array through pipes, byte for byte.
run_sh "cat $D/big.npy | $CONV | $CONV - --to npy | cat"
expect_ok "a big array through two pipes"
pycheck "a big array through two pipes is unchanged" 'same(np.load(sys.argv[2]), np.load(sys.argv[1]))' "$D/big.npy" "$T/out"

# ------------------------------------------------------------ --reshape vs numpy
for spec in "4,6" "2,-1" "-1" "2,3,4" "-1,2,2,3" "1,24" "24,1,1" "2,2,2,3"; do
  run "$CONV" --reshape "$spec" "$D/r_24.npy" -o "$O/r.npy"
  expect_ok "--reshape $spec"
  pycheck "--reshape $spec equals numpy reshape" '
same(np.load(sys.argv[2]), np.load(sys.argv[1]).reshape([int(v) for v in sys.argv[3].split(",")]))
' "$D/r_24.npy" "$O/r.npy" "$spec"
done
run "$CONV" -r 3,-1 "$D/fortran_f8.npy" -o "$O/r.npy"
expect_ok "-r of a Fortran-order array"
pycheck "-r of a Fortran-order array reshapes in C order, as numpy" '
same(np.load(sys.argv[2]), np.load(sys.argv[1]).reshape(3, -1))' "$D/fortran_f8.npy" "$O/r.npy"
run "$CONV" -r 1 "$D/t_scalar.npy" -o "$O/r.npy"
expect_ok "-r 1 of a 0-d array"
pycheck "-r 1 of a 0-d array" 'same(np.load(sys.argv[2]), np.load(sys.argv[1]).reshape(1))' "$D/t_scalar.npy" "$O/r.npy"
run "$CONV" -r 3,0,2 "$D/t_empty.npy" -o "$O/r.npy"
expect_ok "-r 3,0,2 of an empty array"
pycheck "-r 3,0,2 of an empty array" '
same(np.load(sys.argv[2]), np.load(sys.argv[1]).reshape(3, 0, 2))' "$D/t_empty.npy" "$O/r.npy"
run "$CONV" -r 0,-1 "$D/t_empty.npy" -o "$O/r.npy"
expect_error 64 "" "-r 0,-1 of an empty array (numpy refuses it too)"
# --dtype with --reshape: both apply to every tensor of a stream.
run "$CONV" -d int32 -r -1 "$D/stream.npy" -o "$O/r.npy"
expect_ok "-d int32 -r -1 of a stream"
pycheck "-d int32 -r -1 of a stream: every tensor" '
a, b = load_stream(sys.argv[1]), load_stream(sys.argv[2])
assert len(b) == 3
for x, y in zip(a, b):
    same(y, x.astype(np.int32).reshape(-1))
' "$D/stream.npy" "$O/r.npy"
rm -f "$O"/*
for spec in "5,5" "2,-1,-1" "x" "" "2,,3" "-2,-12" "2,3.5" "0,-1" "99999999999999999999" "--" ","; do
  bad_option tensor-convert 64 "" --reshape="$spec" "$D/r_24.npy"
done

# ------------------------------------------------------------ text, csv, json output
for f in t_f4 t_f8 t_f2 t_special t_i8 t_u8 t_i2 t_b1 t_scalar t_row c_f4_small; do
  for fmt in txt csv; do
    run "$CONV" "$D/$f.npy" --to "$fmt"
    expect_ok "--to $fmt $f"
    pycheck "--to $fmt $f: values round-trip exactly (the fewest digits that do)" '
a = np.load(sys.argv[1]); fmt = sys.argv[3]
lines = [l for l in open(sys.argv[2]).read().splitlines()]
body = [l for l in lines if not l.startswith("#")]
sep = "," if fmt == "csv" else " "
rows = [l.split(sep) for l in body]
assert all(len(r) == len(rows[0]) for r in rows), rows
if a.ndim > 2:
    assert lines[0] == "# shape: " + ",".join(map(str, a.shape)), lines[0]
flat = [v for r in rows for v in r]
assert len(flat) == a.size, (len(flat), a.size)
want = a.ravel()
for s, v in zip(flat, want.tolist()):
    assert s == s.strip() and s != "", repr(s)
    if a.dtype.kind == "f":
        got = a.dtype.type(float(s))
        assert (got == v and np.signbit(got) == np.signbit(v)) or (np.isnan(got) and np.isnan(v)), (s, v)
        # the fewest digits that round-trip: no more than the shortest repr of numpy
        if np.isfinite(v) and v != 0:
            def digits(t):
                m = t.lower().lstrip("+-").split("e")[0].replace(".", "").lstrip("0").rstrip("0")
                return max(len(m), 1)
            shortest = np.format_float_scientific(a.dtype.type(v), unique=True)
            # (an integer written out in full is exact, and fine too)
            exact_int = float(s) == float(v) and s.rstrip("0").rstrip(".").lstrip("-").isdigit()
            assert digits(s) <= digits(shortest) or exact_int, (s, shortest)
    elif a.dtype.kind == "b":
        assert s in ("0", "1") and int(s) == int(v), (s, v)
    else:
        assert int(s) == v, (s, v)
# each row of a 2-D array is one line
if a.ndim == 2:
    assert len(rows) == a.shape[0] and len(rows[0]) == a.shape[1], (len(rows), a.shape)
if a.ndim <= 1:
    assert len(rows) == 1, rows
' "$D/$f.npy" "$T/out" "$fmt"
  done
done
# Exact text for small cases.
run "$CONV" "$D/t_i2.npy" --to csv
expect_stdout_eq "# shape: 2,3,4
-12,-11,-10,-9
-8,-7,-6,-5
-4,-3,-2,-1
0,1,2,3
4,5,6,7
8,9,10,11" "--to csv of int16 [2,3,4]"
run "$CONV" "$D/t_row.npy" --to txt
expect_stdout_eq "1.25 2.0 -3.5" "--to txt of a row"
run "$CONV" "$D/t_b1.npy" --to txt
expect_stdout_eq "1 0
0 1" "--to txt of bool"
run "$CONV" "$D/t_i8.npy" -o "$O/x.txt"
expect_ok "-o x.txt"
cp "$O/x.txt" "$T/out"
expect_stdout_eq "-9223372036854775808 9223372036854775807
0 -1" "-o x.txt of int64 extremes"
run "$CONV" "$D/t_u8.npy" -o "$O/x.csv"
cp "$O/x.csv" "$T/out"
expect_stdout_eq "18446744073709551615,0,12345678901234567890" "-o x.csv of uint64"
# --precision P: values are those of P significant digits.
for p in 1 2 3 6 9; do
  run "$CONV" --precision "$p" "$D/t_f8.npy" --to txt
  expect_ok "--precision $p"
  pycheck "--precision $p gives $p significant digits" '
a = np.load(sys.argv[1]); p = int(sys.argv[3])
vals = [float(s) for l in open(sys.argv[2]).read().splitlines() if not l.startswith("#") for s in l.split()]
for s, v in zip(vals, a.ravel().tolist()):
    assert s == float("%.*g" % (p, v)), (s, v, "%.*g" % (p, v))
' "$D/t_f8.npy" "$T/out" "$p"
done
run "$CONV" --precision 3 "$D/t_i8.npy" --to txt
expect_stdout_eq "-9223372036854775808 9223372036854775807
0 -1" "--precision does not round integers"
bad_option tensor-convert 64 "precision" --precision -2 --to txt "$D/t_f8.npy"
bad_option tensor-convert 64 "precision" --precision x --to txt "$D/t_f8.npy"
# Text input back to tensors: float32 by default, int64 for integer text.
run "$CONV" "$D/t_f4.npy" -o "$O/f4.txt"
run "$CONV" "$O/f4.txt" -o "$O/back.npy"
expect_ok "txt back to npy"
pycheck "txt back to npy: the same float32 values" 'same(np.load(sys.argv[2]), np.load(sys.argv[1]))' "$D/t_f4.npy" "$O/back.npy"
run "$CONV" "$D/t_i2.npy" -o "$O/i2.csv"
run_sh "cat $O/i2.csv | $CONV -o $O/back.npy"
expect_ok "csv of rank 3 back to npy from a pipe"
pycheck "csv of rank 3 back: int64, shape from the # shape line" '
same(np.load(sys.argv[2]), np.load(sys.argv[1]).astype(np.int64))' "$D/t_i2.npy" "$O/back.npy"
run "$CONV" "$D/table.csv" -o "$O/t.npy"
expect_ok "csv with comments and a blank line"
pycheck "csv with comments: float32 [2,3]" '
same(np.load(sys.argv[1]), np.array([[1.5, 2, 3], [4, 5, -600]], dtype=np.float32))' "$O/t.npy"
run "$CONV" "$D/ints.txt" --dtype float64 -o "$O/t.npy"
expect_ok "integer txt --dtype float64"
pycheck "integer txt --dtype float64" 'same(np.load(sys.argv[1]), np.arange(1.0, 7.0).reshape(2, 3))' "$O/t.npy"
run "$CONV" "$D/crlf.csv" -o "$O/t.npy"
expect_ok "csv with CRLF line ends"
pycheck "csv with CRLF" 'same(np.load(sys.argv[1]), np.array([[1, 2], [3, 4]], dtype=np.int64))' "$O/t.npy"
# Committed text fixtures with their expected arrays (NAME.f4.npy / NAME.i8.npy).
if [ -n "$NNKIT_FIXTURES" ] && [ -d "$NNKIT_FIXTURES/text" ]; then
  for f in "$NNKIT_FIXTURES"/text/*.txt "$NNKIT_FIXTURES"/text/*.csv; do
    stem=${f%.*}
    for want in "$stem".f4.npy "$stem".i8.npy; do
      [ -f "$want" ] || continue
      run "$CONV" "$f" -o "$O/fx.npy"
      expect_ok "text fixture $(basename "$f")"
      pycheck "text fixture $(basename "$f") reads as $(basename "$want")" 'same(np.load(sys.argv[2]), np.load(sys.argv[1]))' "$want" "$O/fx.npy"
    done
  done
fi
# JSON: nested lists; NaN and Inf are null (JSON has neither).
for f in t_f4 t_i2 t_scalar t_empty t_b1 t_special; do
  run "$CONV" "$D/$f.npy" --to json
  expect_ok "--to json $f"
  pycheck "--to json $f: nested lists with numpy values" '
a = np.load(sys.argv[1]); g = json.load(open(sys.argv[2]))
def conv(x):
    if isinstance(x, list): return [conv(y) for y in x]
    if isinstance(x, float) and not np.isfinite(x): return None
    return x
want = conv(a.tolist())
def eq(x, y):
    if isinstance(y, list): return isinstance(x, list) and len(x) == len(y) and all(eq(p, q) for p, q in zip(x, y))
    if y is None or isinstance(y, bool): return x == y or (isinstance(y, bool) and x == int(y))
    if a.dtype.kind == "f": return a.dtype.type(x) == a.dtype.type(y)
    return x == y
assert eq(g, want), (g, want)
' "$D/$f.npy" "$T/out"
done
run "$CONV" "$D/stream.npy" -o "$O/s.json"
expect_ok "-o x.json of a stream"
pycheck "-o x.json of a stream: an object of the tensors by index" '
g = json.load(open(sys.argv[1])); assert set(g) == {"0", "1", "2"}, g; assert g["2"] == 7.5 and g["1"] == [[1, 2], [3, 4]], g' "$O/s.json"
rm -f "$O"/*

# ------------------------------------------------------------ PNG output and input
for f in t_u1img t_u2img t_gray t_rgba; do
  run "$CONV" "$D/$f.npy" -o "$O/$f.png"
  expect_ok "-o x.png of $f"
  pycheck "-o x.png of $f: a valid PNG with the pixels" '
a = np.load(sys.argv[1])
if a.ndim == 2: a = a[:, :, None]
same(read_png(sys.argv[2]), a)' "$D/$f.npy" "$O/$f.png"
  run "$CONV" "$O/$f.png" -o "$O/$f.back.npy"
  expect_ok "PNG of $f back to npy"
  pycheck "PNG of $f back to npy as [H,W,C]" '
a = np.load(sys.argv[1])
if a.ndim == 2: a = a[:, :, None]
same(np.load(sys.argv[2]), a)' "$D/$f.npy" "$O/$f.back.npy"
done
run "$CONV" --dtype uint8 "$D/t_f4img.npy" --to png
expect_ok "--dtype uint8 --to png of float32 (the help's example)"
pycheck "--dtype uint8 --to png of float32" 'same(read_png(sys.argv[1]), np.ones((3, 4, 3), np.uint8))' "$T/out"
rm -f "$O"/*
bad_option tensor-convert 64 "png" "$D/t_f4img.npy" --to png
bad_option tensor-convert 64 "png" "$D/stream.npy" --to png
bad_option tensor-convert 64 "png" "$D/r_24.npy" --dtype uint8 --reshape 1,4,6 --to png
# Committed PNG fixtures with their expected arrays.
if [ -n "$NNKIT_FIXTURES" ] && [ -d "$NNKIT_FIXTURES/png" ]; then
  for f in "$NNKIT_FIXTURES"/png/*.png; do
    [ -f "${f%.png}.npy" ] || continue
    run "$CONV" "$f" -o "$O/fx.npy"
    expect_ok "PNG fixture $(basename "$f")"
    pycheck "PNG fixture $(basename "$f") reads as its .npy" 'same(np.load(sys.argv[2]), np.load(sys.argv[1]))' "${f%.png}.npy" "$O/fx.npy"
  done
fi

# ------------------------------------------------------------ safetensors, --key, --names
run "$CONV" "$D/stream.npy" -o "$O/s.safetensors"
expect_ok "stream to safetensors"
pycheck "stream to safetensors: tensors named 0, 1, 2 with the data" '
meta, t = read_st(sys.argv[2]); a = load_stream(sys.argv[1])
assert [k for k, _ in t] == ["0", "1", "2"], [k for k, _ in t]
for (k, y), x in zip(t, a): same(y, x)' "$D/stream.npy" "$O/s.safetensors"
run "$CONV" "$D/stream.npy" --names enc.weight,enc.idx,scale --to safetensors -o "$O/n.safetensors"
expect_ok "--names"
pycheck "--names: the names, in order, with the data" '
meta, t = read_st(sys.argv[2]); a = load_stream(sys.argv[1])
assert [k for k, _ in t] == ["enc.weight", "enc.idx", "scale"], [k for k, _ in t]
for (k, y), x in zip(t, a): same(y, x)' "$D/stream.npy" "$O/n.safetensors"
run "$CONV" "$O/n.safetensors" --key scale,enc.weight -o "$O/k.npy"
expect_ok "--key two names"
pycheck "--key: the tensors in the order given" '
b = load_stream(sys.argv[2]); a = load_stream(sys.argv[1])
assert len(b) == 2; same(b[0], a[2]); same(b[1], a[0])' "$D/stream.npy" "$O/k.npy"
run "$CONV" "$O/n.safetensors" -k enc.idx --names renamed -o "$O/k.safetensors"
expect_ok "-k with --names"
pycheck "-k with --names renames the kept tensor" '
meta, t = read_st(sys.argv[2]); a = load_stream(sys.argv[1])
assert [k for k, _ in t] == ["renamed"]; same(t[0][1], a[1])' "$D/stream.npy" "$O/k.safetensors"
run "$CONV" "$D/stream.npy" --key 1 --to txt
expect_stdout_eq "1 2
3 4" "--key 1 of a stream"
run "$CONV" "$D/bundle.npz" --key beta -o "$O/beta.npy"
expect_ok "--key of an npz"
pycheck "--key of an npz" 'same(np.load(sys.argv[2]), np.load(sys.argv[1])["beta"])' "$D/bundle.npz" "$O/beta.npy"
run "$CONV" "$D/bundle.npz" -o "$O/b.safetensors"
expect_ok "npz to safetensors"
pycheck "npz to safetensors keeps the names" '
meta, t = read_st(sys.argv[2]); z = np.load(sys.argv[1])
assert sorted(k for k, _ in t) == ["alpha", "beta"], t
for k, y in t: same(y, z[k])' "$D/bundle.npz" "$O/b.safetensors"
run_sh "cat $O/b.safetensors | $CONV --key alpha - | $CONV --to txt"
expect_stdout_eq "0.0 1.0 2.0 3.0 4.0" "safetensors from a pipe, --key, to text"
run "$CONV" "$O/n.safetensors" --to npy
expect_ok "safetensors to an npy stream"
pycheck "safetensors to an npy stream, in file order" '
b = load_stream(sys.argv[2]); a = load_stream(sys.argv[1])
assert len(b) == 3
for x, y in zip(a, b): same(y, x)' "$D/stream.npy" "$T/out"
run "$CONV" "$D/t_f2.npy" -d float16 --names h -o "$O/h.safetensors"
expect_ok "float16 to safetensors"
pycheck "float16 to safetensors is F16" '
meta, t = read_st(sys.argv[2]); same(t[0][1], np.load(sys.argv[1]))' "$D/t_f2.npy" "$O/h.safetensors"
# Committed container fixtures: everything numpy/the spec reads, nnkit reads.
if [ -n "$NNKIT_FIXTURES" ] && [ -d "$NNKIT_FIXTURES/containers" ]; then
  for f in "$NNKIT_FIXTURES"/containers/savez*.npz; do
    run "$CONV" "$f" -o "$O/fx.safetensors"
    expect_ok "npz fixture $(basename "$f")"
    pycheck "npz fixture $(basename "$f") to safetensors keeps names and values" '
meta, t = read_st(sys.argv[2]); z = np.load(sys.argv[1])
assert sorted(k for k, _ in t) == sorted(z.files), ([k for k, _ in t], z.files)
for k, y in t: same(y, z[k].astype(z[k].dtype.newbyteorder("=")))' "$f" "$O/fx.safetensors"
  done
  f=$NNKIT_FIXTURES/containers/simple.safetensors
  if [ -f "$f" ]; then
    run "$CONV" "$f" -o "$O/fx.safetensors"
    expect_ok "safetensors fixture simple"
    pycheck "safetensors fixture simple round-trips" '
_, a = read_st(sys.argv[1]); _, b = read_st(sys.argv[2])
assert [k for k, _ in a] == [k for k, _ in b]
for (k, x), (_, y) in zip(a, b): same(y, x)' "$f" "$O/fx.safetensors"
  fi
fi
rm -f "$O"/*
bad_option tensor-convert 64 "nope" "$D/stream.npy" --key nope
bad_option tensor-convert 64 "names" "$D/stream.npy" --names a,b --to safetensors
bad_option tensor-convert 64 "" "$D/stream.npy" --names a,a,b --to safetensors
bad_option tensor-convert 64 "" "$D/stream.npy" --names a,b,c,d --to safetensors

# ------------------------------------------------------------ format selection, stdin
run "$CONV" "$D/table.csv"
expect_ok "text input to a pipe"
pycheck "text to a pipe is npy" 'same(np.load(sys.argv[1]), np.array([[1.5, 2, 3], [4, 5, -600]], dtype=np.float32))' "$T/out"
for how in "cat $D/table.csv | $CONV" "cat $D/table.csv | $CONV -" "$CONV < $D/table.csv" "$CONV - < $D/table.csv" \
           "$CONV $D/table.csv -o -" "$CONV $D/table.csv --output -" "$CONV $D/table.csv --to npy"; do
  run_sh "$how"
  expect_ok "$how"
  pycheck "$how: npy on stdout" 'same(np.load(sys.argv[1]), np.array([[1.5, 2, 3], [4, 5, -600]], dtype=np.float32))' "$T/out"
done
run_sh "$CONV $D/t_row.npy --to npy -o $O/x.txt"
expect_ok "--to npy wins over the .txt extension"
pycheck "--to npy wins over the extension" 'same(np.load(sys.argv[1]), np.array([1.25, 2, -3.5], np.float32))' "$O/x.txt"
run "$CONV" "$D/t_row.npy" --to text
expect_ok "--to text"
run "$CONV" "$D/t_row.npy" --to st -o "$O/y"
expect_ok "--to st"
pycheck "--to st is safetensors" '_, t = read_st(sys.argv[1]); assert t[0][0] == "0"' "$O/y"
rm -f "$O"/*
# On a terminal the output is text (script gives a pseudo-terminal).
if command -v script >/dev/null 2>&1; then
  run script -qec "$CONV $D/t_row.npy" /dev/null
  got=$(tr -d '\r' <"$T/out")
  [ "$got" = "1.25 2.0 -3.5" ] || [ "$got" = "1.25 2 -3.5" ] && pass || fail "text on a terminal: got '$got'"
fi
# -q and --threads do not change the result.
run "$CONV" "$D/t_f8.npy" --to txt
cp "$T/out" "$T/ref.txt"
for opts in "-q" "--quiet" "--threads 1" "--threads 2"; do
  # shellcheck disable=SC2086
  run "$CONV" $opts "$D/t_f8.npy" --to txt
  expect_ok "$opts"
  expect_file_eq "$T/out" "$T/ref.txt" "$opts does not change the output"
done

# Inputs are recognised by their first bytes, not by their names.
cp "$D/t_row.npy" "$O/looks.csv"
cp "$O/../in/stream.npy" "$O/looks.safetensors"
cp "$BAD/good.png" "$O/looks.npy"
cp "$D/table.csv" "$O/looks.png"
run "$CONV" "$O/looks.csv" --to txt
expect_stdout_eq "1.25 2.0 -3.5" "an npy file named .csv"
run "$CONV" "$O/looks.safetensors" --key 2 --to txt
expect_stdout_eq "7.5" "an npy stream named .safetensors"
run "$CONV" "$O/looks.npy" --to npy -o "$O/png.npy"
expect_ok "a PNG named .npy"
pycheck "a PNG named .npy reads as the image" 'same(np.load(sys.argv[1]), np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3))' "$O/png.npy"
run "$CONV" "$O/looks.png" --to csv
expect_stdout_eq "1.5,2.0,3.0
4.0,5.0,-600.0" "a csv file named .png"
rm -f "$O"/*

# ------------------------------------------------------------ bad options
bad_option tensor-convert 64 "complex" --dtype complex "$D/r_24.npy"
bad_option tensor-convert 64 "f3" -d f3 "$D/r_24.npy"
bad_option tensor-convert 64 "" --dtype "" "$D/r_24.npy"
bad_option tensor-convert 64 "bogus" --bogus "$D/r_24.npy"
bad_option tensor-convert 64 "" --to bogus "$D/r_24.npy"
bad_option tensor-convert 64 "npz" --to npz "$D/r_24.npy"
bad_option tensor-convert 64 "" "$D/r_24.npy" "$D/r_24.npy"
bad_option tensor-convert 64 "threads" --threads -1 "$D/r_24.npy"
bad_option tensor-convert 64 "" --dtype "$D/r_24.npy"
run "$CONV" "$D/r_24.npy" -o "$O/x.npz"
expect_error 64 "npz" "-o x.npz (npz is read only)"
expect_empty_dir "$O" "-o x.npz"
# Usage errors come before reading: a bad option with a missing input is 64.
run "$CONV" --dtype complex /nonexistent/x.npy
expect_error 64 "complex" "bad --dtype with a missing input"

# Every output format the help lists for --to is one the tool writes.
expect_to_formats tensor-convert "$BAD/good.png"

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix tensor-convert out.npy
BAD_ONLY='missing|adir|empty|trunc_data_half|trunc_header\.|garbage|huge_shape|st_offsets|png_crc|npz_trunc|text_word' \
  bad_input_matrix tensor-convert out.safetensors --dtype float64
py 'np.save(sys.argv[1], np.zeros(400000, np.float32))' "$D/bigout.npy"
bad_output_matrix tensor-convert "$D/r_24.npy" "$D/bigout.npy"
bad_output_matrix tensor-convert "$D/r_24.npy" "$D/bigout.npy" --to txt

# ------------------------------------------------------------ interrupted work
py 'np.save(sys.argv[1], np.random.default_rng(0).random((2000, 1000), dtype=np.float32))' "$D/huge.npy"
# (a) SIGINT while the input trickles in from a pipe.
mkfifo "$T/fifo"
for sig in INT TERM; do
  _empty_dir_now "$O"
  "$CONV" -o "$O/out.npy" <"$T/fifo" 2>"$T/err" &
  pid=$!
  exec 7>"$T/fifo"
  head -c 1000000 "$D/huge.npy" >&7
  sleep 0.15
  kill -s "$sig" "$pid"
  { wait "$pid"; } 2>/dev/null
  RC=$?
  exec 7>&-
  LAST_CMD="(head -c 1000000 huge.npy; sleep) | tensor-convert -o DIR/out.npy; kill -$sig"
  [ "$RC" -eq $((128 + $(kill -l "$sig"))) ] || [ "$RC" -eq 130 ] && pass || fail "$LAST_CMD: exit $RC, want death by SIG$sig"
  expect_empty_dir "$O" "$LAST_CMD"
done
# (b) A signal while the output is being written (its temporary exists).
# wait_for_temp PID: spins until a temporary appears beside DIR/out.txt.
wait_for_temp() {
  local t_end=$(( ${EPOCHREALTIME/./} + 5000000 )) tmp
  while [ "${EPOCHREALTIME/./}" -lt "$t_end" ]; do
    tmp=("$O"/.out.txt*)
    [ ${#tmp[@]} -gt 0 ] && return 0
    kill -0 "$1" 2>/dev/null || return 1
  done
  return 1
}
for sig in INT TERM HUP; do
  _empty_dir_now "$O"
  "$CONV" "$D/huge.npy" -o "$O/out.txt" 2>"$T/err" &
  pid=$!
  seen=0
  wait_for_temp "$pid" && seen=1
  # 20 ms later: well inside the write (about 40 MB of text), past any set-up.
  t_end=$(( ${EPOCHREALTIME/./} + 20000 ))
  while [ "${EPOCHREALTIME/./}" -lt "$t_end" ]; do :; done
  kill -s "$sig" "$pid" 2>/dev/null
  { wait "$pid"; } 2>/dev/null
  RC=$?
  LAST_CMD="tensor-convert huge.npy -o DIR/out.txt; kill -$sig while writing"
  if [ "$seen" -eq 1 ]; then
    pass
    [ "$RC" -ge 128 ] && pass || fail "$LAST_CMD: exit $RC, want death by SIG$sig"
    expect_empty_dir "$O" "$LAST_CMD"
  else
    fail "$LAST_CMD: no temporary beside the target was seen while writing (exit $RC)"
  fi
done
# (c) SIGINT the moment the temporary appears: no window may leave it behind.
left=0
for i in 1 2 3 4 5 6 7 8; do
  _empty_dir_now "$O"
  "$CONV" "$D/huge.npy" -o "$O/out.txt" 2>"$T/err" &
  pid=$!
  wait_for_temp "$pid"
  kill -s INT "$pid" 2>/dev/null
  { wait "$pid"; } 2>/dev/null
  tmp=("$O"/* "$O"/.[!.]*)
  [ ${#tmp[@]} -gt 0 ] && left=$((left + 1))
done
LAST_CMD="tensor-convert huge.npy -o DIR/out.txt; kill -INT as soon as the temporary exists (8 times)"
RC=0
[ "$left" -eq 0 ] && pass || fail "$LAST_CMD: a file was left behind $left times of 8"
_empty_dir_now "$O"

finish
