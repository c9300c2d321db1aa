#!/usr/bin/env bash
# vq-train end to end: k-means inertia within 1% of faiss (tests/fixtures/vq,
# made by make_vq.py), and equal to faiss's from the same initial codes;
# k-means++, random and file initialisation; seeds, threads and --sample
# deterministic; --tol and --iters; spherical, residual and product codebooks
# usable by vq-encode; palettes of a PNG and patches; streams and text; the
# inertia shown on a terminal; every option of --help; bad options (64) and
# bad data (65) with nothing left behind; the shared bad-input and bad-output
# matrices. Map-reduce: --map on 1, 3 and 4 shards and --reduce, iteration by
# iteration, give the single run's codebook byte for byte (l2 and cosine, an
# empty cluster split, any order of the shards, stdin or files, until
# convergence found by cmp); the statistics are what the man page says (exact
# sums checked with Python fractions); a rerun rewrites the same bytes; bad
# options (64) and bad or mismatched statistics (65).
TOOL=vq-train
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
TRAIN=$(bin vq-train)
ENC=$(bin vq-encode)
F=${NNKIT_FIXTURES:?NNKIT_FIXTURES must name tests/fixtures}/vq
D=$T/in
mkdir -p "$D"
O=$(freshdir o)

# ------------------------------------------------------------ --help, options
expect_help_version vq-train --k --init --iters --tol --sample --seed --metric --residual --pq --patch --map \
  --reduce --iteration --help --version --output --to --quiet --threads

PYPRELUDE='
def inertia(x, c):
    x = np.asarray(x, np.float64).reshape(-1, c.shape[-1]); c = np.asarray(c, np.float64)
    return ((x[:, None, :] - c[None]) ** 2).sum(-1).min(1).sum()
def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    assert np.array_equal(a, b), np.argwhere(a != b)[:5]
def report():
    return json.load(open(os.environ["FIX"] + "/kmeans.json"))
'
export FIX=$F

# ------------------------------------------------------------ inputs
py '
d = sys.argv[1]
rng = np.random.default_rng(12)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
x = rng.standard_normal((600, 8)).astype(np.float32)
save("x", x)
with open(os.path.join(d, "stream.npy"), "wb") as f:
    np.save(f, x[:250])
    np.save(f, x[250:].reshape(50, 7, 8))
np.savetxt(os.path.join(d, "x.csv"), x[:100], delimiter=",", fmt="%.9g")
save("x_nan", np.where(np.arange(600 * 8).reshape(600, 8) == 8 * 41 + 3, np.nan, x))
save("few", x[:10])
save("init_bad", x[:16, :5])
save("init_rq_bad", np.zeros((3, 16, 8), np.float32))
save("big", rng.standard_normal((3000, 16)).astype(np.float32))
' "$D"
make_bad_inputs

# ------------------------------------------------------------ k-means against faiss
for name in blobs normal; do
  X=$F/kmeans_${name}_x.npy
  run "$TRAIN" --k 16 --iters 25 "$X" -o "$O/c.npy"
  expect_ok "--k 16 --iters 25 ($name)"
  pycheck "$name: float32 [16, 8]; inertia within 1% of faiss.Kmeans (or below)" '
c = np.load(sys.argv[2]); assert c.dtype == np.float32 and c.shape == (16, 8)
ours, faiss = inertia(np.load(sys.argv[1]), c), report()[sys.argv[3]]["faiss_inertia"]
print("      vq-train %s: inertia %.6g, faiss %.6g (ratio %.4f)" % (sys.argv[3], ours, faiss, ours / faiss))
assert ours <= 1.01 * faiss' "$X" "$O/c.npy" "$name"
  run "$TRAIN" --init "$F/kmeans_${name}_init.npy" --iters 25 "$X" -o "$O/c.npy"
  expect_ok "--init FILE ($name)"
  pycheck "$name: from faiss's initial codes, faiss's inertia" '
ours, faiss = inertia(np.load(sys.argv[1]), np.load(sys.argv[2])), report()[sys.argv[3]]["faiss_from_init_inertia"]
assert abs(ours - faiss) <= 1e-5 * faiss, (ours, faiss)' "$X" "$O/c.npy" "$name"
done

