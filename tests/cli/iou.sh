#!/usr/bin/env bash
# iou end to end: every metric and format against torchvision's values
# (tests/fixtures/boxes, from make_boxes.py), pairwise, aligned, float64,
# mixed formats, legacy pixels; rotated boxes against shapely's areas, in
# degrees and radians; one input, streams, stdin, text and pipes; batches;
# --sparse equal to the dense matrix thresholded; invalid boxes and
# --allow-invalid; bounded memory for a large dense matrix; every option of
# --help; bad options (64), bad data (65), missing input (66), bad outputs
# (73, 74) with no output left behind.
TOOL=iou
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
IOU=$(bin iou)
FX=${NNKIT_FIXTURES:?}/boxes
D=$T/in
O=$(freshdir o)
mkdir -p "$D"

# ------------------------------------------------------------ --help, options
expect_help_version iou --metric --format --format-a --format-b --aligned --legacy-pixels --rotated \
  --radians --min-iou --sparse --allow-invalid --f64 --help --version --output --to --quiet --threads

# ------------------------------------------------------------ inputs
py '
d, fx = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(4)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
for f in ("xyxy", "xywh", "cxcywh"):
    save("a24_" + f, np.load(os.path.join(fx, "a_" + f + ".npy"))[:24])
a, b = np.load(os.path.join(fx, "a_xyxy.npy")), np.load(os.path.join(fx, "b_xyxy.npy"))
save("batch_a", np.stack([a, a[::-1]]))
save("batch_b", np.stack([b, b[::-1]]))
save("batch4_a", np.stack([a, a[::-1], a, a[::-1]]).reshape(2, 2, 32, 4))
save("batch4_b", np.stack([b, b[::-1], b, b[::-1]]).reshape(2, 2, 24, 4))
save("a_f64", a.astype(np.float64))
save("a_i32", np.round(a[8:12]).astype(np.int32))
save("a_f16", np.array([[0, 0, 4, 4], [2, 2, 6, 6]], np.float16))
save("one_box", np.array([1, 2, 5, 6], np.float32))
with open(os.path.join(d, "ab_stream.npy"), "wb") as f:
    np.save(f, a); np.save(f, b)
with open(os.path.join(d, "three.npy"), "wb") as f:
    np.save(f, a); np.save(f, b); np.save(f, b)
r = np.load(os.path.join(fx, "rot_a.npy"))
rr = r.copy(); rr[:, 4] = np.deg2rad(rr[:, 4]); save("rot_a_rad", rr)
rb = np.load(os.path.join(fx, "rot_b.npy")).copy(); rb[:, 4] = np.deg2rad(rb[:, 4]); save("rot_b_rad", rb)
save("bad_x", np.array([[0, 0, 1, 1], [0, 0, 2, 2], [5, 0, 4, 1]], np.float32))
save("bad_nan", np.array([[0, 0, 1, 1], [0, np.nan, 2, 2]], np.float32))
save("bad_inf", np.array([[0, 0, np.inf, 1]], np.float64))
save("bad_wh", np.array([[0, 0, 1, 1], [0, 0, 1, -1]], np.float32))
save("bad_batch", np.array([[[0, 0, 1, 1], [0, 0, 1, 1]], [[0, 0, 1, 1], [3, 3, 2, 2]]], np.float32))
save("bad_big", np.array([[0, 0, 1e39, 1]], np.float64))
save("shape5", np.zeros((3, 5), np.float32))
save("scalar", np.float32(3))
save("good_small", a[:3])
# Many boxes, for the sparse grid and the large dense matrix.
xy = rng.uniform(0, 3000, (6000, 2)); wh = rng.uniform(5, 60, (6000, 2))
save("many", np.concatenate([xy, xy + wh], 1).astype(np.float32))
save("big500", np.concatenate([xy[:500], xy[:500] + wh[:500]], 1).astype(np.float32))
' "$D" "$FX"
make_bad_inputs

PYPRELUDE='
import io
def load_stream(path):
    raw = open(path, "rb").read()
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append(np.load(f))
    return out
