#!/usr/bin/env bash
# ddim-sample end to end: every option, sharding bit-exact against the whole
# run with any --threads, pipes, model files good and bad, bad inputs and
# outputs, nothing left behind after a failure.
TOOL=ddim-sample
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"

DS=$(bin ddim-sample)
CAT=$(bin tensor-cat)
D=$(freshdir in)
O=$(freshdir o)
MODELS=${NNKIT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}/examples/models
MOONS=$MODELS/moons.safetensors
CLASSES=$MODELS/classes.safetensors
PYPRELUDE='
def close(a, b, tol):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    d = np.max(np.abs(a - b)) if a.size else 0.0
    assert d <= tol, "max difference %g > %g" % (d, tol)
'

# Model files and inputs, written by hand (safetensors: u64 length, JSON, data).
py '
import struct
d = sys.argv[1]
def st(path, tensors, meta=None, raw_header=None):
    h, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        code = {"float32": "F32", "float64": "F64", "int64": "I64"}[a.dtype.name]
        h[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes()); off += a.nbytes
    if meta is not None: h["__metadata__"] = meta
    hb = json.dumps(h).encode() if raw_header is None else raw_header
    open(d + "/" + path, "wb").write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
f4 = np.float32
means = np.array([[0.7, -1.3]], f4)
st("point.safetensors", {"means": means, "stds": np.zeros(1, f4), "weights": np.ones(1, f4)}, {"kind": "gmm"})
m3 = np.array([[-1, 0.5], [1.2, -0.3], [0, 1.5]], f4)
good = {"means": m3, "stds": np.array([0.3, 0.4, 0.25], f4), "weights": np.array([0.5, 0.3, 0.2], f4)}
st("gmm3.safetensors", good, {"kind": "gmm"})
st("gmm3_v.safetensors", good, {"kind": "gmm", "prediction": "v_prediction"})
st("image.safetensors", {"means": np.linspace(-0.5, 0.5, 48, dtype=f4).reshape(1, 48), "stds": np.full(1, 0.05, f4),
   "weights": np.ones(1, f4)}, {"kind": "gmm", "sample_shape": "4,4,3"})