# ------------------------------------------------------------ initialisation, seeds, threads
X=$D/x.npy
run "$TRAIN" --k 20 "$X" -o "$O/ref.npy"
expect_ok "--k 20"
for opts in "--seed 0" "--threads 1" "--threads 3" "-q" "--quiet" "--init kmeans++" "--iters 25" "--tol 0"; do
  # shellcheck disable=SC2086
  run "$TRAIN" -k 20 $opts "$X" -o "$O/c.npy"
  expect_ok "$opts"
  expect_file_eq "$O/c.npy" "$O/ref.npy" "$opts gives the same codebook (defaults, and any thread count)"
done
run "$TRAIN" --k 20 --seed 5 "$X" -o "$O/c5.npy"
expect_ok "--seed 5"
pycheck "--seed 5 gives other codes" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/c5.npy" "$O/ref.npy"
for t in 1 2; do
  run "$TRAIN" --k 20 --seed 5 --init random --sample 300 --threads "$t" "$X" -o "$O/r$t.npy"
  expect_ok "--init random --sample 300 --threads $t"
done
expect_file_eq "$O/r1.npy" "$O/r2.npy" "--init random --sample 300: the same at any thread count"
run "$TRAIN" --k 20 --iters 0 --init random "$X" -o "$O/c.npy"
expect_ok "--init random --iters 0"
pycheck "--init random --iters 0: 20 distinct training vectors" '
c, x = np.load(sys.argv[1]), np.load(sys.argv[2])
rows = {tuple(r) for r in x}; assert all(tuple(r) in rows for r in c) and len({tuple(r) for r in c}) == 20' "$O/c.npy" "$X"
run "$TRAIN" --k 20 --iters 0 "$X" -o "$O/c0.npy"
expect_ok "--iters 0"
pycheck "--iters 0: k-means++ codes are training vectors; Lloyd lowers the inertia" '
c0, c, x = np.load(sys.argv[1]), np.load(sys.argv[2]), np.load(sys.argv[3])
rows = {tuple(r) for r in x}; assert all(tuple(r) in rows for r in c0)
assert inertia(x, c) < inertia(x, c0)' "$O/c0.npy" "$O/ref.npy" "$X"
run "$TRAIN" --init "$O/c0.npy" --iters 25 "$X" -o "$O/c.npy"
expect_ok "--init FILE without --k"
expect_file_eq "$O/c.npy" "$O/ref.npy" "--init (the k-means++ codes) --iters 25 = the default run"
run "$TRAIN" --k 20 --tol 0.2 "$X" -o "$O/c.npy"
expect_ok "--tol 0.2"
pycheck "--tol 0.2 stops early: a higher inertia than 25 iterations" '
x = np.load(sys.argv[3]); assert inertia(x, np.load(sys.argv[1])) > inertia(x, np.load(sys.argv[2]))' "$O/c.npy" "$O/ref.npy" "$X"
run "$TRAIN" --k 20 --sample 300 "$X" -o "$O/s.npy"
expect_ok "--sample 300"
pycheck "--sample 300 trains on a subset: other codes" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/s.npy" "$O/ref.npy"
run "$TRAIN" --k 20 --sample 600 "$X" -o "$O/c.npy"
expect_ok "--sample N of N"
expect_file_eq "$O/c.npy" "$O/ref.npy" "--sample with all the vectors is all the vectors"

# ------------------------------------------------------------ inputs: streams, text, images
run "$TRAIN" --k 20 "$D/stream.npy" -o "$O/c.npy"
expect_ok "a stream"
expect_file_eq "$O/c.npy" "$O/ref.npy" "a stream's tensors join one training set"
run_sh "cat $D/x.csv | $TRAIN --k 5 --to csv"
expect_ok "csv through a pipe, --to csv"
pycheck "--to csv: [5, 8]" 'assert np.loadtxt(sys.argv[1], delimiter=",").shape == (5, 8)' "$T/out"
run "$TRAIN" --k 6 "$F/picture.png" -o "$O/pal.npy"
expect_ok "a palette of a PNG"
pycheck "the palette: [6, 3], colours in 0..255" 'p = np.load(sys.argv[1]); assert p.shape == (6, 3) and p.min() >= 0 and p.max() <= 255' "$O/pal.npy"
run "$TRAIN" --k 10 --patch 8 "$F/picture.png" -o "$O/p.npy"
expect_ok "--patch 8"
pycheck "--patch 8: codes of 8x8x3 = 192 values" 'assert np.load(sys.argv[1]).shape == (10, 192)' "$O/p.npy"

