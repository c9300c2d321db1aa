#!/usr/bin/env bash
# rope-embed end to end: every case of the PyTorch reference (tests/fixtures/
# rope, made by make_rope.py) through the real binary with the case's own
# options, its frequencies with --emit inv-freq, the cos/sin tables, layout
# conversion of a Q weight (transformers' permute) and of activations (scores
# kept), inverse round trips through pipes, streams and named tensors, every
# option of --help, the bad options and bad data with their exit codes and
# no output left behind, and the shared bad-input and bad-output matrices.
TOOL=rope-embed
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
ROPE=$(bin rope-embed)
F=${NNKIT_FIXTURES:?NNKIT_FIXTURES must name tests/fixtures}/rope
D=$T/in
mkdir -p "$D"
O=$(freshdir o)

# ------------------------------------------------------------ --help, options
expect_help_version rope-embed --base --layout --rotary-dim --partial --seq-axis --offset --positions \
  --inverse --scaling --factor --original-max-pos --beta-fast --beta-slow --mscale --mscale-all-dim \
  --no-truncate --low-freq-factor --high-freq-factor --short-factor --long-factor --attention-factor \
  --axes --grid --mrope-section --emit --seq-len --convert-layout --weights --heads \
  --help --version --output --to --quiet --threads

PYPRELUDE='
import io
def load_stream(path):
    raw = open(path, "rb").read()
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append(np.load(f))
    return out