def close(got, want, tol, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == dtype, (got.dtype, dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    bad = ~np.isclose(got, want, rtol=0, atol=tol, equal_nan=True)
    assert not bad.any(), "max diff %g at %s" % (np.nanmax(np.abs(got - want)), np.argwhere(bad)[:5].tolist())
'

# ------------------------------------------------------------ values vs torchvision
for m in iou giou diou ciou ioa; do
  for f in xyxy xywh cxcywh; do
    run "$IOU" --metric "$m" --format "$f" "$FX/a_$f.npy" "$FX/b_$f.npy" -o "$O/$m-$f.npy"
    expect_ok "--metric $m --format $f"
    pycheck "$m $f pairwise equals torchvision" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 2e-7, np.float32)' \
      "$O/$m-$f.npy" "$FX/${m}_$f.npy"
    run "$IOU" -m "$m" -f "$f" --aligned "$D/a24_$f.npy" "$FX/b_$f.npy" -o "$O/$m-$f-al.npy"
    expect_ok "-m $m -f $f --aligned"
    pycheck "$m $f aligned equals torchvision" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 2e-7, np.float32)' \
      "$O/$m-$f-al.npy" "$FX/${m}_${f}_aligned.npy"
  done
  run "$IOU" --metric "$m" --f64 "$FX/a_xyxy.npy" "$FX/b_xyxy.npy" -o "$O/$m-f64.npy"
  expect_ok "--metric $m --f64"
  pycheck "$m --f64 equals torchvision in float64" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 1e-14, np.float64)' \
    "$O/$m-f64.npy" "$FX/${m}_xyxy_f64.npy"
