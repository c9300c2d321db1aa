#!/usr/bin/env bash
# tensor-split end to end: --part K/N against np.array_split for many lengths,
# counts and axes, --parts N as a stream and as --prefix files, tensor-cat of
# all parts gives back the input, streams and stdin, every option of --help,
# bad option values, all-or-nothing --prefix output, and the bad-input and
# bad-output matrices.
TOOL=tensor-split
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
SPLIT=$(bin tensor-split)
CAT=$(bin tensor-cat)
D=$T/in
mkdir -p "$D"
shopt -s nullglob

# ------------------------------------------------------------ --help, options
expect_help_version tensor-split --parts --part --prefix --axis --help --version --output --to \
  --quiet --threads

# ------------------------------------------------------------ inputs
py '
d = sys.argv[1]
rng = np.random.default_rng(9)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
for L in (0, 1, 2, 7, 10, 13):
    save("len%d" % L, rng.normal(0, 1, (L, 3)).astype(np.float32))
save("r3", np.arange(5 * 4 * 7, dtype=np.int16).reshape(5, 4, 7))
save("row", np.arange(11, dtype=np.float64))
save("be", np.arange(14, dtype=">i8").reshape(7, 2))
save("fortran", np.asfortranarray(np.arange(21, dtype=np.float32).reshape(7, 3)))
save("f2", np.array([1, np.nan, -np.inf, 4, 5], dtype=np.float16))
save("b1", np.array([True, False, True, True]))
save("scalar", np.float32(3))
save("big", rng.random((200000, 4)).astype(np.float32))
with open(os.path.join(d, "stream.npy"), "wb") as f:
    np.save(f, np.arange(10, dtype=np.int32).reshape(5, 2))
    np.save(f, np.arange(15, dtype=np.float64).reshape(5, 3) / 2)
with open(os.path.join(d, "rows.csv"), "w") as f:
    f.write("".join("%d,%d\n" % (i, i * i) for i in range(9)))
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
def native(a):
    return a.astype(a.dtype.newbyteorder("="))
'
O=$(freshdir o)

# ------------------------------------------------------------ --part K/N vs np.array_split
for L in 0 1 2 7 10 13; do
  for N in 1 2 3 4 7 16; do
    for ((K = 0; K < N; K++)); do
      # Every part of small cases; first, middle and last of the others.
      if [ "$N" -gt 4 ] && [ "$K" -ne 0 ] && [ "$K" -ne $((N / 2)) ] && [ "$K" -ne $((N - 1)) ]; then continue; fi
      run "$SPLIT" --part "$K/$N" "$D/len$L.npy" -o "$O/p.npy"
      expect_ok "--part $K/$N of length $L"
      pycheck "--part $K/$N of length $L equals np.array_split" '
a = np.load(sys.argv[1]); k, n = map(int, sys.argv[3].split("/"))
same(np.load(sys.argv[2]), np.array_split(a, n)[k])' "$D/len$L.npy" "$O/p.npy" "$K/$N"
    done
  done
