#!/usr/bin/env bash
# tensor-plot end to end: every kind and option, the PNG decoded (by
# tensor-convert) and its pixels checked with numpy, pipes, the examples,
# bad data (wrong rank, empty, all-NaN, non-finite ranges: 65) with nothing
# left behind, bad options, and the shared bad-input and bad-output matrices.
TOOL=tensor-plot
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
PLOT=$(bin tensor-plot)
CONVERT=$(bin tensor-convert)
D=$T/in
mkdir -p "$D"
O=$(freshdir o)

expect_help_version tensor-plot --kind --trajectory --labels --alpha --point-size --density --bins --range \
  --log-y --cmap --cols --gap --line-width --title --xlabel --ylabel --width --height --dark --help --version \
  --output --to --quiet --threads

py '
d = sys.argv[1]
rng = np.random.default_rng(3)
def save(name, a): np.save(os.path.join(d, name + ".npy"), a)
save("corner", np.array([[0, 0], [10, 10]], np.float32))
save("a", rng.normal(0, 1, (200, 2)).astype(np.float32))
save("b", (rng.normal(0, 1, (200, 2)) + 3).astype(np.float64))
save("lab", rng.integers(0, 3, 200))
save("big", rng.normal(0, 1, (300000, 2)).astype(np.float32))
save("vals", np.array([0.5, 1.5, 1.2, 2.1, 2.5, 2.9, 3.0], np.float32))
save("loss", np.exp(-np.arange(100) / 20).astype(np.float32))
save("xy", np.stack([np.arange(50), np.arange(50) ** 2], 1).astype(np.int32))
save("mat", np.arange(12, dtype=np.float32).reshape(3, 4))
save("signed", np.array([[-1, 0, 2]], np.float32))
save("imgs", rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8))
save("gray", rng.integers(0, 256, (9, 8), dtype=np.uint8))
save("fimg", rng.random((6, 6, 3)).astype(np.float32))
save("traj", np.linspace(0, 1, 10)[:, None, None] * rng.normal(0, 1, (1, 30, 2)).astype(np.float32))
save("r1", np.arange(4, dtype=np.float32))
save("r3", np.zeros((2, 3, 2), np.float32))
save("empty2", np.zeros((0, 2), np.float32))
save("empty1", np.zeros(0, np.float32))
save("nan2", np.full((4, 2), np.nan, np.float32))
save("nan1", np.array([np.nan, np.inf, -np.inf], np.float32))
save("huge", np.array([[-1e308, 0], [1e308, 1]], np.float64))
save("noise", rng.integers(0, 256, (700, 700, 3), dtype=np.uint8))
' "$D"
make_bad_inputs

PYPRELUDE='
def img(path):
    a = np.load(path)
    assert a.dtype == np.uint8 and a.ndim == 3, (a.dtype, a.shape)
    return a
def near(a, rgb, tol=0):
    return np.all(np.abs(a[..., :3].astype(int) - np.array(rgb)) <= tol, axis=-1)
BLUE, ORANGE, GREEN = (31, 119, 180), (255, 127, 14), (44, 160, 44)
'
# png -> npy, for numpy.
decode() { "$CONVERT" "$1" -o "${1%.png}.npy" 2>"$T/err" || fail "tensor-convert could not decode $1"; }

# ------------------------------------------------------------ scatter
run "$PLOT" -k scatter "$D/corner.npy" -o "$O/s.png"
expect_ok "scatter of two corner points"
decode "$O/s.png"
pycheck "scatter: the two points are blue, bottom-left and top-right, nothing blue elsewhere" '
a = img(sys.argv[1]); assert a.shape == (480, 640, 3)
ys, xs = np.nonzero(near(a, BLUE))
assert len(xs) > 10
left = xs < 320
assert left.any() and (~left).any()
assert ys[left].min() > 240 and ys[~left].max() < 240     # (0,0) low, (10,10) high
assert xs[left].max() - xs[left].min() <= 6 and ys[left].max() - ys[left].min() <= 6
assert (a[0, 0] == 255).all()' "$O/s.npy"
run "$PLOT" --kind scatter "$D/a.npy" "$D/b.npy" --alpha 0.5 --point-size 8 --title "Two clouds" \
  --xlabel x --ylabel y --width 500 --height 400 -o "$O/s2.png"
