#!/usr/bin/env bash
# tensor-cat end to end: np.concatenate on every axis (negative ones too), every
# dtype and layout, streams and stdin, every option of --help, mismatches, and
# the bad-input and bad-output matrices (a bad input after good ones too).
TOOL=tensor-cat
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
CAT=$(bin tensor-cat)
D=$T/in
mkdir -p "$D"

# ------------------------------------------------------------ --help, options
expect_help_version tensor-cat --axis --help --version --output --to --quiet --threads

# ------------------------------------------------------------ inputs
py '
d = sys.argv[1]
rng = np.random.default_rng(5)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
# three tensors that agree on every extent but one, for each axis of a rank-3 shape
base = (2, 3, 4)
for ax in range(3):
    for i, n in enumerate((1, 3, 2)):
        s = list(base); s[ax] = n
        save("r3_ax%d_%d" % (ax, i), rng.normal(0, 1, s).astype(np.float32))
for dt in ["b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"]:
    a = rng.integers(0, 100, (3, 2)).astype(dt); b = rng.integers(0, 100, (1, 2)).astype(dt)
    if dt[0] == "f":
        a[0, 0] = np.nan; b[0, 1] = -np.inf
    save("dt_%s_a" % dt, a); save("dt_%s_b" % dt, b)
save("be", np.arange(6, dtype=">i4").reshape(3, 2))
save("le", np.arange(6, dtype="<i4").reshape(3, 2) + 100)
save("fortran", np.asfortranarray(np.arange(6, dtype="<i4").reshape(3, 2) - 50))
save("empty", np.zeros((0, 2), dtype=np.int32))
save("row", np.arange(4, dtype=np.float32))
save("row2", np.arange(3, dtype=np.float32) + 10)
save("scalar", np.float32(1))
save("x5x2", np.arange(10, dtype=np.float32).reshape(5, 2))
save("x2x3", np.arange(6, dtype=np.float32).reshape(2, 3))
save("x2x2i", np.arange(4, dtype=np.int32).reshape(2, 2))
save("big", rng.random((100000, 4)).astype(np.float32))
with open(os.path.join(d, "stream.npy"), "wb") as f:
    for k in range(3):
        np.save(f, np.full((k + 1, 2), k, dtype=np.int32))
' "$D"
make_bad_inputs

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
def concat(paths, axis):
    arrays = [x for p in paths for x in load_stream(p)]
    return np.concatenate(arrays, axis=axis)
'
O=$(freshdir o)

# ------------------------------------------------------------ np.concatenate on every axis
for ax in 0 1 2; do
  for a in "$ax" "$((ax - 3))"; do
    for opt in "--axis" "-a"; do
      run "$CAT" "$opt" "$a" "$D/r3_ax${ax}_0.npy" "$D/r3_ax${ax}_1.npy" "$D/r3_ax${ax}_2.npy" -o "$O/c.npy"
      expect_ok "$opt $a (three tensors)"
      pycheck "$opt $a equals np.concatenate(axis=$a)" '
same(np.load(sys.argv[1]), concat(sys.argv[3:], int(sys.argv[2])))' "$O/c.npy" "$a" \
        "$D/r3_ax${ax}_0.npy" "$D/r3_ax${ax}_1.npy" "$D/r3_ax${ax}_2.npy"
    done
  done
done
run "$CAT" --axis=-1 "$D/r3_ax2_0.npy" "$D/r3_ax2_1.npy" -o "$O/c.npy"
expect_ok "--axis=-1"
# Default axis 0; every dtype, NaN and Inf kept.
for dt in b1 i1 u1 i2 u2 i4 u4 i8 u8 f2 f4 f8; do
  run "$CAT" "$D/dt_${dt}_a.npy" "$D/dt_${dt}_b.npy" "$D/dt_${dt}_a.npy"
  expect_ok "$dt along axis 0 to a pipe"
  pycheck "$dt along axis 0 equals np.concatenate" '
