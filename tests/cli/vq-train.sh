#!/usr/bin/env bash
# vq-train end to end: k-means inertia within 1% of faiss (tests/fixtures/vq,
# made by make_vq.py), and equal to faiss's from the same initial codes;
# k-means++, random and file initialisation; seeds, threads and --sample
# deterministic; --tol and --iters; spherical, residual and product codebooks
# usable by vq-encode; palettes of a PNG and patches; streams and text; the
# inertia shown on a terminal; every option of --help; bad options (64) and
# bad data (65) with nothing left behind; the shared bad-input and bad-output
# matrices.
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
expect_help_version vq-train --k --init --iters --tol --sample --seed --metric --residual --pq --patch --help \
  --version --output --to --quiet --threads

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

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix vq-train out.npy --k 2
bad_output_matrix vq-train "$D/big.npy" "$D/big.npy" --k 2000 --iters 0

finish
