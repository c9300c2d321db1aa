#!/usr/bin/env bash
# nms end to end: torchvision's nms and batched_nms on the committed fixtures
# (tests/fixtures/boxes, from make_boxes.py) index for index, ties in index
# order; every input form (two files, a stream, one detection matrix, stdin,
# text); --score-threshold and --max-output against their definitions;
# soft-NMS against a plain numpy implementation; rotated boxes against a
# numpy greedy loop over iou --rotated; formats and legacy pixels; every
# option of --help; bad options (64), bad data (65), missing input (66), bad
# outputs (73, 74) with no output left behind.
TOOL=nms
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
NMS=$(bin nms)
FX=${NNKIT_FIXTURES:?}/boxes
D=$T/in
O=$(freshdir o)
mkdir -p "$D"

# ------------------------------------------------------------ --help, options
expect_help_version nms --iou-threshold --score-threshold --max-output --classes --soft --sigma --format \
  --legacy-pixels --rotated --radians --f64 --help --version --output --to --quiet --threads

# ------------------------------------------------------------ inputs
py '
d, fx = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(8)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
b = np.load(os.path.join(fx, "nms_boxes.npy")); s = np.load(os.path.join(fx, "nms_scores.npy"))
c = np.load(os.path.join(fx, "nms_classes.npy"))
save("dets5", np.column_stack([b, s]))
save("dets6", np.column_stack([b, s, c]).astype(np.float64))
with open(os.path.join(d, "stream2.npy"), "wb") as f:
    np.save(f, b); np.save(f, s)
with open(os.path.join(d, "stream3.npy"), "wb") as f:
    np.save(f, b); np.save(f, s); np.save(f, c.astype(np.int64))
save("scores_col", s[:, None])
save("scores_f16", s.astype(np.float16))
# Boxes on a quarter-pixel grid: xywh and cxcywh convert exactly.
q = np.round(b * 4) / 4
save("q_xyxy", q); save("q_xywh", np.column_stack([q[:, :2], q[:, 2:] - q[:, :2]]))
save("q_cxcywh", np.column_stack([(q[:, :2] + q[:, 2:]) / 2, q[:, 2:] - q[:, :2]]))
save("q_plus1", q + np.array([0, 0, 1, 1], np.float32))
# Ties: five identical boxes of equal score, and disjoint boxes of equal score.
save("tie_boxes", np.array([[0, 0, 1, 1]] * 5 + [[5, 5, 6, 6], [3, 3, 4, 4], [8, 8, 9, 9]], np.float32))
save("tie_scores", np.array([1, 2, 2, 1, 1, 1, 3, 1], np.float32))
# Soft-NMS: a small crowded set.
xy = rng.uniform(0, 60, (150, 2)); wh = rng.uniform(5, 30, (150, 2))
save("soft_boxes", np.concatenate([xy, xy + wh], 1).astype(np.float32))
save("soft_scores", np.round(rng.uniform(0, 1, 150), 2).astype(np.float32))
# Rotated boxes.
r = np.column_stack([rng.uniform(0, 50, (120, 2)), rng.uniform(3, 20, (120, 2)), rng.uniform(-90, 90, 120)])
save("rot", r); rr = r.copy(); rr[:, 4] = np.deg2rad(rr[:, 4]); save("rot_rad", rr)
save("rot_scores", np.round(rng.uniform(0, 1, 120), 1))
# Many disjoint boxes: a keep list larger than a pipe buffer.
k = np.arange(20000, dtype=np.float32)
save("disjoint", np.column_stack([k * 2, k * 0, k * 2 + 1, k * 0 + 1, 1 - k / 20000]))
save("good", np.column_stack([b[:10], s[:10]]))
save("bad_box", np.column_stack([np.array([[0, 0, 1, 1], [0, 0, 1, 1], [3, 0, 1, 1]], np.float32), [0.5, 0.4, 0.3]]))
save("nan_scores", np.array([0.5, np.nan, 0.2], np.float32))
save("inf_scores", np.array([np.inf, 0.5, 0.2], np.float32))
save("three_boxes", np.array([[0, 0, 1, 1], [0, 0, 1, 1], [3, 0, 4, 1]], np.float32))
save("two_scores", np.array([0.5, 0.4], np.float32))
save("frac_classes", np.array([0, 1.5, 2]))
save("box3", np.zeros((3, 3), np.float32))
save("scores_2d", np.zeros((3, 2), np.float32))
save("seven_cols", np.zeros((3, 7), np.float32))
with open(os.path.join(d, "four.npy"), "wb") as f:
    for _ in range(4): np.save(f, s)
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
def same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == np.int64, got.dtype
    assert np.array_equal(got, want), (got[:10], want[:10], len(got), len(want))