expect_ok "scatter of two series with options"
decode "$O/s2.png"
pycheck "two series: both colours, --width/--height, --alpha blends" '
a = img(sys.argv[1]); assert a.shape == (400, 500, 3), a.shape
assert near(a, BLUE).sum() > 0 and near(a, ORANGE).sum() > 0
# alpha 0.5 over white: many pixels halfway between blue and white
assert near(a, (143, 187, 218), 2).sum() > 100' "$O/s2.npy"
run "$PLOT" -k scatter "$D/a.npy" --labels "$D/lab.npy" -o "$O/lab.png"
expect_ok "scatter --labels"
decode "$O/lab.png"
pycheck "--labels: points in three label colours" '
a = img(sys.argv[1])
for c in (BLUE, ORANGE, GREEN): assert near(a, c).sum() > 50, c' "$O/lab.npy"
for d in on off auto; do
  run "$PLOT" -k scatter --density $d "$D/big.npy" -o "$O/d-$d.png"
  expect_ok "scatter --density $d of 300,000 points"
  decode "$O/d-$d.png"
done
pycheck "--density on shades: many distinct blue tints; off is solid" '
on, off = img(sys.argv[1]), img(sys.argv[2])
tints = lambda a: len(np.unique(a[..., 2][(a[..., 0] < a[..., 2]) & (a[..., 2] > 100)]))
assert tints(on) > 20, tints(on)
assert near(off, BLUE).sum() > 5000
assert (img(sys.argv[3]) == on).all()' "$O/d-on.npy" "$O/d-off.npy" "$O/d-auto.npy"
run "$PLOT" -k scatter --dark "$D/a.npy" -o "$O/dark.png"
expect_ok "scatter --dark"
decode "$O/dark.png"
pycheck "--dark: a dark background" 'a = img(sys.argv[1]); assert a[0, 0].max() < 40 and np.median(a) < 60' "$O/dark.npy"

# ------------------------------------------------------------ hist
run "$PLOT" -k hist --bins 3 --range 0,3 "$D/vals.npy" -o "$O/h.png"
expect_ok "hist --bins 3 --range 0,3"
decode "$O/h.png"
pycheck "hist: bar heights in the ratio of the counts 1:2:4" '
a = img(sys.argv[1]); m = near(a, BLUE)
cols = np.nonzero(m.any(0))[0]; x0, x1 = cols.min(), cols.max()
w = (x1 - x0 + 1) / 3
h = [m[:, int(x0 + w * (k + 0.5))].sum() for k in range(3)]
assert abs(h[1] / h[0] - 2) < 0.05 and abs(h[2] / h[0] - 4) < 0.1, h' "$O/h.npy"
run "$PLOT" -k hist --log-y --bins 10 "$D/a.npy" "$D/b.npy" -o "$O/h2.png"
expect_ok "hist --log-y of two inputs overlaid"
decode "$O/h2.png"
pycheck "overlaid hist: two half-transparent colours and their overlap" '
a = img(sys.argv[1])
assert near(a, (143, 187, 218), 2).sum() > 100 and near(a, (255, 191, 135), 2).sum() > 100' "$O/h2.npy"

# ------------------------------------------------------------ line
run "$PLOT" -k line "$D/loss.npy" "$D/xy.npy" --line-width 3 -o "$O/l.png"
expect_ok "line of [N] and [N, 2] series"
decode "$O/l.png"
pycheck "line: both series drawn" 'a = img(sys.argv[1]); assert near(a, BLUE).sum() > 200 and near(a, ORANGE).sum() > 200' "$O/l.npy"