st("bad_nokind.safetensors", good, {})
st("bad_nometa.safetensors", good)
st("bad_kind.safetensors", good, {"kind": "unet"})
st("bad_missing.safetensors", {"means": m3, "stds": good["stds"]}, {"kind": "gmm"})
st("bad_shape.safetensors", dict(good, stds=np.ones(4, f4)), {"kind": "gmm"})
st("bad_weights_shape.safetensors", dict(good, weights=np.ones((3, 1), f4)), {"kind": "gmm"})
st("bad_negative.safetensors", dict(good, weights=np.array([1, -1, 1], f4)), {"kind": "gmm"})
st("bad_prediction.safetensors", good, {"kind": "gmm", "prediction": "noise"})
st("bad_velocity.safetensors", good, {"kind": "gmm", "prediction": "velocity"})
st("bad_extra.safetensors", dict(good, scale=np.ones(3, f4)), {"kind": "gmm"})
np.save(d + "/npy_model.npy", m3)
rng = np.random.default_rng(0)
np.save(d + "/init_small.npy", rng.standard_normal((8, 2)).astype(f4))
np.save(d + "/init_big.npy", rng.standard_normal((40000, 2)).astype(f4))
np.save(d + "/init_3d.npy", rng.standard_normal((8, 3)).astype(f4))
np.save(d + "/init_nan.npy", np.array([[0, np.nan]], f4))
np.save(d + "/labels.npy", np.array([0, 1, 2, -1, 0, 1], np.int64))
np.save(d + "/labels_bad.npy", np.array([0, 5, 1, 1, 1, 1], np.int64))
np.save(d + "/labels_float.npy", np.zeros(6, f4))
np.save(d + "/labels_short.npy", np.zeros(4, np.int64))
' "$D"
# The MLP files: a missing tensor, a wrong shape (from the shipped moons model).
py '
import struct
src, d = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
def write(name, h2):
    hb = json.dumps(h2).encode()
    open(d + "/" + name, "wb").write(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
h2, data, off = {"__metadata__": h["__metadata__"]}, [], 0
for k, e in h.items():
    if k in ("__metadata__", "blocks.1.weight"): continue
    a, b = e["data_offsets"]; h2[k] = dict(e, data_offsets=[off, off + b - a]); data.append(raw[8 + n + a:8 + n + b]); off += b - a
hb = json.dumps(h2).encode()
open(d + "/bad_mlp_missing.safetensors", "wb").write(struct.pack("<Q", len(hb)) + hb + b"".join(data))
h2 = json.loads(json.dumps(h)); h2["__metadata__"]["hidden"] = "64"; write("bad_mlp_hidden.safetensors", h2)
h2 = json.loads(json.dumps(h)); h2["__metadata__"]["depth"] = "4"; write("bad_mlp_depth.safetensors", h2)
open(d + "/bad_trunc.safetensors", "wb").write(raw[: len(raw) // 2])
' "$MOONS" "$D"

expect_help_version ddim-sample --model --samples --train-steps --beta-schedule --beta-start --beta-end \
  --rescale-zero-snr --steps --spacing --steps-offset --eta --prediction --clip-sample --threshold --threshold-max \
  --final-alpha --diffusers-compat --class --labels --guidance --init --trajectory --invert --seed --shard \
  --output --to --quiet --threads --help --version

# ------------------------------------------------------------ the built-in mixture
run "$DS" -n 2000 --seed 1 -o "$O/builtin.npy"
expect_ok "-n 2000 of the built-in mixture"
pycheck "the built-in mixture: 8 modes at radius 2, balanced" '
x = np.load(sys.argv[1]); assert x.shape == (2000, 2) and x.dtype == np.float32
r = np.hypot(x[:, 0], x[:, 1]); assert abs(np.median(r) - 2) < 0.05, np.median(r)
k = np.round(np.arctan2(x[:, 1], x[:, 0]) / (np.pi / 4)).astype(int) % 8
c = np.bincount(k, minlength=8) / 2000.; assert np.all(np.abs(c - 0.125) < 0.03), c' "$O/builtin.npy"
run "$DS" -n 2000 --seed 1
expect_file_eq "$T/out" "$O/builtin.npy" "the same seed gives the same bytes (stdout)"
run "$DS" -n 2000 --seed 2 -o "$O/seed2.npy"
pycheck "--seed changes the samples" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/builtin.npy" "$O/seed2.npy"
run "$DS" -n 0
expect_ok "-n 0"
pycheck "-n 0 is an empty [0, 2]" 'assert np.load(sys.argv[1]).shape == (0, 2)' "$T/out"

# Point mass: eta 0 returns the point, whatever the prediction type.
for pred in epsilon v_prediction sample; do
  run "$DS" -m "$D/point.safetensors" -n 50 --steps 10 --prediction "$pred"
  expect_ok "point mass, --prediction $pred"
  pycheck "point mass, --prediction $pred: every sample is the point" 'close(np.load(sys.argv[1]), np.tile([0.7, -1.3], (50, 1)), 1e-5)' "$T/out"
done
# --prediction changes nothing for an exact model; a declared v model the same.
run "$DS" -m "$D/gmm3.safetensors" -n 100 -o "$O/eps.npy"
run "$DS" -m "$D/gmm3_v.safetensors" -n 100 -o "$O/v.npy"
run "$DS" -m "$D/gmm3.safetensors" -n 100 --prediction sample -o "$O/x0.npy"
pycheck "gmm: epsilon, v_prediction and sample give the same samples" '
a, b, c = (np.load(p) for p in sys.argv[1:4]); close(a, b, 2e-4); close(a, c, 2e-4)' "$O/eps.npy" "$O/v.npy" "$O/x0.npy"

# ------------------------------------------------------------ schedule options
run "$DS" -m "$D/gmm3.safetensors" -n 64 --steps 10 -o "$O/base.npy"
for opts in "--beta-schedule scaled_linear" "--beta-schedule squaredcos_cap_v2" "--beta-start 0.0002" \
            "--beta-end 0.03" "--train-steps 500" "--spacing linspace" "--spacing trailing" "--steps-offset 1" \
            "--final-alpha first" "--eta 1" "--eta 0.3" "--clip-sample 0.5" "--threshold 0.5"; do
  # shellcheck disable=SC2086
  run "$DS" -m "$D/gmm3.safetensors" -n 64 --steps 10 $opts -o "$O/opt.npy"
  expect_ok "$opts"
  pycheck "$opts changes the samples" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/base.npy" "$O/opt.npy"
done
run "$DS" -m "$D/gmm3.safetensors" -n 64 --steps 10 --diffusers-compat -o "$O/compat.npy"
expect_file_eq "$O/compat.npy" "$O/base.npy" "--diffusers-compat with leading spacing and S dividing T changes nothing"
run "$DS" -m "$D/gmm3.safetensors" -n 64 --steps 7 --spacing trailing -o "$O/tr.npy"
run "$DS" -m "$D/gmm3.safetensors" -n 64 --steps 7 --spacing trailing --diffusers-compat -o "$O/trc.npy"
pycheck "--diffusers-compat with trailing spacing differs (t - T//S is not the next entry)" 'assert not np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/tr.npy" "$O/trc.npy"
run "$DS" -m "$D/gmm3.safetensors" -n 64 --clip-sample 1 -o "$O/clip.npy"
pycheck "--clip-sample 1: the last x0 is clipped, so the samples lie in [-1, 1]" 'assert np.abs(np.load(sys.argv[1])).max() <= 1 + 1e-6' "$O/clip.npy"
run "$DS" -m "$D/gmm3.safetensors" -n 64 --threshold 0.9 --threshold-max 1.2 -o "$O/thr.npy"
expect_ok "--threshold 0.9 --threshold-max 1.2"
pycheck "dynamic thresholding divides by s in [1, 1.2]: samples in [-1, 1]" 'assert np.abs(np.load(sys.argv[1])).max() <= 1 + 1e-6' "$O/thr.npy"
run "$DS" -m "$D/gmm3.safetensors" -n 64 --rescale-zero-snr --spacing trailing
expect_error 64 "epsilon v_prediction" "--rescale-zero-snr with an epsilon model"
run "$DS" -m "$D/gmm3.safetensors" -n 64 --rescale-zero-snr --spacing trailing --prediction v_prediction
expect_ok "--rescale-zero-snr --prediction v_prediction"
pycheck "zero SNR samples are finite" 'assert np.isfinite(np.load(sys.argv[1])).all()' "$T/out"

# ------------------------------------------------------------ trajectory, init, invert
run "$DS" -m "$D/gmm3.safetensors" -n 16 --steps 6 --trajectory "$O/traj.npy" -o "$O/s.npy"
expect_ok "--trajectory"
pycheck "--trajectory is [S+1, N, 2], x_T first, the samples last" '
t, s = np.load(sys.argv[1]), np.load(sys.argv[2]); assert t.shape == (7, 16, 2)
assert np.array_equal(t[-1], s); assert abs(t[0].std() - 1) < 0.4' "$O/traj.npy" "$O/s.npy"
run "$DS" -m "$D/gmm3.safetensors" --init "$D/init_small.npy" --steps 10 -o "$O/from_init.npy"
expect_ok "--init"
run "$DS" -m "$D/gmm3.safetensors" --init "$D/init_small.npy" -n 8 --steps 10
expect_file_eq "$T/out" "$O/from_init.npy" "--init with a matching -n"
run "$DS" -m "$D/gmm3.safetensors" --steps 200 -n 300 --seed 4 -o "$O/data.npy"
run "$DS" -m "$D/gmm3.safetensors" --steps 200 --invert "$O/data.npy" -o "$O/noise.npy"
expect_ok "--invert"
run "$DS" -m "$D/gmm3.safetensors" --steps 200 --init "$O/noise.npy" -o "$O/back.npy"
pycheck "--invert then sampling reconstructs the data (mean error below 0.01, every row within 0.2)" '
d, n, b = (np.load(p) for p in sys.argv[1:4]); e = np.abs(b - d).max(1)
assert e.mean() < 0.01 and e.max() < 0.2, (e.mean(), e.max()); assert 0.6 < n.std() < 1.4' "$O/data.npy" "$O/noise.npy" "$O/back.npy"
run_sh "cat $O/data.npy | $DS -m $D/gmm3.safetensors --steps 200 --invert - | $DS -m $D/gmm3.safetensors --steps 200 --init - > $O/back2.npy"
expect_ok "invert and sample through pipes"
expect_file_eq "$O/back2.npy" "$O/back.npy" "through pipes: the same bytes"

# ------------------------------------------------------------ classes and guidance
run "$DS" -n 200 --class 2 -o "$O/c2.npy"
expect_ok "--class 2 of the built-in mixture"
pycheck "--class 2 is the component at (0, 2)" 'close(np.load(sys.argv[1]).mean(0), [0, 2], 0.05)' "$O/c2.npy"
run "$DS" -n 200 --class 2 --guidance 3 -o "$O/c2g.npy"
expect_ok "--guidance 3"
pycheck "--guidance 3 keeps class 2" 'assert (np.load(sys.argv[1])[:, 1] > 1).all()' "$O/c2g.npy"
run "$DS" -m "$D/gmm3.safetensors" -n 6 --labels "$D/labels.npy" --steps 30 -o "$O/lab.npy"
expect_ok "--labels"
pycheck "--labels: row i near the mean of its class" '
x = np.load(sys.argv[1]); m = np.array([[-1, 0.5], [1.2, -0.3], [0, 1.5]])
for i, c in enumerate([0, 1, 2, -1, 0, 1]):
    if c >= 0: assert np.linalg.norm(x[i] - m[c]) < 1.6, (i, x[i])' "$O/lab.npy"
if [ -f "$CLASSES" ]; then
  run "$DS" -m "$CLASSES" -n 400 --class 1 --guidance 2 -o "$O/mlpc.npy"
  expect_ok "the shipped conditional model, --class 1 --guidance 2"
  pycheck "class 1 of the shipped model lies above the centre, around (0, 1.5), pushed outwards by guidance" '
m = np.median(np.load(sys.argv[1]), 0); assert abs(m[0]) < 0.3 and 1.2 < m[1] < 2.2, m' "$O/mlpc.npy"
fi

# ------------------------------------------------------------ the shipped moons model
run "$DS" -m "$MOONS" -n 3000 --steps 50 -o "$O/moons.npy"
expect_ok "the shipped moons model"
pycheck "moons: two interleaved half circles (the density of the data set)" '
x = np.load(sys.argv[1]); assert x.shape == (3000, 2) and np.isfinite(x).all()
assert np.mean(np.abs(x).max(1) > 3) < 0.01; close(np.median(x, 0), [0.005, 0.001], 0.15)
# The 10th and 90th percentiles of the training distribution.
close(np.percentile(x, [10, 90], axis=0), [[-2.087, -1.113], [2.091, 1.114]], 0.15)' "$O/moons.npy"
run_sh "cat $MOONS | $DS -m - -n 3000 --steps 50"
expect_file_eq "$T/out" "$O/moons.npy" "the model from stdin"

# ------------------------------------------------------------ shards: rows of the whole run, bit for bit
for model in "$MOONS" "$D/gmm3.safetensors"; do
  run "$DS" -m "$model" -n 1000 --steps 5 --eta 0.5 --seed 9 -o "$O/whole.npy"
  for N in 1 3 7; do
    for th in 1 3; do
      rm -f "$O"/part*.npy
      for ((K = 0; K < N; K++)); do
        "$DS" -m "$model" -n 1000 --steps 5 --eta 0.5 --seed 9 --threads $th --shard "$K/$N" -o "$O/part$K.npy" 2>"$T/err" ||
          fail "--shard $K/$N --threads $th"
      done
      run_sh "$CAT $(for ((K = 0; K < N; K++)); do printf '%s ' "$O/part$K.npy"; done) > $O/merged.npy"
      expect_file_eq "$O/merged.npy" "$O/whole.npy" "$(basename "$model"): $N shards on $th threads are the whole run"
    done
  done
  run "$DS" -m "$model" -n 1000 --steps 5 --eta 0.5 --seed 9 --threads 2
  expect_file_eq "$T/out" "$O/whole.npy" "$(basename "$model"): --threads 2 is the same run"
done
run "$DS" -m "$D/gmm3.safetensors" --init "$D/init_small.npy" --shard 1/2 --steps 4 -o "$O/ip.npy"
run "$DS" -m "$D/gmm3.safetensors" --init "$D/init_small.npy" --steps 4 -o "$O/iw.npy"
pycheck "--shard with --init: rows of the whole run" 'assert np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2])[4:])' "$O/ip.npy" "$O/iw.npy"

# ------------------------------------------------------------ output formats
run "$DS" -m "$D/image.safetensors" -n 5 --to png -o "$O/grid.png"
expect_ok "--to png of image-shaped samples"
run "$(bin tensor-convert)" "$O/grid.png" -o "$O/grid.npy"
pycheck "--to png: a 3 x 2 grid of 4 x 4 RGB images, [-1, 1] mapped to 0..255" '
g = np.load(sys.argv[1]); assert g.shape == (8, 12, 3) and g.dtype == np.uint8, g.shape
want = np.round((np.linspace(-0.5, 0.5, 48).reshape(4, 4, 3) + 1) * 127.5)
assert np.abs(g[:4, :4].astype(float) - want).max() <= 12' "$O/grid.npy"
run "$DS" -n 5 --to png
expect_error 64 "png" "--to png of 2-D samples"
for f in safetensors txt csv json; do
  run "$DS" -n 3 --to $f
  expect_ok "--to $f"
done
run "$DS" -n 3 -o "$O/s.csv"
run_sh "head -c 100 $O/s.csv | grep -c ,"
expect_stdout_eq "3" "-o s.csv writes csv"
run "$DS" -n 3 -q --threads 1
expect_ok "-q --threads 1"
run "$DS" -n 3 --quiet
expect_ok "--quiet"
run_sh "$DS -n 100000 --steps 3 | head -c 10 > /dev/null"
expect_no_signal "the reader goes away"

# ------------------------------------------------------------ bad models
for c in "bad_nokind.safetensors kind" "bad_nometa.safetensors kind" "bad_kind.safetensors unet" \
         "bad_missing.safetensors weights" "bad_shape.safetensors stds" "bad_weights_shape.safetensors weights" \
         "bad_negative.safetensors weights" "bad_prediction.safetensors prediction" \
         "bad_velocity.safetensors flow-sample" "bad_extra.safetensors scale" "bad_mlp_missing.safetensors blocks.1.weight" \
         "bad_mlp_hidden.safetensors input.weight" "bad_mlp_depth.safetensors blocks.3.weight" \
         "bad_trunc.safetensors bad_trunc" "npy_model.npy safetensors"; do
  read -r file words <<<"$c"
  out=$(freshdir mout)
  run "$DS" -m "$D/$file" -n 4 -o "$out/s.npy"
  expect_error 65 "$words" "--model $file"
  expect_empty_dir "$out" "--model $file"
done
run "$DS" -m /nonexistent/model.safetensors -n 4
expect_error 66 "model.safetensors" "a missing model"

# ------------------------------------------------------------ bad options and inputs
bad_option ddim-sample 64 "-n"
bad_option ddim-sample 64 "" -n -1
bad_option ddim-sample 64 "" -n x
bad_option ddim-sample 64 "steps" -n 4 --steps 0
bad_option ddim-sample 64 "steps" -n 4 --steps 1001
bad_option ddim-sample 64 "steps" -n 4 --steps 10 --train-steps 5
bad_option ddim-sample 64 "eta" -n 4 --eta 1.5
bad_option ddim-sample 64 "eta" -n 4 --eta -0.1
bad_option ddim-sample 64 "" -n 4 --beta-schedule cosine
bad_option ddim-sample 64 "beta" -n 4 --beta-start 0
bad_option ddim-sample 64 "beta" -n 4 --beta-end 1.5
bad_option ddim-sample 64 "" -n 4 --spacing even
bad_option ddim-sample 64 "" -n 4 --prediction noise
bad_option ddim-sample 64 "" -n 4 --final-alpha zero
bad_option ddim-sample 64 "steps-offset" -n 4 --steps 10 --steps-offset 100
bad_option ddim-sample 64 "steps-offset" -n 4 --steps-offset -1
bad_option ddim-sample 64 "clip-sample" -n 4 --clip-sample -1
bad_option ddim-sample 64 "threshold" -n 4 --threshold 2
bad_option ddim-sample 64 "threshold-max" -n 4 --threshold-max 0.5
bad_option ddim-sample 64 "guidance class" -n 4 --guidance 2
bad_option ddim-sample 64 "class" -n 4 --class 8
bad_option ddim-sample 64 "class" -n 4 --class -2
bad_option ddim-sample 64 "class labels" -n 6 --class 1 --labels "$D/labels.npy"
bad_option ddim-sample 64 "unconditional" -m "$MOONS" -n 4 --class 0
bad_option ddim-sample 64 "init invert" --init "$D/init_small.npy" --invert "$D/init_small.npy"
bad_option ddim-sample 64 "eta" --invert "$D/init_small.npy" --eta 0.5
bad_option ddim-sample 64 "rows" --init "$D/init_small.npy" -n 9
bad_option ddim-sample 64 "init invert" --init - --invert -
bad_option ddim-sample 64 "stdin" --invert - --labels -
bad_option ddim-sample 64 "stdin" -m - --init -
bad_option ddim-sample 64 "" -n 4 --shard 3/3
bad_option ddim-sample 64 "" -n 4 --shard x
bad_option ddim-sample 64 "" -n 4 --to npz
bad_option ddim-sample 64 "" -n 4 --bogus
bad_option ddim-sample 64 "" -n 4 extra.npy
for c in "init_3d.npy [3]" "init_nan.npy non-finite" "labels_bad.npy label" "labels_float.npy float" "labels_short.npy shape"; do
  read -r file words <<<"$c"
  out=$(freshdir iout)
  case $file in
    labels*) run "$DS" -m "$D/gmm3.safetensors" -n 6 --labels "$D/$file" -o "$out/s.npy" ;;
    *) run "$DS" --init "$D/$file" -o "$out/s.npy" ;;
  esac
  expect_error 65 "$words" "$file"
  expect_empty_dir "$out" "$file"
done
# A failure after the work started leaves no output and no trajectory.
out=$(freshdir late)
run "$DS" -m "$D/gmm3.safetensors" -n 6 --labels "$D/labels_bad.npy" --trajectory "$out/t.npy" -o "$out/s.npy"
expect_error 65 "label" "bad labels with --trajectory"
expect_empty_dir "$out" "bad labels with --trajectory"

BAD_ONLY='missing|adir|empty|trunc_data_half|trunc_header\.|garbage|huge_shape|st_offsets|png_crc|npz_trunc|text_word|text_ragged' \
  bad_input_matrix ddim-sample out.npy --steps 2 --init
BAD_ONLY='missing|empty|trunc_data_half|garbage|st_mismatch|text_ragged' \
  bad_input_matrix ddim-sample out.npy --steps 2 --invert
bad_output_matrix ddim-sample "$D/init_small.npy" "$D/init_big.npy" --steps 2 --init

finish
