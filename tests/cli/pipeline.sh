#!/usr/bin/env bash
# Multi-tool pipelines, as users and job scripts write them: the tools read each
# other's output through pipes and `-`, values are checked by numpy, a failure
# in the middle of a pipe is reported once by the tool that failed, and the
# reader of a pipe going away ends every tool quietly.
TOOL=""
. "$(dirname "$0")/lib.sh"
INFO=$(bin tensor-info)
CONV=$(bin tensor-convert)
CAT=$(bin tensor-cat)
SPLIT=$(bin tensor-split)
D=$T/in
mkdir -p "$D"

py '
d = sys.argv[1]
rng = np.random.default_rng(3)
x = rng.normal(0, 10, (11, 4)).astype(np.float32)
np.save(os.path.join(d, "x_ref.npy"), x)
with open(os.path.join(d, "x.csv"), "w") as f:
    f.write("# eleven rows\n")
    for r in x:
        f.write(",".join(repr(float(v)) for v in r) + "\n")
np.save(os.path.join(d, "other.npy"), rng.normal(5, 1, (3, 4)).astype(np.float32))
np.save(os.path.join(d, "data.npy"), rng.random((1003, 5)).astype(np.float32))
np.save(os.path.join(d, "wide.npy"), rng.integers(-1000, 1000, (6, 9)).astype(np.int64))
np.save(os.path.join(d, "big.npy"), rng.random((500000, 4)).astype(np.float32))
np.save(os.path.join(d, "img.npy"), rng.random((8, 10, 3)).astype(np.float32) * 255)
with open(os.path.join(d, "stream.npy"), "wb") as f:
    np.save(f, np.arange(12, dtype=np.float32).reshape(6, 2))
    np.save(f, np.arange(18, dtype=np.float32).reshape(6, 3) * -1)
' "$D"

PYPRELUDE='
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
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), (a, b)
def stats_ok(g, a):
    v = np.asarray(a, dtype=np.float64).ravel()
    f = v[np.isfinite(v)]
    assert g["dtype"] == np.asarray(a).dtype.name and g["shape"] == list(np.shape(a)), (g, a.dtype, a.shape)
    assert g["nan"] == int(np.isnan(v).sum()) and g["inf"] == int(np.isinf(v).sum()), g
    for k, w in (("min", f.min()), ("max", f.max()), ("mean", f.mean()), ("std", f.std())):
        assert abs(g[k] - w) <= 1e-6 * max(abs(w), 1.0), (k, g[k], w)
'
O=$(freshdir o)

# The brief example: csv -> npy -> a third -> joined with a file -> statistics.
P="set -o pipefail; $CONV $D/x.csv --to npy | $SPLIT --part 1/3 | $CAT - $D/other.npy | $INFO --json"
run_sh "$P"
expect_ok "convert | split --part 1/3 | cat - other | info --json"
pycheck "convert | split | cat | info: statistics of np.concatenate([np.array_split(x, 3)[1], other])" '
g = json.load(open(sys.argv[1]))
assert len(g) == 1 and g[0]["input"] == "<stdin>", g
x = np.load(sys.argv[2]); other = np.load(sys.argv[3])
stats_ok(g[0], np.concatenate([np.array_split(x, 3)[1], other]))' "$T/out" "$D/x_ref.npy" "$D/other.npy"
# The same with the values themselves, not only their statistics.
run_sh "set -o pipefail; $CONV $D/x.csv | $SPLIT -p 1/3 | $CAT - $D/other.npy"
expect_ok "convert | split | cat (values)"
pycheck "convert | split | cat equals numpy" '
x = np.load(sys.argv[2]); other = np.load(sys.argv[3])
same(np.load(sys.argv[1]), np.concatenate([np.array_split(x, 3)[1], other]))' "$T/out" "$D/x_ref.npy" "$D/other.npy"

# The help example: a cast into a pipe, inspected.
run_sh "set -o pipefail; $CONV --dtype float16 $D/other.npy | $INFO --json"
expect_ok "convert --dtype float16 | info"
pycheck "convert --dtype float16 | info: float16 statistics" '
stats_ok(json.load(open(sys.argv[1]))[0], np.load(sys.argv[2]).astype(np.float16))' "$T/out" "$D/other.npy"

# A sharded job: every part to its own file, then merged: the input, byte for byte.
for K in 0 1 2 3 4; do
  "$SPLIT" --part "$K/5" "$D/data.npy" >"$O/out.part$K.npy" || fail "split --part $K/5"