same(np.load(sys.argv[1]), concat(sys.argv[2:], 0))' "$T/out" "$D/dt_${dt}_a.npy" "$D/dt_${dt}_b.npy" "$D/dt_${dt}_a.npy"
done
# Byte order and memory order of the inputs do not matter.
run "$CAT" "$D/be.npy" "$D/le.npy" "$D/fortran.npy" -o "$O/c.npy"
expect_ok "big-endian, little-endian and Fortran inputs"
pycheck "big-endian, little-endian and Fortran inputs" '
same(np.load(sys.argv[1]), np.concatenate([np.load(p).astype("<i4") for p in sys.argv[2:]]))' "$O/c.npy" "$D/be.npy" "$D/le.npy" "$D/fortran.npy"
run "$CAT" -a 1 "$D/be.npy" "$D/fortran.npy" -o "$O/c.npy"
expect_ok "-a 1 of big-endian and Fortran"
pycheck "-a 1 of big-endian and Fortran" '
same(np.load(sys.argv[1]), np.concatenate([np.load(p).astype("<i4") for p in sys.argv[2:]], axis=1))' "$O/c.npy" "$D/be.npy" "$D/fortran.npy"
# Empty tensors, one tensor, 1-D.
run "$CAT" "$D/empty.npy" "$D/le.npy" "$D/empty.npy" -o "$O/c.npy"
expect_ok "empty tensors among others"
pycheck "empty tensors among others" 'same(np.load(sys.argv[1]), concat(sys.argv[2:], 0))' "$O/c.npy" "$D/empty.npy" "$D/le.npy" "$D/empty.npy"
run "$CAT" "$D/empty.npy" "$D/empty.npy" -o "$O/c.npy"
expect_ok "only empty tensors"
pycheck "only empty tensors" 'same(np.load(sys.argv[1]), concat(sys.argv[2:], 0))' "$O/c.npy" "$D/empty.npy" "$D/empty.npy"
run "$CAT" "$D/le.npy" -o "$O/c.npy"
expect_ok "one input"
expect_file_eq "$O/c.npy" "$D/le.npy" "one little-endian input is copied as numpy wrote it"
run "$CAT" -a -1 "$D/row.npy" "$D/row2.npy" -o "$O/c.npy"
expect_ok "1-D with -a -1"
pycheck "1-D with -a -1" 'same(np.load(sys.argv[1]), concat(sys.argv[2:], -1))' "$O/c.npy" "$D/row.npy" "$D/row2.npy"

# ------------------------------------------------------------ streams and stdin
run "$CAT" "$D/stream.npy" -o "$O/c.npy"
expect_ok "a stream joins its tensors"
pycheck "a stream joins its tensors" 'same(np.load(sys.argv[1]), concat(sys.argv[2:], 0))' "$O/c.npy" "$D/stream.npy"
for how in "cat $D/stream.npy $D/x2x2i.npy | $CAT" "cat $D/stream.npy $D/x2x2i.npy | $CAT -" \
           "$CAT < $D/stream.npy - $D/x2x2i.npy" "cat $D/stream.npy | $CAT - $D/x2x2i.npy" \
           "cat $D/x2x2i.npy | $CAT $D/stream.npy -"; do
  run_sh "$how"
  expect_ok "$how"
  pycheck "$how equals np.concatenate" 'same(np.load(sys.argv[1]), concat(sys.argv[2:], 0))' "$T/out" "$D/stream.npy" "$D/x2x2i.npy"