done
for spec in "0:0/3" "1:2/3" "2:1/4" "-1:3/4" "-2:1/2" "-3:2/3"; do
  ax=${spec%%:*} part=${spec#*:}
  for opt in --axis -a; do
    run "$SPLIT" "$opt" "$ax" -p "$part" "$D/r3.npy" -o "$O/p.npy"
    expect_ok "$opt $ax -p $part of [5,4,7]"
    pycheck "$opt $ax -p $part of [5,4,7] equals np.array_split(axis=$ax)" '
a = np.load(sys.argv[1]); k, n = map(int, sys.argv[3].split("/"))
same(np.load(sys.argv[2]), np.array_split(a, n, axis=int(sys.argv[4]))[k])' "$D/r3.npy" "$O/p.npy" "$part" "$ax"
  done
done
for f in row be fortran f2 b1; do
  run "$SPLIT" --part 1/3 "$D/$f.npy" -o "$O/p.npy"
  expect_ok "--part 1/3 of $f"
  pycheck "--part 1/3 of $f equals np.array_split" '
same(np.load(sys.argv[2]), native(np.array_split(np.load(sys.argv[1]), 3)[1]))' "$D/$f.npy" "$O/p.npy"
done
# The help's example: the middle third of the columns.
run "$SPLIT" --part 1/3 --axis -1 "$D/r3.npy" -o "$O/mid.npy"
expect_ok "--part 1/3 --axis -1 -o mid.npy"
pycheck "--part 1/3 --axis -1" 'same(np.load(sys.argv[2]), np.array_split(np.load(sys.argv[1]), 3, axis=-1)[1])' "$D/r3.npy" "$O/mid.npy"
# A part of a stream is a stream of parts.
run "$SPLIT" --part 2/3 "$D/stream.npy" -o "$O/p.npy"
expect_ok "--part of a stream"
pycheck "--part of a stream is a stream of parts" '
a, b = load_stream(sys.argv[1]), load_stream(sys.argv[2])
assert len(b) == len(a) == 2
for x, y in zip(a, b): same(y, np.array_split(x, 3)[2])' "$D/stream.npy" "$O/p.npy"
rm -f "$O"/*

# ------------------------------------------------------------ --parts N: a stream, or files
for N in 1 3 5 16; do
  run "$SPLIT" --parts "$N" "$D/len13.npy" -o "$O/all.npy"
  expect_ok "--parts $N to one stream"
  pycheck "--parts $N: a stream of the N parts in order" '
a, b = np.load(sys.argv[1]), load_stream(sys.argv[2]); n = int(sys.argv[3])
assert len(b) == n, (len(b), n)
for x, y in zip(np.array_split(a, n), b): same(y, x)' "$D/len13.npy" "$O/all.npy" "$N"
  run "$CAT" "$O/all.npy" -o "$O/back.npy"
  expect_ok "tensor-cat of --parts $N"
  expect_file_eq "$O/back.npy" "$D/len13.npy" "tensor-cat of the parts gives back the input (--parts $N)"
done
run "$SPLIT" -n 2 "$D/stream.npy" -o "$O/all.npy"
expect_ok "-n 2 of a stream"
pycheck "-n 2 of a stream: part 0 of each tensor, then part 1 of each" '
a, b = load_stream(sys.argv[1]), load_stream(sys.argv[2])
want = [np.array_split(x, 2)[k] for k in range(2) for x in a]
assert len(b) == len(want)
for x, y in zip(want, b): same(y, x)' "$D/stream.npy" "$O/all.npy"
rm -f "$O"/*
run "$SPLIT" --parts 4 --prefix "$O/shard_" "$D/len10.npy"
expect_ok "--parts 4 --prefix"
[ ! -s "$T/out" ] && pass || fail "--parts 4 --prefix wrote to stdout"
files=$(cd "$O" && ls -A | tr '\n' ' ')
[ "$files" = "shard_0.npy shard_1.npy shard_2.npy shard_3.npy " ] && pass || fail "--parts 4 --prefix: files are '$files'"
pycheck "--parts 4 --prefix: file k is np.array_split part k" '
a = np.load(sys.argv[1])
for k, x in enumerate(np.array_split(a, 4)): same(np.load(sys.argv[2 + k]), x)' "$D/len10.npy" "$O"/shard_{0,1,2,3}.npy
run "$CAT" "$O"/shard_0.npy "$O"/shard_1.npy "$O"/shard_2.npy "$O"/shard_3.npy -o "$O/back.npy"
expect_ok "tensor-cat of the shard files"
expect_file_eq "$O/back.npy" "$D/len10.npy" "tensor-cat of the shard files gives back the input"
rm -f "$O"/*
# More than 10 parts: the numbers are zero-padded, so a glob lists them in order.
run "$SPLIT" --parts 12 --prefix "$O/shard_" "$D/big.npy"
expect_ok "--parts 12 --prefix"
files=$(cd "$O" && ls -A | tr '\n' ' ')
[ "$files" = "$(printf 'shard_%02d.npy ' 0 1 2 3 4 5 6 7 8 9 10 11)" ] && pass || fail "--parts 12: files are '$files'"
run "$CAT" "$O"/shard_*.npy -o "$O/back.npy"
expect_ok "tensor-cat shard_*.npy"
expect_file_eq "$O/back.npy" "$D/big.npy" "tensor-cat of the glob of 12 shard files gives back the input"
rm -f "$O"/*
run "$SPLIT" -n 3 --prefix "$O/part-" -a 1 --to txt "$D/r3.npy"
expect_ok "-n 3 --prefix --to txt -a 1"
files=$(cd "$O" && ls -A | tr '\n' ' ')
[ "$files" = "part-0.txt part-1.txt part-2.txt " ] && pass || fail "--prefix --to txt: files are '$files'"
run_sh "cat $O/part-0.txt | head -n 1"
expect_stdout_eq "# shape: 5,2,7" "--prefix --to txt: part 0 is text of shape [5,2,7]"
rm -f "$O"/*
run "$SPLIT" -n 2 --prefix "$O/s" --to safetensors "$D/stream.npy"
expect_ok "-n 2 --prefix --to safetensors"
[ -f "$O/s0.safetensors" ] && [ -f "$O/s1.safetensors" ] && pass || fail "--to safetensors: files are $(ls -A "$O")"
rm -f "$O"/*
# The job-array recipe: every K of N, then a merge, gives back the input.
for K in 0 1 2 3 4 5 6; do
  "$SPLIT" --part "$K/7" "$D/big.npy" >"$O/out.part$K.npy" 2>"$T/err" || fail "--part $K/7 of big"
done
run_sh "cat $O/out.part*.npy | $CAT > $O/merged.npy"
expect_ok "cat out.part*.npy | tensor-cat"
expect_file_eq "$O/merged.npy" "$D/big.npy" "the merge of 7 parts of a big tensor is the input"
rm -f "$O"/*

# ------------------------------------------------------------ stdin and pipes
for how in "cat $D/len13.npy | $SPLIT --part 1/3" "cat $D/len13.npy | $SPLIT --part 1/3 -" \
           "$SPLIT --part 1/3 < $D/len13.npy" "$SPLIT --part=1/3 - < $D/len13.npy" \
           "$SPLIT -p 1/3 $D/len13.npy -o -" "$SPLIT -p 1/3 $D/len13.npy --output -"; do
  run_sh "$how"
  expect_ok "$how"
  pycheck "$how is part 1 of 3" 'same(np.load(sys.argv[2]), np.array_split(np.load(sys.argv[1]), 3)[1])' "$D/len13.npy" "$T/out"
done
run_sh "$(bin tensor-convert) $D/rows.csv | $SPLIT --part 2/4 --to csv"
expect_stdout_eq "5,25
6,36" "csv through a pipe, --part 2/4 --to csv (rows 5 and 6 of 9: parts of 3, 2, 2, 2)"
run_sh "cat $D/big.npy | $SPLIT --parts 3 | $CAT"
expect_ok "a big tensor: split and merged through pipes"
expect_file_eq "$T/out" "$D/big.npy" "split and merged through pipes"
run "$SPLIT" --part 0/1 "$D/len7.npy"
cp "$T/out" "$T/ref.npy"
for opts in "-q" "--quiet" "--threads 1" "--threads 3"; do
  # shellcheck disable=SC2086
  run "$SPLIT" $opts --part 0/1 "$D/len7.npy"
  expect_ok "$opts"
  expect_file_eq "$T/out" "$T/ref.npy" "$opts does not change the output"
done
expect_file_eq "$T/ref.npy" "$D/len7.npy" "--part 0/1 is the input"

# ------------------------------------------------------------ bad options
for p in 3/3 4/3 -1/3 x 1 1/ /3 1/0 0/0 1/3/4 "a/b" "1.5/3" "" "0/-2" "99999999999999999999/99999999999999999999"; do
  bad_option tensor-split 64 "" --part="$p" "$D/len7.npy"
done
bad_option tensor-split 64 "part" --part 3/3 "$D/len7.npy"
bad_option tensor-split 64 "parts part" --parts 3 --part 0/3 "$D/len7.npy"
bad_option tensor-split 64 "parts part" "$D/len7.npy"
bad_option tensor-split 64 "" --parts -1 "$D/len7.npy"
bad_option tensor-split 64 "" --parts x "$D/len7.npy"
bad_option tensor-split 64 "" --parts 0 "$D/len7.npy"
bad_option tensor-split 64 "prefix" --part 0/2 --prefix "$T/o/p" "$D/len7.npy"
bad_option tensor-split 64 "axis" --part 0/2 --axis 2 "$D/len7.npy"
bad_option tensor-split 64 "axis" --part 0/2 --axis -3 "$D/len7.npy"
bad_option tensor-split 64 "" --part 0/2 --axis x "$D/len7.npy"
bad_option tensor-split 64 "bogus" --part 0/2 --bogus "$D/len7.npy"
bad_option tensor-split 64 "" --part 0/2 "$D/len7.npy" "$D/len7.npy"
bad_option tensor-split 64 "" --part 0/2 --to bogus "$D/len7.npy"
bad_option tensor-split 64 "" --parts 2 --to png "$D/len7.npy"
bad_option tensor-split 64 "" --part 0/1 "$D/scalar.npy"
# --prefix with -o is refused, and leaves nothing.
run "$SPLIT" --parts 2 --prefix "$O/x" -o "$O/y.npy" "$D/len7.npy"
expect_error 64 "prefix" "--prefix with -o"
expect_empty_dir "$O" "--prefix with -o"
# A bad option value wins over a missing input.
run "$SPLIT" --part 5/2 /nonexistent/x.npy
[ "$RC" -eq 64 ] || [ "$RC" -eq 66 ] && pass || fail "bad --part with a missing input: want 64 (or 66), got $RC"
expect_error "$RC" "" "bad --part with a missing input"

# ------------------------------------------------------------ all files or none
# Part 2's target is a directory: no part may be left, not even the first.
mkdir "$O/p2.npy"
run "$SPLIT" --parts 4 --prefix "$O/p" "$D/len10.npy"
expect_error 73 "p2.npy" "--prefix where part 2 cannot be created"
rmdir "$O/p2.npy"
expect_empty_dir "$O" "--prefix where part 2 cannot be created"
run "$SPLIT" --parts 3 --prefix "/nonexistent/dir/p" "$D/len10.npy"
expect_error 73 "/nonexistent/dir/p" "--prefix in a missing folder"
run "$SPLIT" --parts 3 --prefix "$O/p" "$BAD/trunc_data_half.npy"
expect_error 65 "truncat" "--prefix with a truncated input"
expect_empty_dir "$O" "--prefix with a truncated input"
# Existing part files are replaced only when all parts succeed.
printf 'old\n' >"$O/p0.npy"
mkdir "$O/p1.npy"
run "$SPLIT" --parts 2 --prefix "$O/p" "$D/len10.npy"
expect_error 73 "" "--prefix over an old part 0 with part 1 impossible"
[ "$(cat "$O/p0.npy")" = old ] && pass || fail "--prefix: the old part 0 was replaced though part 1 failed"
rmdir "$O/p1.npy"
rm -f "$O/p0.npy"
expect_empty_dir "$O" "--prefix over an old part 0 (temporaries)"

# Every output format the help lists for --to is one the tool writes.
expect_to_formats tensor-split "$BAD/good.png" --part 0/1

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix tensor-split out.npy --part 0/2
BAD_ONLY='missing|adir|empty|trunc_data_half|trunc_header\.|garbage|huge_shape|st_offsets|png_crc|npz_trunc|text_word' \
  bad_input_matrix tensor-split out.npy --parts 3
bad_output_matrix tensor-split "$D/len7.npy" "$D/big.npy" --part 0/1
bad_output_matrix tensor-split "$D/len7.npy" "$D/big.npy" --parts 2

finish