done
run_sh "cat $O/out.part*.npy | $CAT > $O/merged.npy"
expect_ok "cat out.part*.npy | tensor-cat > merged.npy"
expect_file_eq "$O/merged.npy" "$D/data.npy" "a 5-way sharded job merges back to its input"
rm -f "$O"/*
# The same with xargs running the shards in parallel, and a column split.
run_sh "seq 0 3 | xargs -P 2 -I{} $SPLIT --part {}/4 --axis -1 $D/wide.npy -o $O/col.{}.npy"
expect_ok "xargs -P 2: 4 column shards"
run "$CAT" --axis -1 "$O/col.0.npy" "$O/col.1.npy" "$O/col.2.npy" "$O/col.3.npy" -o "$O/wide.npy"
expect_ok "tensor-cat --axis -1 of the column shards"
expect_file_eq "$O/wide.npy" "$D/wide.npy" "column shards merge back to the input"
rm -f "$O"/*

# Named tensors: a stream to safetensors, one picked, split, merged, as text.
run_sh "set -o pipefail; $CONV $D/stream.npy --names a,b --to safetensors | $CONV --key b | $SPLIT --parts 4 | $CAT | $CONV --to csv"
expect_ok "convert --names | convert --key | split --parts | cat | convert --to csv"
pycheck "safetensors through the pipe: tensor b unchanged" '
b = np.arange(18, dtype=np.float32).reshape(6, 3) * -1
rows = [[np.float32(v) for v in l.split(",")] for l in open(sys.argv[1]).read().splitlines()]
same(np.array(rows, dtype=np.float32), b)' "$T/out"
run_sh "set -o pipefail; $CONV $D/stream.npy --names a,b -o $O/m.safetensors && $INFO --json $O/m.safetensors"
expect_ok "convert -o x.safetensors && info"
pycheck "info of the safetensors: names a, b" '
g = json.load(open(sys.argv[1])); assert [x["name"] for x in g] == ["a", "b"], g' "$T/out"

# Text round trips through every text form.
run_sh "set -o pipefail; $CONV $D/x_ref.npy --to txt | $CONV | $CONV --to csv | $CONV --to npy"
expect_ok "npy -> txt -> npy -> csv -> npy"
pycheck "npy -> txt -> npy -> csv -> npy keeps every float32" 'same(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$T/out" "$D/x_ref.npy"

# An image: float32 cast to uint8, PNG, back, half of its columns.
run "$CONV" --dtype uint8 "$D/img.npy" -o "$O/img.png"
expect_ok "convert --dtype uint8 -o img.png"
run_sh "set -o pipefail; cat $O/img.png | $CONV | $SPLIT --part 0/2 --axis 1 | $INFO --json"
expect_ok "png | convert | split --axis 1 | info"
pycheck "png | convert | split | info: uint8 [8,5,3] with the truncated pixels" '
g = json.load(open(sys.argv[1]))[0]
a = np.load(sys.argv[2]).astype(np.uint8)[:, :5, :]
stats_ok(g, a)' "$T/out" "$D/img.npy"
rm -f "$O"/*

# Big data through every tool: split into a stream of 8, merged, cast, inspected.
run_sh "set -o pipefail; cat $D/big.npy | $SPLIT --parts 8 | $CAT | $CONV --dtype float64 | $INFO --json"
expect_ok "big: split --parts 8 | cat | convert --dtype float64 | info"
pycheck "big: statistics after split, merge and cast" '
stats_ok(json.load(open(sys.argv[1]))[0], np.load(sys.argv[2]).astype(np.float64))' "$T/out" "$D/big.npy"

# A failure in the middle: the failing tool says so once; the next one sees
# an empty input and says that once; nothing else is written.
printf '\x93NUMPY\x01\x00v\x00{' >"$D/trunc.npy"
LAST_CMD="tensor-convert trunc.npy | tensor-split --part 0/2 | tensor-info"
"$CONV" "$D/trunc.npy" 2>"$T/e1" | "$SPLIT" --part 0/2 2>"$T/e2" | "$INFO" >"$T/out" 2>"$T/e3"
st=("${PIPESTATUS[@]}")
[ "${st[0]}" -eq 65 ] && pass || fail "$LAST_CMD: tensor-convert exit ${st[0]}, want 65"
[ "${st[1]}" -eq 65 ] && pass || fail "$LAST_CMD: tensor-split exit ${st[1]}, want 65 (empty input)"
[ "${st[2]}" -eq 65 ] && pass || fail "$LAST_CMD: tensor-info exit ${st[2]}, want 65 (empty input)"
for i in 1 2 3; do
  name=$(sed -n "${i}p" <<<"tensor-convert
tensor-split
tensor-info")
  n=$(awk 'END { print NR }' "$T/e$i")
  [ "$n" -eq 1 ] && grep -q "^$name: error: " "$T/e$i" && pass || fail "$LAST_CMD: stderr of $name: $(cat "$T/e$i")"
done
grep -qi "truncat" "$T/e1" && pass || fail "$LAST_CMD: the first error does not say truncated: $(cat "$T/e1")"
grep -qi "empty" "$T/e2" && pass || fail "$LAST_CMD: the second error does not say empty: $(cat "$T/e2")"
[ ! -s "$T/out" ] && pass || fail "$LAST_CMD: something was written"

# The reader goes away: every tool of the pipe ends quietly, none by a signal.
LAST_CMD="tensor-convert big.npy | tensor-split --parts 4 | tensor-cat | head -c 100"
"$CONV" "$D/big.npy" 2>"$T/e1" | "$SPLIT" --parts 4 2>"$T/e2" | "$CAT" 2>"$T/e3" | head -c 100 >/dev/null
st=("${PIPESTATUS[@]}")
for i in 0 1 2; do
  [ "${st[$i]}" -eq 0 ] && pass || fail "$LAST_CMD: tool $((i + 1)) exit ${st[$i]}, want 0"
  [ ! -s "$T/e$((i + 1))" ] && pass || fail "$LAST_CMD: tool $((i + 1)) wrote to stderr: $(cat "$T/e$((i + 1))")"
done
LAST_CMD="tensor-convert big.npy --to txt | head -n 2"
"$CONV" "$D/big.npy" --to txt 2>"$T/e1" | head -n 2 >"$T/out"
st=("${PIPESTATUS[@]}")
[ "${st[0]}" -eq 0 ] && [ ! -s "$T/e1" ] && pass || fail "$LAST_CMD: exit ${st[0]}, stderr $(cat "$T/e1")"
[ "$(awk 'END { print NR }' "$T/out")" -eq 2 ] && pass || fail "$LAST_CMD: want 2 lines"

finish