def close(got, want, rtol=1e-6):
    """|got - want| <= rtol * the largest |want| of its row (a rotation keeps row norms)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    g, w = got.astype(np.float64), want.astype(np.float64)
    scale = np.abs(w).max(axis=-1, keepdims=True) + 1e-30
    err = (np.abs(g - w) / scale).max()
    assert err <= rtol, "relative error %g > %g" % (err, rtol)
'

# ------------------------------------------------------------ the reference, case by case
# Each case: NAME INPUT DTYPE ARGS... (fixture files named @file in cases.json).
"$PY" - "$F" >"$T/cases.txt" <<'EOF' || { echo "FATAL: cannot read cases.json" >&2; exit 1; }
import json, sys
for c in json.load(open(sys.argv[1] + "/cases.json"))["cases"]:
    args = [a.replace("@", sys.argv[1] + "/") if a.startswith("@") else a for a in c["args"]]
    print(c["name"], c["input"], *args)
EOF
ncases=0
while read -r name input args; do
  ncases=$((ncases + 1))
  # shellcheck disable=SC2086
  run "$ROPE" $args "$F/$input" -o "$O/$name.npy"
  expect_ok "case $name: rope-embed $args"
  pycheck "case $name equals the PyTorch reference (1e-6 of the row; float16: its rounding)" '
x, y, e = np.load(sys.argv[1]), np.load(sys.argv[2]), np.load(sys.argv[3])
assert y.dtype == x.dtype, (y.dtype, x.dtype)
close(y, e, 1e-3 if x.dtype == np.float16 else 1e-6)' "$F/$input" "$O/$name.npy" "$F/$name.expected.npy"
  # shellcheck disable=SC2086
  run "$ROPE" --emit inv-freq $args "$F/$input" -o "$O/$name.freq.npy"
  expect_ok "case $name: --emit inv-freq"
  pycheck "case $name: the frequencies are the float64 formulas" '
w, e = np.load(sys.argv[1]), np.load(sys.argv[2])
assert w.dtype == np.float64 and w.shape == e.shape, (w.dtype, w.shape, e.shape)
assert np.allclose(w, e, rtol=1e-13, atol=0), abs(w / e - 1).max()' "$O/$name.freq.npy" "$F/$name.inv_freq.npy"
  # --inverse undoes the case (output back through a pipe).
  # shellcheck disable=SC2086
  run_sh "$ROPE $args $F/$input | $ROPE --inverse $args"
  expect_ok "case $name: forward | --inverse"
  pycheck "case $name: --inverse undoes it" '
x = np.load(sys.argv[1]); close(np.load(sys.argv[2]), x, 2e-3 if x.dtype == np.float16 else 2e-6)' "$F/$input" "$T/out"
done <"$T/cases.txt"
[ "$ncases" -ge 25 ] && pass || fail "only $ncases reference cases in cases.json"
rm -f "$O"/*

# ------------------------------------------------------------ the cos/sin tables
run "$ROPE" --emit cos-sin "$F/x.npy" -o "$O/cs.npy"
expect_ok "--emit cos-sin of INPUT"
pycheck "--emit cos-sin: a stream of cos then sin, [seq, R] float32, as transformers" '
c, s = load_stream(sys.argv[1])
assert c.dtype == s.dtype == np.float32 and c.shape == (8, 16), (c.dtype, c.shape)
assert np.abs(c - np.load(sys.argv[2])).max() < 1e-7 and np.abs(s - np.load(sys.argv[3])).max() < 1e-7' \
  "$O/cs.npy" "$F/default_half.cos.npy" "$F/default_half.sin.npy"
run "$ROPE" --emit cos-sin --rotary-dim 16 --seq-len 8 -o "$O/cs2.npy"
expect_ok "--emit cos-sin --rotary-dim 16 --seq-len 8 (no INPUT read)"
expect_file_eq "$O/cs2.npy" "$O/cs.npy" "--emit from options equals --emit from INPUT's shape"
run "$ROPE" --emit cos-sin --rotary-dim 8 --seq-len 3 --offset 2 --layout interleaved --to safetensors -o "$O/cs.safetensors"
expect_ok "--emit cos-sin --to safetensors"
run "$(bin tensor-convert)" "$O/cs.safetensors" --key sin --to npy -o "$O/sin.npy"
expect_ok "tensor-convert --key sin of the tables"
pycheck "interleaved tables repeat each frequency, positions from --offset" '
s = np.load(sys.argv[1]); w = 10000.0 ** (-np.arange(0, 8, 2) / 8)
want = np.sin(np.arange(2, 5)[:, None] * np.repeat(w, 2)[None, :])
assert np.abs(s - want).max() < 1e-7, s' "$O/sin.npy"
run "$ROPE" --emit inv-freq --rotary-dim 128 --base 500000 --scaling llama3 --factor 8 --original-max-pos 8192 --to txt
expect_ok "--emit inv-freq --to txt"
pycheck "--emit inv-freq --to txt: llama3's 64 frequencies, the low ones divided by 8" '
w = np.array(open(sys.argv[1]).read().split(), dtype=np.float64); assert w.shape == (64,), w.shape
plain = 500000.0 ** (-np.arange(0, 128, 2) / 128)
assert w[0] == plain[0] and abs(w[-1] / plain[-1] - 1 / 8) < 1e-12, (w[0], w[-1] / plain[-1])' "$T/out"
run "$ROPE" --emit cos-sin --grid 2x3 --rotary-dim 8 -o "$O/grid.npy"
expect_ok "--emit cos-sin --grid 2x3"
pycheck "grid tables: [6, 8], first half by row, second by column" '
c, s = load_stream(sys.argv[1]); assert c.shape == (6, 8), c.shape
w = 10000.0 ** (-np.arange(0, 4, 2) / 4); rows, cols = np.divmod(np.arange(6), 3)
want = np.concatenate([np.cos(rows[:, None] * w), np.cos(rows[:, None] * w), np.cos(cols[:, None] * w), np.cos(cols[:, None] * w)], 1)
assert np.abs(c - want).max() < 1e-7' "$O/grid.npy"
run "$ROPE" --emit cos-sin --positions "$F/positions_seq.npy" --rotary-dim 4 -o "$O/p.npy"
expect_ok "--emit cos-sin --positions"
pycheck "tables at explicit positions" '
c, s = load_stream(sys.argv[1]); p = np.load(sys.argv[2]); w = 10000.0 ** (-np.arange(0, 4, 2) / 4)
assert np.abs(s - np.sin(np.concatenate([p[:, None] * w] * 2, 1))).max() < 1e-7' "$O/p.npy" "$F/positions_seq.npy"
rm -f "$O"/*

# ------------------------------------------------------------ layout conversion
run "$ROPE" --convert-layout interleaved-to-half --weights --heads 4 "$F/wq_meta.npy" -o "$O/wq_hf.npy"
expect_ok "--convert-layout interleaved-to-half --weights --heads 4"
expect_file_eq "$O/wq_hf.npy" "$F/wq_hf.npy" "a Meta Q weight converted as transformers' permute()"
run_sh "$ROPE --convert-layout half-to-interleaved --weights --heads 4 < $O/wq_hf.npy"
expect_ok "--convert-layout half-to-interleaved back"
expect_file_eq "$T/out" "$F/wq_meta.npy" "converting back gives the Meta weight"
py '
rng = np.random.default_rng(5)
np.save(sys.argv[1] + "/q.npy", rng.standard_normal((3, 6, 24)).astype(np.float32))
np.save(sys.argv[1] + "/k.npy", rng.standard_normal((3, 6, 24)).astype(np.float32))
np.save(sys.argv[1] + "/bias.npy", np.arange(32, dtype=np.int32))
' "$D"
run_sh "cat $D/q.npy $D/k.npy | $ROPE --convert-layout interleaved-to-half"
expect_ok "--convert-layout of a q, k stream"
pycheck "converting q and k alike keeps every score q.k" '
qc, kc = load_stream(sys.argv[1]); q, k = np.load(sys.argv[2]), np.load(sys.argv[3])
assert np.allclose((qc.astype(np.float64) * kc).sum(-1), (q.astype(np.float64) * k).sum(-1), rtol=1e-12, atol=1e-12)
assert not np.array_equal(qc, q)' "$T/out" "$D/q.npy" "$D/k.npy"
for R in "" "--rotary-dim 16"; do
  run_sh "cat $D/q.npy $D/k.npy | $ROPE --layout interleaved --offset 3 $R | $ROPE --convert-layout interleaved-to-half $R"
  expect_ok "rope interleaved | convert ($R)"
  cp "$T/out" "$O/a.npy"
  run_sh "cat $D/q.npy $D/k.npy | $ROPE --convert-layout interleaved-to-half $R | $ROPE --offset 3 $R"
  expect_ok "convert | rope half ($R)"
  pycheck "convert(rope interleaved) = rope half(convert) ($R)" '
a, b = load_stream(sys.argv[1]), load_stream(sys.argv[2])
assert len(a) == len(b) == 2
for x, y in zip(a, b): close(x, y)' "$O/a.npy" "$T/out"
done
run "$ROPE" --convert-layout half-to-interleaved --weights --heads 2 --rotary-dim 8 "$D/bias.npy" -o "$O/b.npy"
expect_ok "--convert-layout of a bias (int32, partial)"
pycheck "a bias: each head of 16 rows, the first 8 interleaved, the rest kept" '
b = np.load(sys.argv[1]); assert b.dtype == np.int32
head = [0, 4, 1, 5, 2, 6, 3, 7] + list(range(8, 16))
assert list(b) == head + [16 + i for i in head], b' "$O/b.npy"
rm -f "$O"/*

# The example of examples/rope: a ported Q/K weight gives the same attention scores.
if [ -n "$NNKIT_SRC" ]; then
  run env NNKIT_BIN="$NNKIT_BIN" bash "$NNKIT_SRC/examples/rope/port_q_weight.sh" "$T/example"
  [ "$RC" -eq 0 ] && pass || fail "examples/rope/port_q_weight.sh: exit $RC ($(tail -n 3 "$T/err"))"
  expect_stdout_has "the ported layer computes the same attention" "examples/rope/port_q_weight.sh"
fi

# ------------------------------------------------------------ pipes, streams, names, formats
run_sh "cat $F/x.npy | $ROPE | $ROPE --inverse -"
expect_ok "cat | rope-embed | rope-embed --inverse -"
pycheck "a pipe there and back" 'close(np.load(sys.argv[2]), np.load(sys.argv[1]), 2e-6)' "$F/x.npy" "$T/out"
run_sh "$ROPE < $F/x.npy"
expect_ok "rope-embed < x.npy"
cp "$T/out" "$O/ref.npy"
pycheck "stdin equals the reference" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/ref.npy" "$F/default_half.expected.npy"
for opts in "-q" "--quiet" "--threads 1" "--threads 3" "--output -" "--layout half --base 10000 --offset 0"; do
  # shellcheck disable=SC2086
  run "$ROPE" $opts "$F/x.npy"
  expect_ok "$opts"
  expect_file_eq "$T/out" "$O/ref.npy" "$opts does not change the output"
done
run_sh "cat $F/x.npy $F/x_f16.npy $F/x_f64.npy | $ROPE --offset 3"
expect_ok "a stream of three dtypes and shapes"
pycheck "a stream: each tensor rotated on its own, dtype kept" '
s = load_stream(sys.argv[1]); assert [a.dtype for a in s] == [np.float32, np.float16, np.float64], [a.dtype for a in s]
assert [a.shape for a in s] == [(2, 3, 8, 16), (3, 8, 16), (3, 8, 16)]' "$T/out"
run "$(bin tensor-convert)" "$F/x.npy" --names query -o "$O/named.safetensors"
run "$ROPE" "$O/named.safetensors" -o "$O/rot.safetensors"
expect_ok "safetensors in and out"
run "$(bin tensor-convert)" "$O/rot.safetensors" --key query -o "$O/rot.npy"
expect_ok "the rotated tensor keeps its name"
expect_file_eq "$O/rot.npy" "$O/ref.npy" "safetensors input gives the same values"
py 'np.save(sys.argv[1] + "/small.npy", np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32))' "$D"
expect_to_formats rope-embed "$D/small.npy"
run "$ROPE" "$D/small.npy" --to csv
expect_ok "--to csv"
[ "$(wc -l <"$T/out")" -ge 6 ] && pass || fail "--to csv: fewer than 6 lines"
rm -f "$O"/*

# ------------------------------------------------------------ bad options (64), nothing left behind
X=$F/x.npy
bad_option rope-embed 64 "rotary-dim even" --rotary-dim 7 "$X"
bad_option rope-embed 64 "rotary-dim" --rotary-dim 0 "$X"
bad_option rope-embed 64 "rotary-dim" --rotary-dim -4 "$X"
bad_option rope-embed 64 "partial" --partial 0 "$X"
bad_option rope-embed 64 "partial" --partial 1.5 "$X"
bad_option rope-embed 64 "rotary-dim partial" --rotary-dim 8 --partial 0.5 "$X"
bad_option rope-embed 64 "scaling" --scaling ntk "$X"
bad_option rope-embed 64 "layout" --layout neox "$X"
bad_option rope-embed 64 "factor none" --factor 2 "$X"
bad_option rope-embed 64 "beta-fast yarn" --scaling linear --factor 2 --beta-fast 8 "$X"
bad_option rope-embed 64 "low-freq-factor llama3" --scaling yarn --factor 2 --original-max-pos 64 --low-freq-factor 2 "$X"
bad_option rope-embed 64 "short-factor longrope" --short-factor "$F/short_factor.npy" "$X"
bad_option rope-embed 64 "attention-factor" --scaling linear --factor 2 --attention-factor 2 "$X"
bad_option rope-embed 64 "original-max-pos" --scaling linear --factor 2 --original-max-pos 64 "$X"
bad_option rope-embed 64 "needs factor" --scaling yarn --original-max-pos 64 "$X"
bad_option rope-embed 64 "original-max-pos" --scaling yarn --factor 4 "$X"
bad_option rope-embed 64 "original-max-pos" --scaling llama3 --factor 4 "$X"
bad_option rope-embed 64 "original-max-pos" --scaling dynamic --factor 4 --original-max-pos -5 "$X"
bad_option rope-embed 64 "factor" --scaling linear --factor 0.5 "$X"
bad_option rope-embed 64 "factor" --scaling linear --factor nan "$X"
bad_option rope-embed 64 "" --scaling linear --factor two "$X"
bad_option rope-embed 64 "base" --base 1 "$X"
bad_option rope-embed 64 "base" --base -10000 "$X"
bad_option rope-embed 64 "beta-fast" --scaling yarn --factor 4 --original-max-pos 64 --beta-fast 0 "$X"
bad_option rope-embed 64 "mscale" --scaling yarn --factor 4 --original-max-pos 64 --mscale -1 "$X"
bad_option rope-embed 64 "attention-factor" --scaling yarn --factor 4 --original-max-pos 64 --attention-factor 0 "$X"
bad_option rope-embed 64 "high-freq-factor" --scaling llama3 --factor 8 --original-max-pos 64 --high-freq-factor 1 "$X"
bad_option rope-embed 64 "short-factor long-factor" --scaling longrope --factor 4 --original-max-pos 64 "$X"
bad_option rope-embed 64 "axes" --axes 4 --positions "$F/positions_mrope.npy" "$X"
bad_option rope-embed 64 "axes grid positions" --axes 2 "$X"
bad_option rope-embed 64 "grid" --grid 2x "$X"
bad_option rope-embed 64 "grid" --grid 0x4 "$X"
bad_option rope-embed 64 "grid" --grid 8 "$X"
bad_option rope-embed 64 "grid" --grid 2x2x2x1 "$X"
bad_option rope-embed 64 "grid axes" --grid 2x4 --axes 3 "$X"
bad_option rope-embed 64 "grid positions" --grid 2x4 --positions "$F/positions_seq.npy" "$X"
bad_option rope-embed 64 "mrope-section" --mrope-section 2,3,2 --grid 2x2x2 "$X"
bad_option rope-embed 64 "mrope-section" --mrope-section 2,x,3 --grid 2x2x2 "$X"
bad_option rope-embed 64 "split" --axes 3 --positions "$F/positions_mrope.npy" "$X"
bad_option rope-embed 64 "weights convert-layout" --weights "$X"
bad_option rope-embed 64 "heads convert-layout" --heads 2 "$X"
bad_option rope-embed 64 "heads" --convert-layout half-to-interleaved --heads 0 "$X"
bad_option rope-embed 64 "scaling convert-layout" --convert-layout half-to-interleaved --scaling linear --factor 2 "$X"
bad_option rope-embed 64 "layout convert-layout" --convert-layout half-to-interleaved --layout half "$X"
bad_option rope-embed 64 "" --convert-layout sideways "$X"
bad_option rope-embed 64 "convert-layout emit" --convert-layout half-to-interleaved --emit inv-freq "$X"
bad_option rope-embed 64 "" --emit angles "$X"
bad_option rope-embed 64 "inverse emit" --emit cos-sin --inverse "$X"
bad_option rope-embed 64 "seq-len emit" --seq-len 8 "$X"
bad_option rope-embed 64 "seq-len" --emit cos-sin --rotary-dim 8
run "$ROPE" --emit inv-freq --rotary-dim 8
expect_ok "--emit inv-freq needs no positions"
bad_option rope-embed 64 "seq-axis" --seq-axis -1 "$X"
bad_option rope-embed 64 "seq-axis" --seq-axis 4 "$X"
bad_option rope-embed 64 "offset" --offset 9223372036854775805 "$X"
bad_option rope-embed 64 "" --to png "$X"
bad_option rope-embed 64 "bogus" --bogus "$X"
bad_option rope-embed 64 "" "$X" "$X"
# A bad option value wins over a missing input.
run "$ROPE" --rotary-dim 7 /nonexistent/x.npy
expect_error 64 "rotary-dim" "bad --rotary-dim with a missing input"

# ------------------------------------------------------------ bad data (65) and missing files (66)
make_bad_inputs
py '
d = sys.argv[1]
np.save(d + "/odd.npy", np.zeros((4, 7), np.float32))
np.save(d + "/int.npy", np.zeros((4, 8), np.int32))
np.save(d + "/flat.npy", np.zeros(8, np.float32))
np.save(d + "/pos_float.npy", np.arange(8, dtype=np.float32))
np.save(d + "/pos_short.npy", np.arange(5, dtype=np.int64))
np.save(d + "/pos_bad_batch.npy", np.zeros((3, 1, 8), np.int64))
np.save(d + "/pos_mrope_2.npy", np.zeros((2, 8), np.int64))
np.save(d + "/factor_7.npy", np.ones(7))
np.save(d + "/factor_neg.npy", -np.ones(8))
np.save(d + "/factor_2d.npy", np.ones((2, 4)))
np.save(d + "/w_odd_rows.npy", np.zeros((30, 4), np.float32))
' "$D"
bad_option rope-embed 65 "rotary 32 16" --rotary-dim 32 "$X"
bad_option rope-embed 65 "rotary even 7" "$D/odd.npy"
bad_option rope-embed 65 "rotary even partial" --partial 0.5 "$D/odd.npy"
bad_option rope-embed 65 "int32" "$D/int.npy"
bad_option rope-embed 65 "seq dim" "$D/flat.npy"
bad_option rope-embed 65 "positions integers" --positions "$D/pos_float.npy" "$X"
bad_option rope-embed 65 "positions 5 8" --positions "$D/pos_short.npy" "$X"
bad_option rope-embed 65 "positions broadcast" --positions "$D/pos_bad_batch.npy" "$X"
bad_option rope-embed 65 "positions 3 axes" --mrope-section 2,3,3 --positions "$D/pos_mrope_2.npy" "$X"
bad_option rope-embed 65 "9 8 tokens" --grid 3x3 "$X"
bad_option rope-embed 65 "short-factor 7 8" --scaling longrope --factor 4 --original-max-pos 64 \
  --short-factor "$D/factor_7.npy" --long-factor "$F/long_factor.npy" "$X"
bad_option rope-embed 65 "long-factor positive" --scaling longrope --factor 4 --original-max-pos 64 \
  --short-factor "$F/short_factor.npy" --long-factor "$D/factor_neg.npy" "$X"
bad_option rope-embed 65 "short-factor list" --scaling longrope --factor 4 --original-max-pos 64 \
  --short-factor "$D/factor_2d.npy" --long-factor "$F/long_factor.npy" "$X"
bad_option rope-embed 65 "30 rows 4 heads" --convert-layout interleaved-to-half --weights --heads 4 "$D/w_odd_rows.npy"
bad_option rope-embed 65 "rotary 16 4" --convert-layout interleaved-to-half --rotary-dim 16 --heads 4 "$X"
bad_option rope-embed 65 "garbage.bin" --positions "$BAD/garbage.bin" "$X"
bad_option rope-embed 66 "missing.npy" --positions "$T/missing.npy" "$X"
bad_option rope-embed 66 "missing.npy" --scaling longrope --factor 4 --original-max-pos 64 \
  --short-factor "$T/missing.npy" --long-factor "$F/long_factor.npy" "$X"
# The failing tensor of a stream is named; nothing is left behind.
run_sh "cat $F/x.npy $D/int.npy | $ROPE -o $O/s.npy"
expect_error 65 "tensor 1 int32" "a stream whose second tensor is int32"
expect_empty_dir "$O" "a failing stream leaves no output"

# ------------------------------------------------------------ bad input, bad output
py 'np.save(sys.argv[1] + "/big.npy", np.random.default_rng(2).standard_normal((64, 1024, 16)).astype(np.float32))' "$D"
bad_input_matrix rope-embed out.npy
BAD_ONLY='missing|empty|trunc_data_half|garbage|huge_shape|st_offsets|text_word' \
  bad_input_matrix rope-embed out.npy --convert-layout half-to-interleaved
BAD_ONLY='missing|empty|trunc_data_half|garbage|huge_shape' \
  bad_input_matrix rope-embed out.npy --emit cos-sin
bad_output_matrix rope-embed "$F/x.npy" "$D/big.npy"
bad_output_matrix rope-embed "$F/x.npy" "$D/big.npy" --scaling yarn --factor 4 --original-max-pos 64

finish