# ------------------------------------------------------------ cosine, residual, product
run "$TRAIN" --k 12 --metric cosine "$X" -o "$O/c.npy"
expect_ok "--metric cosine"
pycheck "spherical k-means: unit codes; a lower 2 - 2 cos than the k-means codes" '
c, x = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
assert np.allclose(np.linalg.norm(c, axis=1), 1, atol=1e-6)
u = x / np.linalg.norm(x, axis=1, keepdims=True)
def cost(c): c = c / np.linalg.norm(c, axis=1, keepdims=True); return (2 - 2 * (u @ c.T).max(1)).sum()
assert cost(c) < 0.8 * 600 * 2' "$O/c.npy" "$X"
run "$TRAIN" --k 16 --residual 3 "$X" -o "$O/rq.npy"
expect_ok "--residual 3"
run "$ENC" -c "$O/rq.npy" --residual "$X" --stats-json "$O/s.json" -o /dev/null
expect_ok "vq-encode --residual with the trained codebook"
pycheck "--residual 3: [3, 16, 8]; each stage lowers the error" '
c, x = np.load(sys.argv[1]), np.load(sys.argv[2]).astype(np.float32); assert c.shape == (3, 16, 8)
r, errs = x.copy(), []
for l in range(3):
    i = ((r.astype(np.float64)[:, None] - c[l][None]) ** 2).sum(-1).argmin(1); r = r - c[l][i]; errs.append((r.astype(np.float64) ** 2).sum())
assert errs[0] > errs[1] > errs[2], errs
assert abs(json.load(open(sys.argv[3]))["mean_squared_distance"] * 600 - errs[2]) < 1e-3 * errs[2]' "$O/rq.npy" "$X" "$O/s.json"
run "$TRAIN" --k 16 --pq 4 "$X" -o "$O/pq.npy"
expect_ok "--pq 4"
pycheck "--pq 4: [4, 16, 2], each subspace its own k-means" 'assert np.load(sys.argv[1]).shape == (4, 16, 2)' "$O/pq.npy"
run "$TRAIN" --init "$O/pq.npy" --pq 4 --iters 3 "$X" -o "$O/pq2.npy"
expect_ok "--pq with --init FILE"
run "$TRAIN" --init "$O/rq.npy" --residual 3 --iters 0 "$X" -o "$O/rq2.npy"
expect_ok "--residual with --init FILE --iters 0"
pycheck "--init FILE --iters 0 keeps the codes" 'assert np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/rq2.npy" "$O/rq.npy"

# ------------------------------------------------------------ the terminal shows the inertia
run script -qec "$TRAIN --k 8 --iters 3 $X -o $O/t.npy" /dev/null
expect_rc 0 "on a terminal"
expect_stdout_has "iteration 3/3: inertia" "on a terminal: the inertia of every iteration"
run script -qec "$TRAIN --k 8 --iters 3 -q $X -o $O/t.npy" /dev/null
[ ! -s "$T/out" ] && pass || fail "-q on a terminal: want nothing, got $(head -c 200 "$T/out")"

# ------------------------------------------------------------ the examples run
if [ -n "$NNKIT_SRC" ]; then
  RUN_TIMEOUT=120 run_sh "NNKIT_BIN=$NNKIT_BIN bash $NNKIT_SRC/examples/vq/colour_quantize.sh '' $T/ex >/dev/null 2>&1"
  expect_rc 0 "examples/vq/colour_quantize.sh"
  run "$(bin tensor-convert)" "$T/ex/after.png" -o "$O/after.npy"
  pycheck "the example: after.png has at most 16 colours, each from the palette; compare.png is before | after" '
a, p = np.load(sys.argv[1]), np.load(sys.argv[2])
cols = np.unique(a.reshape(-1, 3), axis=0); assert len(cols) <= 16
assert {tuple(c) for c in cols} <= {tuple(c) for c in np.clip(np.round(p), 0, 255).astype(np.uint8)}
assert os.path.getsize(sys.argv[3]) > 0' "$O/after.npy" "$T/ex/palette.npy" "$T/ex/compare.png"
  RUN_TIMEOUT=120 run_sh "NNKIT_BIN=$NNKIT_BIN bash $NNKIT_SRC/examples/vq/embeddings.sh $T/ex2 2>/dev/null"
  expect_rc 0 "examples/vq/embeddings.sh"
  expect_stdout_has "recall at 10" "examples/vq/embeddings.sh scores the search"