# ------------------------------------------------------------ heatmap
run "$PLOT" -k heatmap "$D/mat.npy" -o "$O/hm.png"
expect_ok "heatmap (viridis)"
decode "$O/hm.png"
pycheck "heatmap: the 12 cells are viridis at (v - 0) / 11, in order" '
a = img(sys.argv[1])
ends = {(68, 1, 84): 0, (253, 231, 37): 11}
for rgb, v in ends.items(): assert near(a, rgb).sum() > 100, rgb
ys, xs = np.nonzero(near(a, (68, 1, 84))); yb, xb = np.nonzero(near(a, (253, 231, 37)))
assert ys.mean() < yb.mean() and xs.mean() < xb.mean()   # cell 0 top-left, 11 bottom-right' "$O/hm.npy"
for cm in viridis magma gray coolwarm; do
  run "$PLOT" -k heatmap --cmap $cm "$D/signed.npy" -o "$O/cm-$cm.png"
  expect_ok "heatmap --cmap $cm"
  decode "$O/cm-$cm.png"
done
pycheck "coolwarm is centred at 0: the zero cell is the middle colour (221,221,221)" '
a = img(sys.argv[1]); assert near(a, (221, 221, 221), 1).sum() > 500' "$O/cm-coolwarm.npy"
pycheck "gray: black and white cells" 'a = img(sys.argv[1]); assert near(a, (0, 0, 0)).sum() > 500 and near(a, (255, 255, 255)).sum() > 500' "$O/cm-gray.npy"
pycheck "magma: its dark end" 'a = img(sys.argv[1]); assert near(a, (0, 0, 4), 1).sum() > 500' "$O/cm-magma.npy"
run "$PLOT" -k heatmap --range 0,100 "$D/mat.npy" -o "$O/hr.png"
expect_ok "heatmap --range"