done
rm -f "$O"/*
run "$IOU" --format-a xywh --format-b cxcywh "$FX/a_xywh.npy" "$FX/b_cxcywh.npy" -o "$O/mixed.npy"
expect_ok "--format-a xywh --format-b cxcywh"
pycheck "mixed formats equal torchvision" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 2e-7, np.float32)' \
  "$O/mixed.npy" "$FX/iou_mixed.npy"
run "$IOU" --format xywh --format-b cxcywh "$FX/a_xywh.npy" "$FX/b_cxcywh.npy" -o "$O/mixed2.npy"
expect_file_eq "$O/mixed2.npy" "$O/mixed.npy" "--format with --format-b overriding B"
run "$IOU" --legacy-pixels "$FX/a_xyxy.npy" "$FX/b_xyxy.npy" -o "$O/legacy.npy"
expect_ok "--legacy-pixels"
pycheck "--legacy-pixels equals torchvision on boxes widened by a pixel" \
  'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 2e-7, np.float32)' "$O/legacy.npy" "$FX/iou_legacy.npy"
printf '0 0 2 2\n2 0 4 2\n' >"$D/pixels.txt"
run "$IOU" --legacy-pixels "$D/pixels.txt" -o "$O/px.npy"
pycheck "--legacy-pixels: boxes of 3x3 pixels sharing a column of 3" '
assert np.allclose(np.load(sys.argv[1]), [[1, 3 / 15], [3 / 15, 1]], atol=1e-7)' "$O/px.npy"
# The degenerate rules: zero union gives 0 (torchvision: NaN), never NaN.
pycheck "no NaN anywhere in the fixtures' results (zero union -> 0)" '
for p in sys.argv[1:]:
    assert not np.isnan(np.load(p)).any(), p' "$FX/iou_xyxy.npy" "$FX/ciou_xyxy.npy"
printf '5 5 5 5\n5 5 5 5\n0 0 2 2\n2 0 4 2\n' >"$D/degenerate.txt"
for m in iou giou diou ciou ioa; do
  run "$IOU" -m "$m" "$D/degenerate.txt" -o "$O/deg-$m.npy"
  expect_ok "-m $m on points and touching boxes"
  pycheck "-m $m: identical points give 0, touching boxes give <= 0, no NaN" '
v = np.load(sys.argv[1])
assert not np.isnan(v).any(), v
assert v[0, 1] == 0 and v[0, 0] == 0, v
assert v[2, 3] <= 0 and v[2, 2] == 1, v' "$O/deg-$m.npy"
done

# ------------------------------------------------------------ rotated
for m in iou ioa; do
  run "$IOU" --rotated -m "$m" --f64 "$FX/rot_a.npy" "$FX/rot_b.npy" -o "$O/rot-$m.npy"
  expect_ok "--rotated -m $m --f64"
  pycheck "--rotated $m equals shapely's polygon areas" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 1e-12, np.float64)' \
    "$O/rot-$m.npy" "$FX/rot_$m.npy"
  run "$IOU" --rotated --radians -m "$m" "$D/rot_a_rad.npy" "$D/rot_b_rad.npy" -o "$O/rot-rad-$m.npy"
  expect_ok "--rotated --radians -m $m"
  pycheck "--rotated --radians $m (float32) equals shapely" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]), 1e-6, np.float32)' \
    "$O/rot-rad-$m.npy" "$FX/rot_$m.npy"
done
run "$IOU" --rotated "$FX/rot_a.npy" -o "$O/rot-self.npy"
expect_ok "--rotated with one input"
pycheck "--rotated self: identical boxes give exactly 1, symmetric" '
v = np.load(sys.argv[1]); a = np.load(sys.argv[2])
pos = (a[:, 2] > 0) & (a[:, 3] > 0)
assert (np.diag(v)[pos] == 1).all(), np.diag(v)
assert np.allclose(v, v.T, atol=1e-7)' "$O/rot-self.npy" "$FX/rot_a.npy"
run "$IOU" --rotated --aligned "$FX/rot_a.npy" "$FX/rot_a.npy" -o "$O/rot-al.npy"
pycheck "--rotated --aligned of a set with itself" '
v = np.load(sys.argv[1]); a = np.load(sys.argv[2])
assert v.shape == (20,) and (v[(a[:, 2] > 0) & (a[:, 3] > 0)] == 1).all(), v' "$O/rot-al.npy" "$FX/rot_a.npy"
rm -f "$O"/*

# ------------------------------------------------------------ one input, streams, pipes
run "$IOU" "$FX/a_xyxy.npy" "$FX/b_xyxy.npy" -o "$O/ab.npy"
cp "$O/ab.npy" "$T/ab.npy"
for how in "cat $D/ab_stream.npy | $IOU" "$IOU < $D/ab_stream.npy" "$IOU $D/ab_stream.npy" \
           "cat $FX/a_xyxy.npy | $IOU - $FX/b_xyxy.npy" "cat $FX/b_xyxy.npy | $IOU $FX/a_xyxy.npy -" \
           "$(bin tensor-convert) $FX/a_xyxy.npy --to csv | $IOU - $FX/b_xyxy.npy" \
           "$IOU $FX/a_xyxy.npy $FX/b_xyxy.npy --output - | cat" "$IOU -q --threads 1 $FX/a_xyxy.npy $FX/b_xyxy.npy"; do
  run_sh "$how"
  expect_ok "$how"
  expect_file_eq "$T/out" "$T/ab.npy" "$how gives the A x B matrix"
done
run "$IOU" "$FX/a_xyxy.npy" -o "$O/self.npy"
run "$IOU" "$FX/a_xyxy.npy" "$FX/a_xyxy.npy" -o "$O/self2.npy"
expect_file_eq "$O/self.npy" "$O/self2.npy" "one input compares A with itself"
run "$IOU" "$D/a_f64.npy" "$FX/b_xyxy.npy" -o "$O/f64in.npy"
expect_file_eq "$O/f64in.npy" "$T/ab.npy" "float64 boxes are rounded to float32 first"
run "$IOU" "$D/a_i32.npy" "$D/a_f16.npy" --to txt
expect_ok "int32 and float16 boxes"
run "$IOU" "$D/one_box.npy" "$D/a_f16.npy" -o "$O/one.npy"
expect_ok "a [4] tensor is one box"
pycheck "a [4] tensor is one box: [1, M]" 'v = np.load(sys.argv[1]); assert v.shape == (1, 2), v.shape' "$O/one.npy"
for th in 1 2 3; do
  run "$IOU" --threads "$th" -m ciou "$D/many.npy" "$D/big500.npy" -o "$O/t$th.npy"
  expect_ok "--threads $th"
done
expect_file_eq "$O/t1.npy" "$O/t2.npy" "--threads 1 and 2 give the same bytes"
expect_file_eq "$O/t1.npy" "$O/t3.npy" "--threads 1 and 3 give the same bytes"
rm -f "$O"/*

# ------------------------------------------------------------ batches
run "$IOU" "$D/batch_a.npy" "$D/batch_b.npy" -o "$O/batch.npy"
expect_ok "batched [2, 32, 4] x [2, 24, 4]"
pycheck "batch k is A[k] x B[k]" '
v, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
assert v.shape == (2, 32, 24), v.shape
assert np.array_equal(v[0], ref) and np.array_equal(v[1], ref[::-1, ::-1])' "$O/batch.npy" "$T/ab.npy"
run "$IOU" "$D/batch4_a.npy" "$D/batch4_b.npy" -o "$O/batch4.npy"
pycheck "two batch axes" '
v, ref = np.load(sys.argv[1]), np.load(sys.argv[2])
assert v.shape == (2, 2, 32, 24) and np.array_equal(v[1, 1], ref[::-1, ::-1])' "$O/batch4.npy" "$T/ab.npy"
run "$IOU" --aligned "$D/batch_a.npy" "$D/batch_a.npy" -o "$O/balign.npy"
pycheck "batched --aligned is [2, 32]" 'v = np.load(sys.argv[1]); assert v.shape == (2, 32), v.shape' "$O/balign.npy"
run "$IOU" "$D/batch_a.npy" "$FX/b_xyxy.npy" -o "$O/x.npy"
expect_error 65 "batch differ" "batched A with unbatched B"
run "$IOU" --aligned "$FX/a_xyxy.npy" "$FX/b_xyxy.npy" -o "$O/x.npy"
expect_error 65 "aligned shape" "--aligned with 32 and 24 boxes"
rm -f "$O"/*

# ------------------------------------------------------------ sparse == dense thresholded
# Thresholds above 0 take the grid path (many x 500 boxes), others every pair.
for spec in "iou 0.5 many" "iou 0.1 many" "giou 0.2 many" "ciou 0.3 many" "ioa 0.999 many" "diou 1e-30 many" \
            "iou 0 big500" "giou -0.5 big500" "ciou -2 big500"; do
  set -- $spec
  run "$IOU" -m "$1" "$D/$3.npy" "$D/big500.npy" -o "$O/dense.npy"
  run "$IOU" -m "$1" --sparse --min-iou "$2" "$D/$3.npy" "$D/big500.npy" -o "$O/sparse.npy"
  expect_ok "-m $1 --sparse --min-iou $2"
  pycheck "-m $1 --sparse --min-iou $2 equals the dense matrix thresholded" '
d = np.load(sys.argv[1]); pairs, vals = load_stream(sys.argv[2]); t = float(sys.argv[3])
assert pairs.dtype == np.int64 and pairs.shape == (len(vals), 2), (pairs.dtype, pairs.shape)
assert vals.dtype == np.float32
want = np.argwhere(d >= t)
assert np.array_equal(pairs, want), (pairs[:5], want[:5])
assert np.array_equal(vals, d[d >= t])' "$O/dense.npy" "$O/sparse.npy" "$2"
done
run "$IOU" --sparse --min-iou 0.3 "$D/batch_a.npy" "$D/batch_b.npy" -o "$O/sparse.npy"
run "$IOU" "$D/batch_a.npy" "$D/batch_b.npy" -o "$O/dense.npy"
pycheck "batched --sparse: pairs [K, 3] (batch, i, j)" '
d = np.load(sys.argv[1]); pairs, vals = load_stream(sys.argv[2])
assert np.array_equal(pairs, np.argwhere(d >= 0.3)) and np.array_equal(vals, d[d >= 0.3])' "$O/dense.npy" "$O/sparse.npy"
run "$IOU" --sparse --min-iou 0.5 --f64 --rotated "$FX/rot_a.npy" "$FX/rot_b.npy" -o "$O/rs.npy"
pycheck "--rotated --sparse --f64" '
d = np.load(sys.argv[1]); pairs, vals = load_stream(sys.argv[2])
assert vals.dtype == np.float64 and np.array_equal(pairs, np.argwhere(d >= 0.5))
assert np.allclose(vals, d[d >= 0.5], atol=1e-12)' "$FX/rot_iou.npy" "$O/rs.npy"
run "$IOU" --sparse --min-iou 2 "$FX/a_xyxy.npy" -o "$O/empty.npy"
pycheck "--sparse with nothing above the threshold: [0, 2] and [0]" '
pairs, vals = load_stream(sys.argv[1]); assert pairs.shape == (0, 2) and vals.shape == (0,)' "$O/empty.npy"
run "$IOU" --sparse --min-iou 0.9 "$FX/a_xyxy.npy" "$FX/b_xyxy.npy" --to txt
expect_ok "--sparse --to txt"
expect_stdout_has "# tensor pairs" "--sparse --to txt names the tensors"
run_sh "$IOU --sparse --min-iou 0.5 $D/many.npy | $(bin tensor-info)"
expect_ok "iou --sparse | tensor-info"
expect_stdout_has "int64" "iou --sparse | tensor-info shows the pairs"
rm -f "$O"/*

# ------------------------------------------------------------ invalid boxes
run "$IOU" "$D/bad_x.npy" "$FX/b_xyxy.npy" -o "$O/x.npy"
expect_error 65 "bad_x.npy box 2 x2 < x1" "x2 < x1"
run "$IOU" "$FX/a_xyxy.npy" "$D/bad_nan.npy" -o "$O/x.npy"
expect_error 65 "bad_nan.npy box 1 nan" "NaN coordinate in B"
run "$IOU" "$D/bad_inf.npy" -o "$O/x.npy"
expect_error 65 "box 0 inf" "infinite coordinate"
run "$IOU" -f xywh "$D/bad_wh.npy" -o "$O/x.npy"
expect_error 65 "box 1 negative height" "negative height"
run "$IOU" "$D/bad_batch.npy" -o "$O/x.npy"
expect_error 65 "box [1, 1]" "an invalid box in a batch"
run "$IOU" "$D/bad_big.npy" -o "$O/x.npy"
expect_error 65 "too large float32 --f64" "a coordinate beyond float32"
expect_empty_dir "$O" "invalid boxes leave no output"
run "$IOU" --f64 "$D/bad_big.npy" -o "$O/x.npy"
expect_ok "--f64 holds 1e39"
rm -f "$O"/*
run "$IOU" --allow-invalid "$D/bad_x.npy" "$D/bad_nan.npy" -o "$O/nan.npy"
expect_ok "--allow-invalid"
pycheck "--allow-invalid: NaN exactly for the pairs of invalid boxes" '
v = np.load(sys.argv[1])
want = np.zeros((3, 2), bool); want[2, :] = True; want[:, 1] = True
assert np.array_equal(np.isnan(v), want), v' "$O/nan.npy"
run "$IOU" --allow-invalid --sparse --min-iou -1 "$D/bad_x.npy" "$D/bad_nan.npy" -o "$O/nan-sparse.npy"
pycheck "--allow-invalid --sparse: invalid pairs never appear" '
pairs, vals = load_stream(sys.argv[1]); assert pairs.tolist() == [[0, 0], [1, 0]], pairs' "$O/nan-sparse.npy"
rm -f "$O"/*

# ------------------------------------------------------------ bounded memory, output formats
LAST_CMD="iou many.npy many.npy (6000 x 6000 to a file): peak memory"
"$PY" - "$IOU" "$D/many.npy" "$O/huge.npy" >"$T/rss" 2>&1 <<'EOF'
import resource, subprocess, sys
subprocess.run([sys.argv[1], sys.argv[2], sys.argv[2], "-o", sys.argv[3]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
EOF
rss=$(tail -n 1 "$T/rss")
[ "${rss:-999999}" -lt 60000 ] && pass || fail "a 6000 x 6000 (144 MB) matrix used $rss KiB; the output should stream"
pycheck "the streamed 6000 x 6000 matrix is right" '
v = np.load(sys.argv[1], mmap_mode="r"); assert v.shape == (6000, 6000)
a = np.load(sys.argv[2])
i = [0, 17, 4321, 5999]
area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
lt = np.maximum(a[i, None, :2], a[None, :, :2]); rb = np.minimum(a[i, None, 2:], a[None, :, 2:])
wh = np.clip(rb - lt, 0, None); inter = wh[..., 0] * wh[..., 1]
assert np.allclose(v[i], inter / (area[i, None] + area[None] - inter), atol=1e-6)' "$O/huge.npy" "$D/many.npy"
rm -f "$O"/*
expect_to_formats iou "$D/good_small.npy"
for ext in txt csv json safetensors npy; do
  run "$IOU" "$D/good_small.npy" -o "$O/r.$ext"
  expect_ok "-o r.$ext"
done
pycheck "csv output is the matrix" '
assert np.allclose(np.loadtxt(sys.argv[1], delimiter=",", ndmin=2), np.load(sys.argv[2]))' "$O/r.csv" "$O/r.npy"
run "$IOU" "$D/good_small.npy" --to json
expect_stdout_has "[" "--to json"
rm -f "$O"/*

# ------------------------------------------------------------ bad options and shapes
G=$D/good_small.npy
bad_option iou 64 "metric" --metric bogus "$G"
bad_option iou 64 "format" --format xyz "$G"
bad_option iou 64 "format-a" --format-a xyz "$G"
bad_option iou 64 "sparse min-iou" --sparse "$G"
bad_option iou 64 "sparse min-iou" --min-iou 0.5 "$G"
bad_option iou 64 "min-iou" --sparse --min-iou nan "$G"
bad_option iou 64 "" --sparse --min-iou x "$G"
bad_option iou 64 "aligned" --sparse --min-iou 0.5 --aligned "$G"
bad_option iou 64 "rotated giou" --rotated -m giou "$FX/rot_a.npy"
bad_option iou 64 "rotated format" --rotated -f xywh "$FX/rot_a.npy"
bad_option iou 64 "rotated legacy" --rotated --legacy-pixels "$FX/rot_a.npy"
bad_option iou 64 "radians rotated" --radians "$G"
bad_option iou 64 "" "$G" "$G" "$G"
bad_option iou 64 "" --to png "$G"
bad_option iou 64 "bogus" --bogus "$G"
bad_option iou 64 "" --threads x "$G"
run "$IOU" "$D/shape5.npy" -o "$O/x.npy"
expect_error 65 "shape5.npy [..., N, 4] [3, 5]" "[3, 5] boxes without --rotated"
run "$IOU" --rotated "$G" -o "$O/x.npy"
expect_error 65 "[..., N, 5]" "[3, 4] boxes with --rotated"
run "$IOU" "$D/scalar.npy" -o "$O/x.npy"
expect_error 65 "scalar.npy shape" "a 0-d tensor"
run "$IOU" "$D/three.npy" -o "$O/x.npy"
expect_error 65 "three.npy 3 tensors" "a stream of three tensors"
run "$IOU" "$G" /nonexistent/b.npy -o "$O/x.npy"
expect_error 66 "/nonexistent/b.npy" "missing B"
expect_empty_dir "$O" "bad shapes and inputs leave no output"

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix iou out.npy
BAD_ONLY='missing|empty|trunc_data_half|garbage|huge_shape' bad_input_matrix iou out.npy --sparse --min-iou 0.5
bad_output_matrix iou "$G" "$D/big500.npy"
bad_output_matrix iou "$G" "$D/many.npy" --sparse --min-iou 0.01

finish