fi

# ------------------------------------------------------------ bad options (64)
bad_option vq-train 64 "--k" "$X"
bad_option vq-train 64 "--k" --k 0 "$X"
bad_option vq-train 64 "--k" --k -3 "$X"
bad_option vq-train 64 "" --k x "$X"
bad_option vq-train 64 "iters" --k 4 --iters -1 "$X"
bad_option vq-train 64 "tol" --k 4 --tol -1 "$X"
bad_option vq-train 64 "sample" --k 40 --sample 10 "$X"
bad_option vq-train 64 "sample" --k 4 --sample -1 "$X"
bad_option vq-train 64 "seed" --k 4 --seed -1 "$X"
bad_option vq-train 64 "residual pq" --k 4 --residual 2 --pq 2 "$X"
bad_option vq-train 64 "residual l2" --k 4 --residual 2 --metric cosine "$X"
bad_option vq-train 64 "pq" --k 4 --pq -2 "$X"
bad_option vq-train 64 "metric" --k 4 --metric dot "$X"
bad_option vq-train 64 "init" --k 4 --init= "$X"
bad_option vq-train 64 "--k 5 16 codes" --k 5 --init "$F/kmeans_normal_init.npy" "$X"
bad_option vq-train 64 "png" --k 4 --to png "$X"
bad_option vq-train 64 "bogus" --k 4 --bogus "$X"
bad_option vq-train 64 "" --k 4 "$X" "$X"

# ------------------------------------------------------------ bad data (65, 66): nothing left behind
bad_data() {  # bad_data CODE WORDS DESC ARGS...
  local code=$1 words=$2 desc=$3
  shift 3
  local out
  out=$(freshdir dataout)
  run "$TRAIN" "$@" -o "$out/c.npy"
  expect_error "$code" "$words" "$desc"
  expect_empty_dir "$out" "$desc"
}
bad_data 65 "11 codes from 10 vectors" "K > N" --k 11 "$D/few.npy"
bad_data 65 "NaN [41] element 3 x_nan.npy" "a NaN vector" --k 4 "$D/x_nan.npy"
bad_data 65 "dimension 5 8" "--init of the wrong dimension" --init "$D/init_bad.npy" "$X"
bad_data 65 "[L, K, D]" "--residual with a flat --init" --residual 2 --init "$D/init_bad.npy" "$X"
bad_data 65 "3 stages 2" "--residual 2 with a 3-stage --init" --residual 2 --init "$D/init_rq_bad.npy" "$X"
bad_data 65 "--pq 3 divide 8" "--pq that does not divide D" --k 4 --pq 3 "$X"
bad_data 65 "split" "--patch that does not divide the image" --k 4 --patch 5 "$F/picture.png"
bad_data 66 "nope.npy" "a missing --init" --init "$T/nope.npy" "$X"