# ------------------------------------------------------------ image / grid
run "$PLOT" -k grid --cols 2 --gap 3 "$D/imgs.npy" -o "$O/g.png"
expect_ok "grid --cols 2 --gap 3"
decode "$O/g.png"
pycheck "grid: every tile equals its source image exactly" '
a, src = img(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == (3 * 3 + 3 * 6 + 3, 3 + 2 * 7 + 3 + 3, 3), a.shape
for k in range(5):
    y, x = 3 + (k // 2) * 9, 3 + (k % 2) * 10
    assert (a[y:y + 6, x:x + 7] == src[k]).all(), k' "$O/g.npy" "$D/imgs.npy"
run "$PLOT" -k image "$D/gray.npy" --gap 0 -o "$O/i.png"
expect_ok "image of [H, W] grey"
decode "$O/i.png"
pycheck "image: grey repeated into RGB, exactly" '
a, g = img(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == (9, 8, 3) and all((a[..., c] == g).all() for c in range(3))' "$O/i.npy" "$D/gray.npy"
run "$PLOT" -k image --range 0,1 "$D/fimg.npy" -o "$O/f.png"
expect_ok "image of float32 with --range"
run "$PLOT" -k grid "$BAD/good.png" "$BAD/good.png" --title T -o "$O/pngs.png"
expect_ok "grid of PNG files with a title"

# ------------------------------------------------------------ trajectory
run "$PLOT" --trajectory "$D/traj.npy" --title flow -o "$O/t.png"
expect_ok "--trajectory"
decode "$O/t.png"
pycheck "trajectory: ends marked orange, starts grey" '
a = img(sys.argv[1]); assert near(a, ORANGE).sum() > 30 and near(a, (127, 127, 127)).sum() > 5' "$O/t.npy"

# ------------------------------------------------------------ pipes and stdout
run_sh "cat $D/a.npy $D/b.npy | $PLOT -k scatter | $CONVERT - -o $O/pipe.npy"
expect_ok "a stream on stdin, the PNG on stdout"
pycheck "piped: two series from one stream" 'a = img(sys.argv[1]); assert near(a, BLUE).sum() > 0 and near(a, ORANGE).sum() > 0' "$O/pipe.npy"
run "$PLOT" -k hist "$D/vals.npy" --to png -o "$O/noext"
expect_ok "--to png to a file without extension"
[ "$(head -c 4 "$O/noext" | od -An -c | tr -d ' ')" = "211PNG" ] && pass || fail "--to png wrote no PNG"

# ------------------------------------------------------------ the examples
run env NNKIT_BIN="$NNKIT_BIN" bash "$(dirname "$0")/../../examples/plot/run.sh" "$T/ex"
[ "$RC" -eq 0 ] && pass || fail "examples/plot/run.sh failed (exit $RC): $(tail -c 300 "$T/err")"

# ------------------------------------------------------------ bad data: 65, nothing left
badplot() {  # badplot WORDS ARGS...
  local words=$1 out
  shift
  out=$(freshdir badplot)
  run "$PLOT" "$@" -o "$out/out.png"
  expect_error 65 "$words" "tensor-plot $*"
  expect_empty_dir "$out" "tensor-plot $*"
}
badplot "scatter [N, 2] shape" -k scatter "$D/r1.npy"
badplot "scatter shape" -k scatter "$D/r3.npy"
badplot "line shape" -k line "$D/r3.npy"
badplot "heatmap 2-D" -k heatmap "$D/r1.npy"
badplot "heatmap 2-D" -k heatmap "$D/r3.npy"
badplot "image shape" -k image "$D/r1.npy"
badplot "trajectory [S, N, 2]" --trajectory "$D/a.npy"
badplot "empty" -k scatter "$D/empty2.npy"
badplot "empty" -k hist "$D/empty1.npy"
badplot "empty" -k line "$D/empty1.npy"
badplot "empty" -k heatmap "$D/empty2.npy"
badplot "empty" -k grid "$D/empty2.npy"
badplot "finite" -k scatter "$D/nan2.npy"
badplot "finite" -k hist "$D/nan1.npy"
badplot "finite" -k line "$D/nan1.npy"
badplot "finite" -k heatmap "$D/nan2.npy"
badplot "finite" --trajectory "$D/r3.npy" --range nan,1
badplot "range finite" -k hist "$D/vals.npy" --range 0,inf
badplot "range finite" -k hist "$D/vals.npy" --range -inf,0
badplot "range finite" -k heatmap "$D/mat.npy" --range nan,1
badplot "range finite" -k scatter "$D/huge.npy"
badplot "labels" -k scatter "$D/a.npy" --labels "$D/r1.npy"

# ------------------------------------------------------------ bad options: 64
bad_option tensor-plot 64 "kind" "$D/a.npy"
bad_option tensor-plot 64 "kind" -k pie "$D/a.npy"
bad_option tensor-plot 64 "range" -k hist --range 1 "$D/vals.npy"
bad_option tensor-plot 64 "range" -k hist --range 2,1 "$D/vals.npy"
bad_option tensor-plot 64 "range" -k hist --range a,b "$D/vals.npy"
bad_option tensor-plot 64 "alpha" -k scatter --alpha 0 "$D/a.npy"
bad_option tensor-plot 64 "point-size" -k scatter --point-size -1 "$D/a.npy"
bad_option tensor-plot 64 "bins" -k hist --bins 0 "$D/vals.npy"
bad_option tensor-plot 64 "width" -k hist --width 5 "$D/vals.npy"
bad_option tensor-plot 64 "cols" -k grid --cols -1 "$D/imgs.npy"
bad_option tensor-plot 64 "gap" -k grid --gap -2 "$D/imgs.npy"
bad_option tensor-plot 64 "line-width" -k line --line-width 0 "$D/loss.npy"
bad_option tensor-plot 64 "density" -k scatter --density maybe "$D/a.npy"
bad_option tensor-plot 64 "cmap" -k heatmap --cmap jet "$D/mat.npy"
bad_option tensor-plot 64 "labels" -k hist --labels "$D/lab.npy" "$D/vals.npy"
bad_option tensor-plot 64 "trajectory" --trajectory -k hist "$D/traj.npy"
bad_option tensor-plot 64 "heatmap one" -k heatmap "$D/mat.npy" "$D/mat.npy"
bad_option tensor-plot 64 "range" -k image "$D/fimg.npy"
bad_option tensor-plot 64 "" -k hist --to npy "$D/vals.npy"

expect_to_formats tensor-plot "$BAD/good.png" -k image
bad_input_matrix tensor-plot out.png -k hist
bad_output_matrix tensor-plot "$D/gray.npy" "$D/noise.npy" -k image
finish