def iou_matrix(b):
    b = b.astype(np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(b[:, None, :2], b[None, :, :2]); rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(rb - lt, np.float32(0)); inter = wh[..., 0] * wh[..., 1]
    with np.errstate(all="ignore"):
        return np.nan_to_num(inter / (area[:, None] + area[None, :] - inter))
def greedy(iou, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep, gone = [], np.zeros(len(scores), bool)
    for i in order:
        if gone[i]: continue
        keep.append(i); gone |= iou[i] > thr
    return np.array(keep, np.int64)
def soft_nms(iou, scores, method, thr, sigma, min_score):
    s = scores.astype(np.float64).copy(); alive = s > min_score; out = []
    while alive.any():
        cand = np.nonzero(alive)[0]
        i = cand[np.lexsort((cand, -s[cand]))[0]]
        out.append((s[i], i)); alive[i] = False
        for j in np.nonzero(alive)[0]:
            v = float(iou[i, j])
            s[j] *= (1 - v if v > thr else 1) if method == "linear" else np.exp(-(v * v) / sigma)
            if not s[j] > min_score: alive[j] = False
    out.sort(key=lambda t: (-t[0], t[1]))
    return np.array([i for _, i in out], np.int64), np.array([v for v, _ in out])
'

# ------------------------------------------------------------ torchvision's nms and batched_nms
for t in 0.3 0.5 0.7; do
  run "$NMS" "$FX/nms_boxes.npy" "$FX/nms_scores.npy" --iou-threshold "$t" -o "$O/k.npy"
  expect_ok "nms at $t"
  pycheck "nms at $t equals torchvision.ops.nms" 'same(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/k.npy" "$FX/nms_keep_$t.npy"
done
for t in 0.5 0.7; do
  run "$NMS" "$FX/nms_boxes.npy" "$FX/nms_scores.npy" --classes "$FX/nms_classes.npy" -t "$t" -o "$O/k.npy"
  expect_ok "--classes at $t"
  pycheck "--classes at $t equals torchvision.ops.batched_nms" 'same(np.load(sys.argv[1]), np.load(sys.argv[2]))' \
    "$O/k.npy" "$FX/batched_keep_$t.npy"
done
run "$NMS" "$D/tie_boxes.npy" "$D/tie_scores.npy" -t 0.5 --to txt
expect_stdout_eq "6 1 5 7" "ties: the lower index is kept and listed first"
run "$NMS" "$D/tie_boxes.npy" "$D/tie_scores.npy" -t 1 --to txt
expect_stdout_eq "6 1 2 0 3 4 5 7" "-t 1 keeps all, by score then index"
run "$NMS" "$D/tie_boxes.npy" "$D/tie_scores.npy" -t 0 --to txt
expect_stdout_eq "6 1 5 7" "-t 0: only overlapping boxes suppress (touching ones do not)"

# ------------------------------------------------------------ input forms
run "$NMS" "$FX/nms_boxes.npy" "$FX/nms_scores.npy" -t 0.5 -o "$T/ref.npy"
run "$NMS" "$FX/nms_boxes.npy" "$FX/nms_scores.npy" -c "$FX/nms_classes.npy" -t 0.5 -o "$T/refc.npy"
for how in "$NMS $D/dets5.npy -t 0.5" "$NMS $D/stream2.npy -t 0.5" "cat $D/stream2.npy | $NMS - -t 0.5" \
           "$NMS -t 0.5 < $D/dets5.npy" "cat $FX/nms_boxes.npy | $NMS - $FX/nms_scores.npy -t 0.5" \
           "$NMS $FX/nms_boxes.npy $D/scores_col.npy -t 0.5" \
           "$(bin tensor-convert) $D/dets5.npy --to csv | $NMS - -t 0.5" \
           "$NMS $FX/nms_boxes.npy $FX/nms_scores.npy --iou-threshold=0.5 -q --threads 1"; do
  run_sh "$how"
  expect_ok "$how"
  expect_file_eq "$T/out" "$T/ref.npy" "$how: the same kept boxes"
done
for how in "$NMS $D/dets6.npy -t 0.5" "$NMS $D/stream3.npy -t 0.5" "cat $D/stream3.npy | $NMS -t 0.5 -" \
           "$NMS $D/dets5.npy -c $FX/nms_classes.npy -t 0.5"; do
  run_sh "$how"
  expect_ok "$how"
  expect_file_eq "$T/out" "$T/refc.npy" "$how: per-class"
done
run "$NMS" "$FX/nms_boxes.npy" "$D/scores_f16.npy" -t 0.5 -o "$O/k16.npy"
expect_ok "float16 scores"
pycheck "float16 scores are ordered as float16" '
b, s = np.load(sys.argv[2]), np.load(sys.argv[3]).astype(np.float64)
same(np.load(sys.argv[1]), greedy(iou_matrix(b), s, 0.5))' "$O/k16.npy" "$FX/nms_boxes.npy" "$D/scores_f16.npy"

# ------------------------------------------------------------ thresholds and limits
for st in 0.2 0.5 0.95 1; do
  run "$NMS" "$FX/nms_boxes.npy" "$FX/nms_scores.npy" -t 0.5 --score-threshold "$st" -o "$O/k.npy"
  expect_ok "--score-threshold $st"
  pycheck "--score-threshold $st keeps torchvision's result above it" '
keep, s = np.load(sys.argv[2]), np.load(sys.argv[3]); st = float(sys.argv[4])
same(np.load(sys.argv[1]), keep[s[keep] > np.float32(st)])' "$O/k.npy" "$FX/nms_keep_0.5.npy" "$FX/nms_scores.npy" "$st"
done
for k in 0 1 10 100000; do
  run "$NMS" "$FX/nms_boxes.npy" "$FX/nms_scores.npy" -t 0.5 --max-output "$k" -o "$O/k.npy"
  expect_ok "--max-output $k"
  pycheck "--max-output $k: the first $k" 'same(np.load(sys.argv[1]), np.load(sys.argv[2])[:int(sys.argv[3])])' \
    "$O/k.npy" "$FX/nms_keep_0.5.npy" "$k"
  run "$NMS" "$D/dets6.npy" -t 0.7 -k "$k" -s 0.3 -o "$O/kc.npy"
  pycheck "-k $k -s 0.3 per class (float64 detections: compared in float64)" '
keep, s = np.load(sys.argv[2]), np.load(sys.argv[3]).astype(np.float64)
same(np.load(sys.argv[1]), keep[s[keep] > 0.3][:int(sys.argv[4])])' "$O/kc.npy" "$FX/batched_keep_0.7.npy" "$FX/nms_scores.npy" "$k"
done
run "$NMS" "$FX/nms_boxes.npy" "$FX/nms_scores.npy" -t 0.5 --max-output -1 -o "$O/k.npy"
expect_file_eq "$O/k.npy" "$T/ref.npy" "--max-output -1 is all"

# ------------------------------------------------------------ formats, legacy pixels, float64
run "$NMS" "$D/q_xyxy.npy" "$FX/nms_scores.npy" -t 0.5 -o "$O/q.npy"
pycheck "quarter-pixel boxes: as the numpy greedy loop" '
same(np.load(sys.argv[1]), greedy(iou_matrix(np.load(sys.argv[2])), np.load(sys.argv[3]), 0.5))' \
  "$O/q.npy" "$D/q_xyxy.npy" "$FX/nms_scores.npy"
for f in xywh cxcywh; do
  run "$NMS" --format "$f" "$D/q_$f.npy" "$FX/nms_scores.npy" -t 0.5 -o "$O/q-$f.npy"
  expect_ok "--format $f"
  expect_file_eq "$O/q-$f.npy" "$O/q.npy" "--format $f: the same boxes, the same result"
done
run "$NMS" --legacy-pixels "$D/q_xyxy.npy" "$FX/nms_scores.npy" -t 0.5 -o "$O/q-legacy.npy"
run "$NMS" "$D/q_plus1.npy" "$FX/nms_scores.npy" -t 0.5 -o "$O/q-plus1.npy"
expect_file_eq "$O/q-legacy.npy" "$O/q-plus1.npy" "--legacy-pixels is x2 + 1, y2 + 1"
run "$NMS" --f64 "$D/q_xyxy.npy" "$FX/nms_scores.npy" -t 0.5 -o "$O/q64.npy"
expect_ok "--f64"
pycheck "--f64 on quarter-pixel boxes: as the float64 greedy loop" '
b = np.load(sys.argv[2]).astype(np.float64)
area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
lt = np.maximum(b[:, None, :2], b[None, :, :2]); rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
wh = np.maximum(rb - lt, 0); inter = wh[..., 0] * wh[..., 1]
same(np.load(sys.argv[1]), greedy(inter / (area[:, None] + area[None, :] - inter), np.load(sys.argv[3]), 0.5))' \
  "$O/q64.npy" "$D/q_xyxy.npy" "$FX/nms_scores.npy"
rm -f "$O"/*

# ------------------------------------------------------------ soft-NMS
for spec in "linear 0.3 -inf" "linear 0.5 0.2" "gaussian 0.5 0.001" "gaussian 0.1 0.3"; do
  set -- $spec
  args=(--soft "$1" -o "$O/soft.npy")
  if [ "$1" = linear ]; then args+=(-t "$2"); else args+=(--sigma "$2"); fi
  [ "$3" != -inf ] && args+=(--score-threshold "$3")
  run "$NMS" "$D/soft_boxes.npy" "$D/soft_scores.npy" "${args[@]}"
  expect_ok "--soft $spec"
  pycheck "--soft $1 ($2, min score $3) equals the plain soft-NMS loop" '
keep, sc = load_stream(sys.argv[1]); b, s = np.load(sys.argv[2]), np.load(sys.argv[3])
m, p, ms = sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
k, v = soft_nms(iou_matrix(b), s, m, p if m == "linear" else 0, p if m == "gaussian" else 0.5, ms)
same(keep, k)
assert sc.dtype == np.float32 and np.allclose(sc, v, rtol=1e-6, atol=1e-7), (sc[:5], v[:5])' \
    "$O/soft.npy" "$D/soft_boxes.npy" "$D/soft_scores.npy" "$1" "$2" "$3"
done
run "$NMS" "$D/soft_boxes.npy" "$D/soft_scores.npy" --soft gaussian --f64 -k 5 --to txt
expect_ok "--soft gaussian --f64 -k 5 --to txt"
expect_stdout_has "# tensor scores" "soft-NMS writes keep and scores"
run "$NMS" "$D/soft_boxes.npy" "$D/soft_scores.npy" --soft gaussian --f64 -o "$O/s64.npy"
pycheck "--soft --f64 writes float64 scores" 'k, s = load_stream(sys.argv[1]); assert s.dtype == np.float64 and len(k) == 150' "$O/s64.npy"

# ------------------------------------------------------------ rotated
"$(bin iou)" --rotated --f64 "$D/rot.npy" -o "$O/rot-iou.npy" 2>"$T/err" || fail "iou --rotated for the reference"
for t in 0.1 0.4; do
  run "$NMS" --rotated "$D/rot.npy" "$D/rot_scores.npy" -t "$t" -o "$O/rk.npy"
  expect_ok "--rotated -t $t"
  pycheck "--rotated -t $t equals the greedy loop over iou --rotated" '
same(np.load(sys.argv[1]), greedy(np.load(sys.argv[2]), np.load(sys.argv[3]), float(sys.argv[4])))' \
    "$O/rk.npy" "$O/rot-iou.npy" "$D/rot_scores.npy" "$t"
  run "$NMS" --rotated --radians "$D/rot_rad.npy" "$D/rot_scores.npy" -t "$t" -o "$O/rk-rad.npy"
  expect_file_eq "$O/rk-rad.npy" "$O/rk.npy" "--radians -t $t: the same boxes, the same result"
done
rm -f "$O"/*

# ------------------------------------------------------------ output formats
expect_to_formats nms "$D/good.npy" -t 0.5
for ext in txt csv json safetensors npy; do
  run "$NMS" "$D/good.npy" -t 0.5 -o "$O/k.$ext"
  expect_ok "-o k.$ext"
done
pycheck "txt output is the index list" 'assert np.array_equal(np.loadtxt(sys.argv[1], ndmin=1), np.load(sys.argv[2]))' \
  "$O/k.txt" "$O/k.npy"
rm -f "$O"/*

# ------------------------------------------------------------ bad options, bad data
G=$D/good.npy
bad_option nms 64 "iou-threshold" "$G"
bad_option nms 64 "iou-threshold" -t 1.5 "$G"
bad_option nms 64 "iou-threshold" -t -0.1 "$G"
bad_option nms 64 "iou-threshold" -t nan "$G"
bad_option nms 64 "" -t x "$G"
bad_option nms 64 "score-threshold" -t 0.5 -s nan "$G"
bad_option nms 64 "max-output" -t 0.5 -k -2 "$G"
bad_option nms 64 "soft" --soft hard "$G"
bad_option nms 64 "sigma" -t 0.5 --sigma 0.3 "$G"
bad_option nms 64 "sigma" --soft gaussian --sigma 0 "$G"
bad_option nms 64 "sigma" --soft gaussian --sigma -1 "$G"
bad_option nms 64 "iou-threshold" --soft linear "$G"
bad_option nms 64 "rotated format" --rotated -f xywh -t 0.5 "$D/rot.npy" "$D/rot_scores.npy"
bad_option nms 64 "radians" --radians -t 0.5 "$G"
bad_option nms 64 "format" -f xyz -t 0.5 "$G"
bad_option nms 64 "classes" -t 0.5 -c "$FX/nms_classes.npy" "$D/dets6.npy"
bad_option nms 64 "" -t 0.5 "$G" "$G" "$G"
bad_option nms 64 "" -t 0.5 --to png "$G"
bad_option nms 64 "bogus" -t 0.5 --bogus "$G"
F=$(freshdir fail)
run "$NMS" -t 0.5 "$D/bad_box.npy" -o "$F/k.npy"
expect_error 65 "box 2 x2 < x1" "an invalid box"
run "$NMS" -t 0.5 "$D/three_boxes.npy" "$D/nan_scores.npy" -o "$F/k.npy"
expect_error 65 "nan_scores.npy score 1 NaN" "a NaN score"
run "$NMS" --soft gaussian "$D/three_boxes.npy" "$D/inf_scores.npy" -o "$F/k.npy"
expect_error 65 "inf_scores.npy score 0 finite" "an infinite score with --soft"
run "$NMS" -t 0.5 "$D/three_boxes.npy" "$D/inf_scores.npy" -o "$F/k.npy"
expect_ok "infinite scores without --soft"
rm -f "$F"/*
run "$NMS" -t 0.5 "$D/three_boxes.npy" "$D/two_scores.npy" -o "$F/k.npy"
expect_error 65 "two_scores.npy 2 scores 3 boxes" "2 scores for 3 boxes"
run "$NMS" -t 0.5 "$D/three_boxes.npy" "$D/nan_scores.npy" -c "$D/frac_classes.npy" -o "$F/k.npy"
expect_error 65 "frac_classes.npy class label 1 integer" "a fractional class label"
run "$NMS" -t 0.5 "$D/box3.npy" "$D/two_scores.npy" -o "$F/k.npy"
expect_error 65 "box3.npy [N, 4] [3, 3]" "boxes of 3 numbers"
run "$NMS" -t 0.5 "$D/three_boxes.npy" "$D/scores_2d.npy" -o "$F/k.npy"
expect_error 65 "scores_2d.npy [N]" "scores of shape [3, 2]"
run "$NMS" -t 0.5 "$D/seven_cols.npy" -o "$F/k.npy"
expect_error 65 "seven_cols.npy [N, 5] [N, 6]" "one tensor of 7 columns"
run "$NMS" -t 0.5 "$D/four.npy" -o "$F/k.npy"
expect_error 65 "four.npy 4 tensors" "a stream of four tensors"
run "$NMS" -t 0.5 "$D/three_boxes.npy" /nonexistent/s.npy -o "$F/k.npy"
expect_error 66 "/nonexistent/s.npy" "missing scores"
run "$NMS" -t 0.5 -c /nonexistent/c.npy "$G" -o "$F/k.npy"
expect_error 66 "/nonexistent/c.npy" "missing classes"
expect_empty_dir "$F" "failures leave no output"

# ------------------------------------------------------------ the example pipeline
run env NNKIT_BIN="$NNKIT_BIN" PYTHON="$PY" bash "$(dirname "$0")/../../examples/boxes/run.sh" "$T/example"
expect_ok "examples/boxes/run.sh"
expect_stdout_has "182 88 128 158 121 87 176 194" "the example: per-class nms keeps one box per object"
expect_stdout_has "0.7071067811865475 1.0" "the example: the octagon of two squares"

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix nms out.npy -t 0.5
bad_output_matrix nms "$G" "$D/disjoint.npy" -t 0.5

finish