done
# `-` twice reads stdin to its end the first time; the second `-` is then
# empty. What it means is not documented, but the answer must be orderly.
run_sh "cat $D/big.npy | $CAT -a 1 - -"
expect_no_signal "stdin named twice"
[ "$RC" -eq 0 ] || expect_error 65 "" "stdin named twice"
run_sh "cat $D/big.npy | $CAT - $D/big.npy"
expect_ok "a big tensor from a pipe and a file"
pycheck "a big tensor from a pipe and a file" 'same(np.load(sys.argv[1]), concat([sys.argv[2], sys.argv[2]], 0))' "$T/out" "$D/big.npy"
# Shards of a job merge back (the help's example).
run_sh "cd $D && cat r3_ax0_0.npy r3_ax0_1.npy r3_ax0_2.npy | $CAT > $O/merged.npy"
expect_ok "cat part*.npy | tensor-cat > out.npy"
pycheck "cat part*.npy | tensor-cat > out.npy" 'same(np.load(sys.argv[1]), concat(sys.argv[2:], 0))' "$O/merged.npy" "$D/r3_ax0_0.npy" "$D/r3_ax0_1.npy" "$D/r3_ax0_2.npy"
rm -f "$O"/*

# ------------------------------------------------------------ output formats and options
run "$CAT" "$D/x2x2i.npy" "$D/x2x2i.npy" --to txt
expect_stdout_eq "0 1
2 3
0 1
2 3" "--to txt"
run "$CAT" -a 1 "$D/x2x2i.npy" "$D/x2x2i.npy" --to csv
expect_stdout_eq "0,1,0,1
2,3,2,3" "--to csv -a 1"
run "$CAT" "$D/x2x2i.npy" "$D/x2x2i.npy" -o "$O/c.txt"
expect_ok "-o x.txt"
cp "$O/c.txt" "$T/out"
expect_stdout_eq "0 1
2 3
0 1
2 3" "-o x.txt writes text"
run "$CAT" "$D/x2x2i.npy" "$D/x2x2i.npy" --output "$O/c.json"
expect_ok "--output x.json"
pycheck "--output x.json" 'assert json.load(open(sys.argv[1])) == [[0, 1], [2, 3], [0, 1], [2, 3]]' "$O/c.json"
run "$CAT" "$D/x2x2i.npy" "$D/x2x2i.npy" -o "$O/c.safetensors"
expect_ok "-o x.safetensors"
pycheck "-o x.safetensors: one tensor" '
import struct
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
h.pop("__metadata__", None)
assert len(h) == 1, h
(v,) = h.values()
assert v["dtype"] == "I32" and v["shape"] == [4, 2], v
assert np.array_equal(np.frombuffer(raw[8 + n:], "<i4").reshape(4, 2), np.tile(np.arange(4).reshape(2, 2), (2, 1)))' "$O/c.safetensors"
run "$CAT" "$D/x2x2i.npy" --to npy -o "$O/c.txt"
expect_ok "--to npy wins over the extension"
pycheck "--to npy wins over the extension" 'same(np.load(sys.argv[1]), np.arange(4, dtype=np.int32).reshape(2, 2))' "$O/c.txt"
run "$CAT" "$D/x5x2.npy" "$D/x5x2.npy"
cp "$T/out" "$T/ref.npy"
for opts in "-q" "--quiet" "--threads 1" "--threads 4"; do
  # shellcheck disable=SC2086
  run "$CAT" $opts "$D/x5x2.npy" "$D/x5x2.npy"
  expect_ok "$opts"
  expect_file_eq "$T/out" "$T/ref.npy" "$opts does not change the output"
done
rm -f "$O"/*

# ------------------------------------------------------------ mismatches and bad options
bad_option tensor-cat 65 "int32 float32" "$D/x5x2.npy" "$D/x2x2i.npy"
bad_option tensor-cat 65 "" "$D/x5x2.npy" "$D/x2x3.npy"
bad_option tensor-cat 65 "" -a 1 "$D/x5x2.npy" "$D/x2x3.npy"
bad_option tensor-cat 65 "" "$D/row.npy" "$D/x5x2.npy"
bad_option tensor-cat 64 "axis" -a 2 "$D/x5x2.npy" "$D/x5x2.npy"
bad_option tensor-cat 64 "axis" -a -3 "$D/x5x2.npy" "$D/x5x2.npy"
bad_option tensor-cat 64 "" -a x "$D/x5x2.npy"
bad_option tensor-cat 64 "" -a 1.5 "$D/x5x2.npy"
bad_option tensor-cat 64 "" -a 99999999999999999999 "$D/x5x2.npy"
bad_option tensor-cat 64 "" -a "$D/x5x2.npy"
bad_option tensor-cat 64 "bogus" --bogus "$D/x5x2.npy"
bad_option tensor-cat 64 "" --to bogus "$D/x5x2.npy"
bad_option tensor-cat 64 "threads" --threads -2 "$D/x5x2.npy"
bad_option tensor-cat 64 "png" --to png "$D/x5x2.npy"
# 0-d tensors cannot be joined (numpy refuses them too).
run "$CAT" "$D/scalar.npy" "$D/scalar.npy" -o "$O/c.npy"
{ [ "$RC" -eq 64 ] || [ "$RC" -eq 65 ]; } && pass || fail "0-d tensors: want exit 64 or 65, got $RC"
expect_error "$RC" "" "0-d tensors"
expect_empty_dir "$O" "0-d tensors"
# A bad option wins over a missing input.
run "$CAT" -a x /nonexistent/x.npy
expect_error 64 "" "-a x with a missing input"

# Every output format the help lists for --to is one the tool writes.
expect_to_formats tensor-cat "$BAD/good.png"

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix tensor-cat out.npy
bad_input_matrix tensor-cat out.npy "$D/x5x2.npy"
run "$CAT" "$D/x5x2.npy" /nonexistent/y.npy "$D/x5x2.npy" -o "$O/out.npy"
expect_error 66 "/nonexistent/y.npy" "a missing input between good ones"
expect_empty_dir "$O" "a missing input between good ones"
bad_output_matrix tensor-cat "$D/x5x2.npy" "$D/big.npy"

finish
