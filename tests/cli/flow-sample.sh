#!/usr/bin/env bash
# flow-sample end to end: every option, sharding bit-exact against the whole
# run with any --threads, pipes, model files good and bad, bad inputs and
# outputs, nothing left behind after a failure.
TOOL=flow-sample
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"

FS=$(bin flow-sample)
CAT=$(bin tensor-cat)
D=$(freshdir in)
O=$(freshdir o)
MODELS=${NNKIT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/examples/models
RF=$MODELS/rf_moons.safetensors
RF2=$MODELS/rf2_moons.safetensors
MOONS=$MODELS/moons.safetensors
PYPRELUDE='
def close(a, b, tol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    d = np.max(np.abs(a - b)) if a.size else 0.0
    assert d <= tol, "max difference %g > %g" % (d, tol)
M3 = np.array([[-1, 0.5], [1.2, -0.3], [0, 1.5]]); S3 = np.array([0.3, 0.4, 0.25]); W3 = np.array([0.5, 0.3, 0.2])
def gmm3_logpdf(x):
    l = np.log(W3)[None] - np.sum((x[:, None, :] - M3[None]) ** 2, 2) / (2 * S3[None] ** 2) - np.log(2 * np.pi * S3[None] ** 2)
    m = l.max(1); return m + np.log(np.exp(l - m[:, None]).sum(1))
'

py '
import struct
d = sys.argv[1]
def st(path, tensors, meta=None):
    h, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        code = {"float32": "F32", "float64": "F64", "int64": "I64"}[a.dtype.name]
        h[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes()); off += a.nbytes
    if meta is not None: h["__metadata__"] = meta
    hb = json.dumps(h).encode()
    open(d + "/" + path, "wb").write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
f4 = np.float32
good = {"means": np.array([[-1, 0.5], [1.2, -0.3], [0, 1.5]], f4), "stds": np.array([0.3, 0.4, 0.25], f4),
        "weights": np.array([0.5, 0.3, 0.2], f4)}
st("gmm3.safetensors", good, {"kind": "gmm"})
st("gmm3_rev.safetensors", good, {"kind": "gmm", "time_convention": "reversed"})
st("gauss.safetensors", {"means": np.array([[0.5, -1.0]], f4), "stds": np.array([[0.3, 2.0]], f4),
   "weights": np.ones(1, f4)}, {"kind": "gmm"})
st("bad_nokind.safetensors", good, {})
st("bad_kind.safetensors", good, {"kind": "unet"})
st("bad_missing.safetensors", {"means": good["means"], "stds": good["stds"]}, {"kind": "gmm"})
st("bad_convention.safetensors", good, {"kind": "gmm", "time_convention": "backwards"})
st("bad_nice.safetensors", good, {"kind": "nice"})
np.save(d + "/npy_model.npy", good["means"])
rng = np.random.default_rng(0)
np.save(d + "/init_small.npy", rng.standard_normal((8, 2)).astype(f4))
np.save(d + "/init_big.npy", rng.standard_normal((40000, 2)).astype(f4))
np.save(d + "/init_3d.npy", rng.standard_normal((8, 3)).astype(f4))
np.save(d + "/init_nan.npy", np.array([[0, np.nan]], f4))
' "$D"

expect_help_version flow-sample --model --samples --solver --steps --shift --rtol --atol --max-steps --class --init \
  --reverse --log-prob --hutchinson --trajectory --seed --shard --stats --output --to --quiet --threads --help --version

# ------------------------------------------------------------ the built-in mixture
run "$FS" -n 2000 --seed 1 --solver rk4 --steps 30 -o "$O/builtin.npy"
expect_ok "-n 2000 of the built-in mixture"
pycheck "the built-in mixture: 8 modes at radius 2, balanced" '
x = np.load(sys.argv[1]); assert x.shape == (2000, 2) and x.dtype == np.float32
r = np.hypot(x[:, 0], x[:, 1]); assert abs(np.median(r) - 2) < 0.05, np.median(r)
k = np.round(np.arctan2(x[:, 1], x[:, 0]) / (np.pi / 4)).astype(int) % 8
c = np.bincount(k, minlength=8) / 2000.; assert np.all(np.abs(c - 0.125) < 0.03), c' "$O/builtin.npy"
run "$FS" -n 2000 --seed 1 --solver rk4 --steps 30
expect_file_eq "$T/out" "$O/builtin.npy" "the same seed gives the same bytes (stdout)"
run "$FS" -n 2000 --seed 2 --solver rk4 --steps 30 -o "$O/seed2.npy"
pycheck "--seed changes the samples" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/builtin.npy" "$O/seed2.npy"
run "$FS" -n 0
expect_ok "-n 0"
pycheck "-n 0 is an empty [0, 2]" 'assert np.load(sys.argv[1]).shape == (0, 2)' "$T/out"
run "$FS" -n 200 --class 2 --solver heun --steps 20 -o "$O/c2.npy"
expect_ok "--class 2"
pycheck "--class 2 is the component at (0, 2)" 'close(np.load(sys.argv[1]).mean(0), [0, 2], 0.05)' "$O/c2.npy"

# ------------------------------------------------------------ solvers on the single Gaussian (closed-form endpoint)
for s in euler midpoint heun rk4; do
  run "$FS" -m "$D/gauss.safetensors" --init "$D/init_small.npy" --solver $s --steps 40 -o "$O/g_$s.npy"
  expect_ok "--solver $s"
  pycheck "--solver $s reaches x0 = mu + s x1" '
x1, x = np.load(sys.argv[1]), np.load(sys.argv[2]); close(x, [0.5, -1.0] + np.array([0.3, 2.0]) * x1, 0.15)' "$D/init_small.npy" "$O/g_$s.npy"
done
run "$FS" -m "$D/gauss.safetensors" --init "$D/init_small.npy" --solver rk4 --steps 10 --stats
expect_rc 0 "--stats"
grep -q "rk4: 10 steps, 40 model evaluations per sample, 8 rows" "$T/err" && pass || fail "--stats counts rk4 evaluations: $(cat "$T/err")"
run "$FS" -m "$D/gauss.safetensors" --init "$D/init_small.npy" --solver dopri5 --rtol 1e-7 --atol 1e-7 --stats -o "$O/dp.npy"
expect_rc 0 "--solver dopri5"
grep -q "dopri5: [0-9]* steps ([0-9]* rejected), [0-9]* model evaluations" "$T/err" && pass || fail "--stats for dopri5: $(cat "$T/err")"
pycheck "dopri5 at 1e-7 is within 1e-5 of the closed form" '
x1, x = np.load(sys.argv[1]), np.load(sys.argv[2]); close(x, [0.5, -1.0] + np.array([0.3, 2.0]) * x1, 1e-5)' "$D/init_small.npy" "$O/dp.npy"
run "$FS" -m "$D/gauss.safetensors" --init "$D/init_small.npy" --solver euler --steps 10 -o "$O/e10.npy"
run "$FS" -m "$D/gauss.safetensors" --init "$D/init_small.npy" --solver euler --steps 10 --shift 3 -o "$O/e10s.npy"
pycheck "--shift 3 changes the Euler result" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/e10.npy" "$O/e10s.npy"
run "$FS" -m "$D/gauss.safetensors" --init "$D/init_small.npy" --solver euler --steps 10 --shift 1 -o "$O/e10s1.npy"
expect_file_eq "$O/e10s1.npy" "$O/e10.npy" "--shift 1 is no shift"
run "$FS" -m "$D/gmm3_rev.safetensors" -n 64 --steps 10 -o "$O/rev.npy"
run "$FS" -m "$D/gmm3.safetensors" -n 64 --steps 10 -o "$O/fwd.npy"
expect_file_eq "$O/rev.npy" "$O/fwd.npy" "time_convention=reversed on a gmm changes nothing (its velocity is exact)"

# ------------------------------------------------------------ trajectory, init, reverse
run "$FS" -m "$D/gmm3.safetensors" -n 16 --steps 6 --trajectory "$O/traj.npy" -o "$O/s.npy"
expect_ok "--trajectory"
pycheck "--trajectory is [S+1, N, 2], x_1 first, the samples last" '
t, s = np.load(sys.argv[1]), np.load(sys.argv[2]); assert t.shape == (7, 16, 2)
assert np.array_equal(t[-1], s); assert abs(t[0].std() - 1) < 0.4' "$O/traj.npy" "$O/s.npy"
run "$FS" -m "$D/gmm3.safetensors" --init "$D/init_small.npy" -n 8 --steps 10
expect_ok "--init with a matching -n"
run "$FS" -m "$D/gmm3.safetensors" --solver rk4 --steps 100 -n 300 --seed 4 -o "$O/data.npy"
run "$FS" -m "$D/gmm3.safetensors" --solver rk4 --steps 100 --reverse "$O/data.npy" -o "$O/noise.npy"
expect_ok "--reverse"
run "$FS" -m "$D/gmm3.safetensors" --solver rk4 --steps 100 --init "$O/noise.npy" -o "$O/back.npy"
pycheck "--reverse then sampling reconstructs the data (every row within 2e-3)" '
d, n, b = (np.load(p) for p in sys.argv[1:4]); close(b, d, 2e-3); assert 0.7 < n.std() < 1.3' "$O/data.npy" "$O/noise.npy" "$O/back.npy"
run_sh "cat $O/data.npy | $FS -m $D/gmm3.safetensors --solver rk4 --steps 100 --reverse - | $FS -m $D/gmm3.safetensors --solver rk4 --steps 100 --init - > $O/back2.npy"
expect_ok "reverse and sample through pipes"
expect_file_eq "$O/back2.npy" "$O/back.npy" "through pipes: the same bytes"

# ------------------------------------------------------------ log-likelihood
run "$FS" -m "$D/gmm3.safetensors" --log-prob "$O/data.npy" --solver rk4 --steps 100 -o "$O/lp.npy"
expect_ok "--log-prob (gmm, exact divergence)"
pycheck "--log-prob of the gmm equals its exact log-density within 2e-3" '
lp, x = np.load(sys.argv[1]), np.load(sys.argv[2]); assert lp.shape == (300,) and lp.dtype == np.float64
close(lp, gmm3_logpdf(x.astype(np.float64)), 2e-3)' "$O/lp.npy" "$O/data.npy"
run "$FS" -m "$D/gmm3.safetensors" --log-prob "$O/data.npy" --solver dopri5 --rtol 1e-6 --atol 1e-6 -o "$O/lpd.npy"
pycheck "--log-prob with dopri5 too" '
close(np.load(sys.argv[1]), gmm3_logpdf(np.load(sys.argv[2]).astype(np.float64)), 2e-3)' "$O/lpd.npy" "$O/data.npy"
run "$FS" -m "$RF" --log-prob "$O/data.npy" --solver rk4 --steps 10 -o "$O/lpm.npy"
expect_ok "--log-prob of the rectified-flow MLP (exact JVPs)"
run "$FS" -m "$RF" --log-prob "$O/data.npy" --solver rk4 --steps 10 --hutchinson 64 --seed 3 -o "$O/lph.npy"
expect_ok "--hutchinson 64"
pycheck "Hutchinson with 64 probes is close to the exact divergence; both finite" '
a, b = np.load(sys.argv[1]), np.load(sys.argv[2]); assert np.isfinite(a).all()
assert np.median(np.abs(a - b)) < 0.2, np.median(np.abs(a - b))' "$O/lpm.npy" "$O/lph.npy"
run "$FS" -m "$RF" -n 2000 --solver rk4 --steps 20 -o "$O/rfs.npy"
run "$FS" -m "$RF" --log-prob "$O/rfs.npy" --solver rk4 --steps 20 -o "$O/lprf.npy"
pycheck "the model's own samples are likelier under it than points far away" '
lp = np.load(sys.argv[1]); assert np.median(lp) > -3, np.median(lp)' "$O/lprf.npy"

# ------------------------------------------------------------ the shipped rectified-flow models
for m in "$RF" "$RF2"; do
  run "$FS" -m "$m" -n 3000 --solver rk4 --steps 50 -o "$O/moons.npy"
  expect_ok "$(basename "$m")"
  pycheck "$(basename "$m"): two interleaved half circles (percentiles of the data set)" '
x = np.load(sys.argv[1]); assert x.shape == (3000, 2) and np.isfinite(x).all()
close(np.percentile(x, [10, 90], axis=0), [[-2.087, -1.113], [2.091, 1.114]], 0.25)' "$O/moons.npy"
done
run "$FS" -m "$RF2" -n 3000 --steps 1 -o "$O/rf2_1.npy"
run "$FS" -m "$RF" -n 3000 --steps 1 -o "$O/rf1_1.npy"
run "$FS" -m "$RF" -n 3000 --solver rk4 --steps 50 -o "$O/rf1_50.npy"
run "$FS" -m "$RF2" -n 3000 --solver rk4 --steps 50 -o "$O/rf2_50.npy"
pycheck "one Euler step of the 2-rectified model is closer to its 50-step result than the 1-rectified one is" '
a1, a50, b1, b50 = (np.load(p) for p in sys.argv[1:5])
e1 = np.linalg.norm(a1 - a50, axis=1).mean(); e2 = np.linalg.norm(b1 - b50, axis=1).mean()
assert e2 < 0.6 * e1, (e1, e2)' "$O/rf1_1.npy" "$O/rf1_50.npy" "$O/rf2_1.npy" "$O/rf2_50.npy"
run_sh "cat $RF | $FS -m - -n 3000 --solver rk4 --steps 50"
expect_file_eq "$T/out" "$O/rf1_50.npy" "the model from stdin"

# ------------------------------------------------------------ coupling flows (exact)
NICE=$MODELS/nice_moons.safetensors
RNVP=$MODELS/realnvp_moons.safetensors
for m in "$NICE" "$RNVP"; do
  b=$(basename "$m" .safetensors)
  run "$FS" -m "$m" -n 3000 --seed 3 --stats -o "$O/$b.npy"
  expect_rc 0 "$b: sampling"
  grep -q "coupling flow, exact" "$T/err" && pass || fail "$b: --stats: $(cat "$T/err")"
  pycheck "$b: samples look like the moons (percentiles)" '
x = np.load(sys.argv[1]); assert x.shape == (3000, 2) and np.isfinite(x).all()
close(np.percentile(x, [10, 90], axis=0), [[-2.087, -1.113], [2.091, 1.114]], 0.35)' "$O/$b.npy"
  run "$FS" -m "$m" --reverse "$O/$b.npy" -o "$O/${b}_z.npy"
  expect_ok "$b: --reverse"
  run "$FS" -m "$m" --init "$O/${b}_z.npy" -o "$O/${b}_back.npy"
  pycheck "$b: f^-1(f(x)) = x within 1e-4" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 1e-4)' "$O/$b.npy" "$O/${b}_back.npy"
  run "$FS" -m "$m" --log-prob "$O/$b.npy" -o "$O/${b}_lp.npy"
  expect_ok "$b: --log-prob"
  pycheck "$b: log-likelihoods of its own samples are finite and high" '
lp = np.load(sys.argv[1]); assert lp.shape == (3000,) and np.isfinite(lp).all() and np.median(lp) > -3, np.median(lp)' "$O/${b}_lp.npy"
  run "$FS" -m "$m" -n 1000 --seed 3 -o "$O/cw.npy"
  rm -f "$O"/part*.npy
  for K in 0 1 2; do "$FS" -m "$m" -n 1000 --seed 3 --threads 2 --shard "$K/3" -o "$O/part$K.npy"; done
  run_sh "$CAT $O/part0.npy $O/part1.npy $O/part2.npy > $O/merged.npy"
  expect_file_eq "$O/merged.npy" "$O/cw.npy" "$b: shards are the whole run"
  for o in "--steps 4" "--solver rk4" "--shift 2" "--trajectory $O/t.npy"; do
    # shellcheck disable=SC2086
    bad_option flow-sample 64 "coupling" -m "$m" -n 4 $o
  done
done

# ------------------------------------------------------------ shards: rows of the whole run, bit for bit
for model in "$RF" "$D/gmm3.safetensors"; do
  run "$FS" -m "$model" -n 1000 --solver heun --steps 5 --seed 9 -o "$O/whole.npy"
  for N in 1 3 7; do
    for th in 1 3; do
      rm -f "$O"/part*.npy
      for ((K = 0; K < N; K++)); do
        "$FS" -m "$model" -n 1000 --solver heun --steps 5 --seed 9 --threads $th --shard "$K/$N" -o "$O/part$K.npy" 2>"$T/err" ||
          fail "--shard $K/$N --threads $th"
      done
      run_sh "$CAT $(for ((K = 0; K < N; K++)); do printf '%s ' "$O/part$K.npy"; done) > $O/merged.npy"
      expect_file_eq "$O/merged.npy" "$O/whole.npy" "$(basename "$model"): $N shards on $th threads are the whole run"
    done
  done
  run "$FS" -m "$model" -n 1000 --solver heun --steps 5 --seed 9 --threads 2
  expect_file_eq "$T/out" "$O/whole.npy" "$(basename "$model"): --threads 2 is the same run"
done
run "$FS" -m "$RF" --log-prob "$O/data.npy" --solver euler --steps 5 -o "$O/lpw.npy"
rm -f "$O"/part*.npy
for K in 0 1 2; do "$FS" -m "$RF" --log-prob "$O/data.npy" --solver euler --steps 5 --threads 2 --shard "$K/3" -o "$O/part$K.npy"; done
run_sh "$CAT $O/part0.npy $O/part1.npy $O/part2.npy > $O/merged.npy"
expect_file_eq "$O/merged.npy" "$O/lpw.npy" "--log-prob shards are the whole run"
run "$FS" -m "$D/gmm3.safetensors" --init "$D/init_small.npy" --shard 1/2 --steps 4 -o "$O/ip.npy"
run "$FS" -m "$D/gmm3.safetensors" --init "$D/init_small.npy" --steps 4 -o "$O/iw.npy"
pycheck "--shard with --init: rows of the whole run" 'assert np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2])[4:])' "$O/ip.npy" "$O/iw.npy"

# ------------------------------------------------------------ output formats
for f in safetensors txt csv json; do
  run "$FS" -n 3 --to $f
  expect_ok "--to $f"
done
run "$FS" -n 3 --to png
expect_error 64 "png" "--to png"
run "$FS" -n 3 -q --threads 1
expect_ok "-q --threads 1"
run_sh "$FS -n 100000 --steps 3 | head -c 10 > /dev/null"
expect_no_signal "the reader goes away"

# ------------------------------------------------------------ bad models
for c in "bad_nokind.safetensors kind" "bad_kind.safetensors unet" "bad_missing.safetensors weights" \
         "bad_convention.safetensors time_convention" "bad_nice.safetensors dim" \
         "npy_model.npy safetensors"; do
  read -r file words <<<"$c"
  out=$(freshdir mout)
  run "$FS" -m "$D/$file" -n 4 -o "$out/s.npy"
  expect_error 65 "$words" "--model $file"
  expect_empty_dir "$out" "--model $file"
done
out=$(freshdir mout)
run "$FS" -m "$MOONS" -n 4 -o "$out/s.npy"
expect_error 65 "velocity" "an epsilon (diffusion) model"
expect_empty_dir "$out" "an epsilon model"
run "$FS" -m /nonexistent/model.safetensors -n 4
expect_error 66 "model.safetensors" "a missing model"

# ------------------------------------------------------------ bad options and inputs
bad_option flow-sample 64 "-n"
bad_option flow-sample 64 "" -n -1
bad_option flow-sample 64 "" -n x
bad_option flow-sample 64 "steps" -n 4 --steps 0
bad_option flow-sample 64 "" -n 4 --solver rk45
bad_option flow-sample 64 "shift" -n 4 --shift 0
bad_option flow-sample 64 "shift" -n 4 --shift -2
bad_option flow-sample 64 "dopri5" -n 4 --solver dopri5 --steps 10
bad_option flow-sample 64 "dopri5" -n 4 --rtol 1e-3
bad_option flow-sample 64 "rtol" -n 4 --solver dopri5 --rtol -1
bad_option flow-sample 64 "rtol" -n 4 --solver dopri5 --rtol 0 --atol 0
bad_option flow-sample 64 "max-steps" -n 4 --solver dopri5 --max-steps 0
bad_option flow-sample 64 "hutchinson" -n 4 --hutchinson 4
bad_option flow-sample 64 "hutchinson" --log-prob "$D/init_small.npy" --hutchinson -1
bad_option flow-sample 64 "trajectory" --log-prob "$D/init_small.npy" --trajectory "$O/t.npy"
bad_option flow-sample 64 "class" -n 4 --class 8
bad_option flow-sample 64 "unconditional" -m "$RF" -n 4 --class 0
bad_option flow-sample 64 "init reverse" --init "$D/init_small.npy" --reverse "$D/init_small.npy"
bad_option flow-sample 64 "reverse log-prob" --reverse "$D/init_small.npy" --log-prob "$D/init_small.npy"
bad_option flow-sample 64 "rows" --init "$D/init_small.npy" -n 9
bad_option flow-sample 64 "stdin" -m - --init -
bad_option flow-sample 64 "" -n 4 --shard 3/3
bad_option flow-sample 64 "" -n 4 --shard x
bad_option flow-sample 64 "" -n 4 --to npz
bad_option flow-sample 64 "" -n 4 --bogus
bad_option flow-sample 64 "" -n 4 extra.npy
for c in "init_3d.npy [3]" "init_nan.npy non-finite"; do
  read -r file words <<<"$c"
  for opt in --init --reverse --log-prob; do
    out=$(freshdir iout)
    run "$FS" $opt "$D/$file" -o "$out/s.npy"
    expect_error 65 "$words" "$opt $file"
    expect_empty_dir "$out" "$opt $file"
  done
done
# A failure after the work started (dopri5 giving up) leaves no output and no trajectory.
out=$(freshdir late)
run "$FS" -m "$D/gmm3.safetensors" -n 6 --solver dopri5 --rtol 1e-12 --atol 1e-12 --max-steps 3 --trajectory "$out/t.npy" -o "$out/s.npy"
expect_error 65 "dopri5" "dopri5 giving up with --trajectory"
expect_empty_dir "$out" "dopri5 giving up with --trajectory"

BAD_ONLY='missing|adir|empty|trunc_data_half|trunc_header\.|garbage|huge_shape|st_offsets|png_crc|npz_trunc|text_word|text_ragged' \
  bad_input_matrix flow-sample out.npy --steps 2 --init
BAD_ONLY='missing|empty|trunc_data_half|garbage|st_mismatch|text_ragged' \
  bad_input_matrix flow-sample out.npy --steps 2 --reverse
BAD_ONLY='missing|empty|garbage' \
  bad_input_matrix flow-sample out.npy --steps 2 --log-prob
bad_output_matrix flow-sample "$D/init_small.npy" "$D/init_big.npy" --steps 2 --init

finish