# ------------------------------------------------------------ map-reduce: the single run, byte for byte
SPLIT=$(bin tensor-split)
py '
d = sys.argv[1]
rng = np.random.default_rng(21)
x = rng.standard_normal((4001, 6)).astype(np.float32)
x[:, 0] += 2 + (np.arange(4001) % 4) * 3
np.save(os.path.join(d, "mr_x.npy"), x)
c = x[:10].copy()
c[4] = [-300, 0, 0, 0, 0, 0]   # far from every vector, in direction too: its cluster is empty
np.save(os.path.join(d, "mr_c0.npy"), c)
np.save(os.path.join(d, "mr_c0_k8.npy"), c[:8])
np.save(os.path.join(d, "mr_c0_d5.npy"), c[:, :5])
' "$D"
MR=$(freshdir mr)
# mr_shards N: $MR/x0.npy ... the N parts of mr_x.npy, as a job array would cut them.
mr_shards() {
  local s
  rm -f "$MR"/x*.npy
  for s in $(seq 0 $(($1 - 1))); do "$SPLIT" --part "$s/$1" "$D/mr_x.npy" -o "$MR/x$s.npy" || return 1; done
}
# mr_iteration METRIC I: maps every shard under $MR/c.npy, reduces the
# statistics (in reverse shard order, through a pipe) into the next $MR/c.npy.
mr_iteration() {
  local metric=$1 i=$2 s
  rm -f "$MR"/stats.*.npy
  for s in "$MR"/x*.npy; do
    "$TRAIN" --map --metric "$metric" --init "$MR/c.npy" "$s" -o "$MR/stats.${s##*/x}" || return 1
  done
  # shellcheck disable=SC2046
  cat $(ls -r "$MR"/stats.*.npy) | "$TRAIN" --reduce -q --metric "$metric" --init "$MR/c.npy" --iteration "$i" \
    -o "$MR/next.npy" || return 1
  mv "$MR/next.npy" "$MR/c.npy"
}
mr_run() {  # mr_run METRIC SHARDS ITERS
  local i
  mr_shards "$2" || return 1
  cp "$D/mr_c0.npy" "$MR/c.npy"
  for i in $(seq 0 $(($3 - 1))); do mr_iteration "$1" "$i" || return 1; done
}
for metric in l2 cosine; do
  run "$TRAIN" --metric "$metric" --init "$D/mr_c0.npy" --iters 6 "$D/mr_x.npy" -o "$O/single_$metric.npy"
  expect_ok "--metric $metric --init FILE --iters 6 (the single run)"
  pycheck "$metric: the far code's empty cluster was split: it moved into the data" '
c = np.load(sys.argv[1]); assert c[4, 0] > 0, c[4]' "$O/single_$metric.npy"
  for shards in 1 3 4; do
    if mr_run "$metric" "$shards" 6; then pass; else fail "$metric, $shards shards: map-reduce failed"; fi
    expect_file_eq "$MR/c.npy" "$O/single_$metric.npy" "$metric: 6 map-reduce iterations over $shards shards = the single run"
  done
done

# Shard order, files or stdin, reruns and threads: the same bytes.
mr_shards 4
cp "$D/mr_c0.npy" "$MR/c.npy"
for s in 0 1 2 3; do
  run "$TRAIN" --map --init "$MR/c.npy" "$MR/x$s.npy" -o "$MR/s$s.npy"
  expect_ok "--map shard $s"
done
run "$TRAIN" --map --threads 1 --init "$MR/c.npy" "$MR/x2.npy" -o "$MR/s2_again.npy"
expect_ok "--map rerun with --threads 1"
expect_file_eq "$MR/s2_again.npy" "$MR/s2.npy" "a rerun of a shard's map rewrites the same bytes, at any thread count"
run "$TRAIN" --reduce -q --init "$MR/c.npy" --iteration 0 "$MR/s0.npy" "$MR/s1.npy" "$MR/s2.npy" "$MR/s3.npy" -o "$O/r_files.npy"
expect_ok "--reduce STATS... (four files)"
run_sh "cat $MR/s3.npy $MR/s1.npy $MR/s0.npy $MR/s2.npy | $TRAIN --reduce -q --init $MR/c.npy --iteration 0 -o $O/r_pipe.npy"
expect_ok "--reduce from a pipe, shards in another order"
expect_file_eq "$O/r_pipe.npy" "$O/r_files.npy" "the shards' statistics in any order give the same codebook"
run_sh "cat $MR/s2.npy $MR/s3.npy > $MR/s23.npy"
run "$TRAIN" --reduce -q --init "$MR/c.npy" --iteration 0 "$MR/s23.npy" "$MR/s1.npy" - -o "$O/r_mixed.npy" <"$MR/s0.npy"
expect_ok "--reduce: a two-shard stream, a file and stdin"
expect_file_eq "$O/r_mixed.npy" "$O/r_files.npy" "streams, files and stdin add up the same"
# The split's random streams are numbered iteration x K in 40 bits: beyond, a usage error.
run "$TRAIN" --reduce -q --init "$MR/c.npy" --iteration 9223372036854775807 "$MR/s0.npy" -o "$O/r_huge.npy"
expect_error 64 "iteration 2^40" "--reduce --iteration 2^63-1" vq-train
[ ! -e "$O/r_huge.npy" ] && pass || fail "--reduce --iteration 2^63-1 left an output"
run "$TRAIN" --init "$D/mr_c0.npy" --iters 1 "$D/mr_x.npy" -o "$O/single1.npy"
expect_file_eq "$O/r_files.npy" "$O/single1.npy" "one reduce = the single run's first update"
run "$TRAIN" --reduce --init "$MR/c.npy" --iteration 0 "$MR/s0.npy" "$MR/s1.npy" "$MR/s2.npy" "$MR/s3.npy" -o "$O/r.npy"
expect_rc 0 "--reduce without -q"
pycheck "--reduce prints one line: the inertia of the codes of --init, over all the shards" '
err = open(sys.argv[1]).read(); assert err.count("\n") == 1 and err.startswith("vq-train: iteration 0: inertia "), err
got = float(err.split("inertia ")[1].split()[0])
want = inertia(np.load(sys.argv[2]), np.load(sys.argv[3]))
assert abs(got - want) <= 1e-6 * want, (got, want)
assert "of 4001 vectors" in err, err' "$T/err" "$D/mr_x.npy" "$D/mr_c0.npy"
run "$TRAIN" --reduce -q --seed 9 --init "$MR/c.npy" --iteration 0 "$MR/s0.npy" "$MR/s1.npy" "$MR/s2.npy" "$MR/s3.npy" -o "$O/r9.npy"
run "$TRAIN" --seed 9 --init "$D/mr_c0.npy" --iters 1 "$D/mr_x.npy" -o "$O/single1_9.npy"
expect_file_eq "$O/r9.npy" "$O/single1_9.npy" "--seed 9: the split direction follows the seed, as in the single run"
pycheck "another --seed splits along another direction" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/r9.npy" "$O/r.npy"

# The statistics are what vq-train(1) says: counts, exact sums, inertia.
pycheck "the statistics stream: header, counts, exact sums (fractions), squared distances, inertia" '
from fractions import Fraction
f = open(sys.argv[1], "rb")
header, counts, sums, sq, inertia_digits = (np.load(f) for _ in range(5))
assert f.read() == b"", "more after five arrays"
x, c = np.load(sys.argv[2]), np.load(sys.argv[3])
K, D = c.shape
assert header.dtype == np.int64 and list(header) == [1, K, D, 11, 0, len(x), -149, 32], header
assert counts.dtype == sums.dtype == sq.dtype == inertia_digits.dtype == np.int64, "dtypes"
assert sums.shape == (K, D, 11) and sq.shape == (K, 11) and inertia_digits.shape == (11,), "shapes"
assert (np.abs(sums) < 2 ** 32).all(), "digit range"
assert not ((sums > 0).any(-1) & (sums < 0).any(-1)).any(), "every digit of the sign of its sum"
exact = lambda d: Fraction(sum(int(v) << (32 * i) for i, v in enumerate(d)), 2 ** 149)
def sqd(x, e):  # vq::squared_distance: four partial sums in double, then (s0 + s1) + (s2 + s3)
    t = (x.astype(np.float64) - e.astype(np.float64)) ** 2
    s = [np.zeros(len(x)) for _ in range(4)]
    for i in range(t.shape[1] // 4 * 4):
        s[i % 4] = s[i % 4] + t[:, i]
    for i in range(t.shape[1] // 4 * 4, t.shape[1]):
        s[0] = s[0] + t[:, i]
    return (s[0] + s[1]) + (s[2] + s[3])
d2 = np.stack([sqd(x, e) for e in c], 1)
near = d2.argmin(1)
assert (counts == np.bincount(near, minlength=K)).all(), counts
assert counts[4] == 0 and not sums[4].any(), "the far code has nothing"
for j in (0, 7):
    for ch in range(D):
        want = sum((Fraction(float(v)) for v in x[near == j, ch]), Fraction(0))
        assert exact(sums[j, ch]) == want, (j, ch)
dist = d2.min(1).astype(np.float32)
assert exact(inertia_digits) == sum((Fraction(float(v)) for v in dist), Fraction(0)), "inertia"
assert exact(sq[7]) == sum((Fraction(float(v)) for v in dist[near == 7]), Fraction(0)), "sq"
approx = (sums * 2.0 ** (32 * np.arange(11) - 149)).sum(-1)
assert np.allclose(approx, [x[near == j].astype(np.float64).sum(0) for j in range(K)], rtol=1e-12, atol=1e-9), \
    "the approximate sums of the man page"' "$MR/s1.npy" "$MR/x1.npy" "$MR/c.npy"

# An empty shard adds nothing.
py 'np.save(sys.argv[1], np.zeros((0, 6), np.float32))' "$D/mr_empty.npy"
run "$TRAIN" --map --init "$MR/c.npy" "$D/mr_empty.npy" -o "$MR/s_empty.npy"
expect_ok "--map of an empty shard"
run "$TRAIN" --reduce -q --init "$MR/c.npy" --iteration 0 "$MR/s0.npy" "$MR/s_empty.npy" "$MR/s1.npy" "$MR/s2.npy" "$MR/s3.npy" -o "$O/r_e.npy"
expect_ok "--reduce with an empty shard's statistics"
expect_file_eq "$O/r_e.npy" "$O/r_files.npy" "an empty shard changes nothing"

# Convergence: iterate until --reduce gives back its codes (cmp), then the
# single run with as many iterations or more stops at the same codes.
mr_shards 3
cp "$D/mr_c0.npy" "$MR/c.npy"
converged=""
for i in $(seq 0 79); do
  cp "$MR/c.npy" "$MR/prev.npy"
  mr_iteration l2 "$i" || break
  if cmp -s "$MR/prev.npy" "$MR/c.npy"; then converged=$i; break; fi
done
if [ -n "$converged" ]; then pass; else fail "map-reduce did not converge in 80 iterations"; fi
run "$TRAIN" --init "$D/mr_c0.npy" --iters 100 "$D/mr_x.npy" -o "$O/single100.npy"
expect_file_eq "$MR/c.npy" "$O/single100.npy" "map-reduce until cmp finds no change (iteration ${converged:-?}) = the single run converged"

# --patch with --map: the patches of an image, as training on them.
run "$TRAIN" --k 6 --patch 8 --iters 0 --seed 3 "$F/picture.png" -o "$MR/p0.npy"
expect_ok "--patch 8 --iters 0"
run "$TRAIN" --init "$MR/p0.npy" --patch 8 --iters 1 "$F/picture.png" -o "$O/p_single.npy"
run_sh "$TRAIN --map --patch 8 --init $MR/p0.npy $F/picture.png | $TRAIN --reduce -q --init $MR/p0.npy --iteration 0 -o $O/p_mr.npy"
expect_ok "--map --patch 8 | --reduce"
expect_file_eq "$O/p_mr.npy" "$O/p_single.npy" "--map --patch: the patches' update = the single run's"

# Bad options (64) and bad statistics (65): one line, nothing written.
S=$MR/s0.npy
bad_option vq-train 64 "--map --init FILE" --map "$X"
bad_option vq-train 64 "--reduce --init FILE" --reduce --iteration 0 "$S"
bad_option vq-train 64 "--map --init FILE" --map --init kmeans++ "$X"
bad_option vq-train 64 "--reduce --iteration" --reduce --init "$D/mr_c0.npy" "$S"
bad_option vq-train 64 "--iteration -1" --reduce --init "$D/mr_c0.npy" --iteration -1 "$S"
bad_option vq-train 64 "--iteration --reduce" --k 4 --iteration 2 "$X"
bad_option vq-train 64 "--map --reduce both" --map --reduce --init "$D/mr_c0.npy" --iteration 0 "$S"
bad_option vq-train 64 "--residual --map" --map --residual 2 --init "$D/mr_c0.npy" "$D/mr_x.npy"
bad_option vq-train 64 "--pq --reduce" --reduce --pq 2 --init "$D/mr_c0.npy" --iteration 0 "$S"
bad_option vq-train 64 "--k --map" --map --k 10 --init "$D/mr_c0.npy" "$D/mr_x.npy"
bad_option vq-train 64 "--iters --reduce" --reduce --iters 3 --init "$D/mr_c0.npy" --iteration 0 "$S"
bad_option vq-train 64 "--tol --map" --map --tol 0.1 --init "$D/mr_c0.npy" "$D/mr_x.npy"
bad_option vq-train 64 "--sample --map" --map --sample 100 --init "$D/mr_c0.npy" "$D/mr_x.npy"
bad_option vq-train 64 "--seed --map" --map --seed 2 --init "$D/mr_c0.npy" "$D/mr_x.npy"
bad_option vq-train 64 "--iteration --map" --map --iteration 2 --init "$D/mr_c0.npy" "$D/mr_x.npy"
bad_option vq-train 64 "--patch --reduce" --reduce --patch 8 --init "$D/mr_c0.npy" --iteration 0 "$S"
bad_option vq-train 64 "--map one INPUT" --map --init "$D/mr_c0.npy" "$MR/x0.npy" "$MR/x1.npy"
bad_option vq-train 64 "--map npy stream" --map --to csv --init "$D/mr_c0.npy" "$MR/x0.npy"

py '
d, s = sys.argv[1], sys.argv[2]
f = open(s, "rb"); t = [np.load(f) for _ in range(5)]
def save(name, arrays):
    with open(os.path.join(d, name), "wb") as g:
        for a in arrays: np.save(g, a)
save("st_three.npy", t[:3])
h = t[0].copy(); h[0] = 2; save("st_v2.npy", [h] + t[1:])
c = t[1].copy(); c[0] += 1; save("st_counts.npy", [t[0], c] + t[2:])
u = t[2].copy(); u[0, 0, 3] = 2 ** 32; save("st_digits.npy", t[:2] + [u] + t[3:])
save("st_float.npy", [t[0], t[1].astype(np.float64)] + t[2:])
b = open(s, "rb").read(); open(os.path.join(d, "st_cut.npy"), "wb").write(b[:len(b) - 100])
' "$D" "$S"
C0=$D/mr_c0.npy
bad_data 65 "10 codes 8" "--reduce: statistics of 10 codes, --init of 8" --reduce --init "$D/mr_c0_k8.npy" --iteration 0 "$S"
bad_data 65 "dimension 6 5" "--reduce: statistics of dimension 6, --init of 5" --reduce --init "$D/mr_c0_d5.npy" --iteration 0 "$S"
bad_data 65 "dimension 6 5" "--map: vectors of dimension 6, --init of 5" --map --init "$D/mr_c0_d5.npy" "$D/mr_x.npy"
bad_data 65 "metric l2 cosine" "--reduce --metric cosine of l2 statistics" --reduce --metric cosine --init "$C0" --iteration 0 "$S"
bad_data 65 "truncated 3 tensors st_three.npy" "--reduce: a stream that ends inside a shard" --reduce --init "$C0" --iteration 0 "$S" "$D/st_three.npy"
bad_data 65 "st_cut.npy" "--reduce: a stream cut inside an array" --reduce --init "$C0" --iteration 0 "$D/st_cut.npy"
bad_data 65 "version 2" "--reduce: another format version" --reduce --init "$C0" --iteration 0 "$D/st_v2.npy"
bad_data 65 "counts" "--reduce: counts that do not add up" --reduce --init "$C0" --iteration 0 "$D/st_counts.npy"
bad_data 65 "corrupt sums" "--reduce: digits out of range" --reduce --init "$C0" --iteration 0 "$D/st_digits.npy"
bad_data 65 "corrupt float64 int64" "--reduce: a float array for the counts" --reduce --init "$C0" --iteration 0 "$D/st_float.npy"
bad_data 65 "statistics float32 [10, 6] mr_c0.npy" "--reduce: a codebook instead of statistics" --reduce --init "$C0" --iteration 0 "$C0"
run_sh "$SPLIT --part 0/800 $D/mr_x.npy | $TRAIN --map --init $C0 -o $MR/s_small.npy"
expect_ok "--map of a shard of 6 vectors"
bad_data 65 "10 codes from 6 vectors" "--reduce: fewer vectors than codes" --reduce --init "$C0" --iteration 0 "$MR/s_small.npy"
bad_data 66 "nope.npy" "--reduce: a missing statistics file" --reduce --init "$C0" --iteration 0 "$S" "$T/nope.npy"
bad_data 66 "nope.npy" "--map: a missing --init" --map --init "$T/nope.npy" "$D/mr_x.npy"

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix vq-train out.npy --k 2
bad_output_matrix vq-train "$D/big.npy" "$D/big.npy" --k 2000 --iters 0

finish
