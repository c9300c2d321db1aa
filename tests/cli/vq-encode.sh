#!/usr/bin/env bash
# vq-encode end to end: nearest codes against faiss (tests/fixtures/vq, made by
# make_vq.py) and against brute force in float64 through the real binary,
# including the far-from-origin case where faiss's float32 arithmetic misses;
# cosine, top-k, distances and reconstructions to files or into the stream,
# residual, product and FSQ codes against numpy, PNG colour quantization and
# patches, statistics on stderr and as JSON, any leading shape, streams and
# pipes, thread-count independence, every option of --help, bad options (64)
# and bad data (65) with nothing left behind, and the shared bad-input and
# bad-output matrices.
TOOL=vq-encode
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
ENC=$(bin vq-encode)
DEC=$(bin vq-decode)
F=${NNKIT_FIXTURES:?NNKIT_FIXTURES must name tests/fixtures}/vq
D=$T/in
mkdir -p "$D"
O=$(freshdir o)

# ------------------------------------------------------------ --help, options
expect_help_version vq-encode --codebook --metric --residual --pq --fsq --topk --distances --quantized --stats \
  --stats-json --patch --help --version --output --to --quiet --threads

PYPRELUDE='
import io
def load_stream(path):
    raw = open(path, "rb").read()
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append(np.load(f))
    return out
def dist(x, cb):
    x = np.asarray(x, np.float64).reshape(-1, cb.shape[-1]); cb = np.asarray(cb, np.float64)
    return ((x[:, None, :] - cb[None]) ** 2).sum(-1)
def cosine(x, cb):
    x = np.asarray(x, np.float64).reshape(-1, cb.shape[-1]); cb = np.asarray(cb, np.float64)
    nx = np.linalg.norm(x, axis=1)[:, None]; nc = np.linalg.norm(cb, axis=1)[None]
    return np.where((nx > 0) & (nc > 0), (x @ cb.T) / np.where((nx > 0) & (nc > 0), nx * nc, 1), 0)
def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    assert np.array_equal(a, b), np.argwhere(a != b)[:5]
'

# ------------------------------------------------------------ inputs
py '
d = sys.argv[1]
rng = np.random.default_rng(5)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
save("x3d", rng.standard_normal((5, 7, 16)).astype(np.float32))
save("cb_empty", np.zeros((0, 16), np.float32))
save("cb_nan", np.where(np.arange(64 * 16).reshape(64, 16) == 40, np.nan, 1).astype(np.float32))
save("x_nan", np.where(np.arange(10 * 16).reshape(10, 16) == 37, np.nan, 0.5).astype(np.float32))
save("x_inf", np.where(np.arange(10 * 16).reshape(10, 16) == 5, -np.inf, 0.5).astype(np.float32))
save("x15", np.zeros((4, 15), np.float32))
save("x_int", rng.integers(-3, 4, (30, 16)).astype(np.int16))
save("x_f64", rng.standard_normal((30, 16)))
save("palette", np.array([[0, 0, 0], [255, 255, 255], [230, 200, 40], [30, 140, 60], [120, 120, 200],
                          [200, 100, 100], [60, 180, 160], [180, 160, 120]], np.float32))
save("patch_cb", rng.uniform(0, 255, (32, 8 * 8 * 3)).astype(np.float32))
save("big", rng.standard_normal((20000, 16)).astype(np.float32))
save("cb3", rng.standard_normal((2, 8, 16)).astype(np.float32))
save("cb8", rng.standard_normal((5, 8)).astype(np.float32))
with open(os.path.join(d, "mixed.npy"), "wb") as f:
    np.save(f, np.zeros((4, 3), np.float32))
    np.save(f, np.zeros((2, 16), np.float32))
with open(os.path.join(d, "stream.npy"), "wb") as f:
    np.save(f, rng.standard_normal((6, 16)).astype(np.float32))
    np.save(f, rng.standard_normal((3, 2, 16)).astype(np.float32))
' "$D"
make_bad_inputs
CB=$F/search_random_cb.npy

# ------------------------------------------------------------ nearest codes: faiss and brute force
for c in random clustered offset; do
  X=$F/search_${c}_x.npy C=$F/search_${c}_cb.npy
  run "$ENC" --codebook "$C" "$X" -o "$O/i.npy" --distances "$O/d.npy"
  expect_ok "--codebook search_$c"
  pycheck "search_$c: the exact nearest code (float64 brute force, lowest index on ties)" '
x, cb = np.load(sys.argv[1]), np.load(sys.argv[2]); i, d = np.load(sys.argv[3]), np.load(sys.argv[4])
e = dist(x, cb)
assert i.dtype == np.int64 and i.shape == (len(x),), (i.dtype, i.shape)
same(i, e.argmin(1))
assert d.dtype == np.float32
assert np.allclose(d, e.min(1), rtol=1e-6, atol=1e-6), np.abs(d - e.min(1)).max()' "$X" "$C" "$O/i.npy" "$O/d.npy"
  pycheck "search_$c: faiss IndexFlatL2 agrees but for float32 ties" '
x, cb = np.load(sys.argv[1]), np.load(sys.argv[2]); i, f = np.load(sys.argv[3]), np.load(sys.argv[4])
e = dist(x, cb); rows = np.nonzero(i != f)[0]
reach = np.linalg.norm(x.astype(np.float64), axis=1) + np.linalg.norm(cb.astype(np.float64), axis=1).max()
gap = e[rows, f[rows]] - e[rows, i[rows]]
assert (gap >= 0).all() and (gap <= (x.shape[1] + 2) * 2.0 ** -24 * reach[rows] ** 2).all(), gap
if sys.argv[5] != "offset": assert len(rows) == 0, rows
else: assert len(rows) > len(x) // 2, "faiss should miss most of these"' "$X" "$C" "$O/i.npy" \
    "$F/search_${c}_l2_I.npy" "$c"
  run "$ENC" -c "$C" --metric cosine "$X" -o "$O/i.npy" --distances "$O/d.npy"
  expect_ok "--metric cosine search_$c"
  pycheck "search_$c --metric cosine: the largest cosine, 2 - 2 cos; faiss IndexFlatIP but for ties" '
x, cb = np.load(sys.argv[1]), np.load(sys.argv[2]); i, d, f = np.load(sys.argv[3]), np.load(sys.argv[4]), np.load(sys.argv[5])
c = cosine(x, cb)
same(i, (2 - 2 * c).argmin(1))
assert np.allclose(d, 2 - 2 * c.max(1), atol=1e-6)
rows = np.nonzero(i != f)[0]
assert (c[rows, i[rows]] - c[rows, f[rows]] <= 4 * 18 * 2.0 ** -24).all()' "$X" "$C" "$O/i.npy" "$O/d.npy" "$F/search_${c}_ip_I.npy"
done
for opt in --topk -k; do
  run "$ENC" -c "$CB" "$opt" 4 "$F/search_random_x.npy" -o "$O/i.npy" --distances "$O/d.npy"
  expect_ok "$opt 4"
  pycheck "$opt 4: the 4 nearest codes, nearest first, as faiss" '
x, cb = np.load(sys.argv[1]), np.load(sys.argv[2]); i, d = np.load(sys.argv[3]), np.load(sys.argv[4])
e = dist(x, cb); order = np.argsort(e, axis=1, kind="stable")[:, :4]
same(i, order); same(i, np.load(sys.argv[5]))
assert d.shape == (400, 4) and np.allclose(d, np.take_along_axis(e, order, 1), rtol=1e-6)' \
    "$F/search_random_x.npy" "$CB" "$O/i.npy" "$O/d.npy" "$F/search_random_l2_top4_I.npy"
done

# ------------------------------------------------------------ extra outputs, shapes, dtypes
run "$ENC" -c "$CB" "$D/x3d.npy" -o "$O/i.npy" --quantized "$O/q.npy" --distances "$O/d.npy"
expect_ok "[5, 7, 16] with --quantized and --distances files"
pycheck "leading shape kept: indices [5, 7], distances [5, 7], quantized [5, 7, 16] = cb[indices]" '
x, cb = np.load(sys.argv[1]), np.load(sys.argv[2]); i, q, d = (np.load(p) for p in sys.argv[3:6])
assert i.shape == (5, 7) and d.shape == (5, 7) and q.shape == (5, 7, 16)
same(i.ravel(), dist(x, cb).argmin(1)); same(q, cb[i]); assert np.allclose(d.ravel(), dist(x, cb).min(1), rtol=1e-6)' \
  "$D/x3d.npy" "$CB" "$O/i.npy" "$O/q.npy" "$O/d.npy"
run "$ENC" -c "$CB" "$D/x3d.npy" --distances - --quantized - -o "$O/s.npy"
expect_ok "--distances - --quantized -"
pycheck "- appends to the stream: indices, distances, quantized" '
s = load_stream(sys.argv[1]); i, q, d = np.load(sys.argv[2]), np.load(sys.argv[3]), np.load(sys.argv[4])
assert len(s) == 3; same(s[0], i); same(s[1], d); same(s[2], q)' "$O/s.npy" "$O/i.npy" "$O/q.npy" "$O/d.npy"
run "$ENC" -c "$CB" "$D/stream.npy" --distances - -o "$O/s.npy"
expect_ok "a stream of two tensors"
pycheck "a stream: indices and distances of each tensor in turn" '
s, x = load_stream(sys.argv[1]), load_stream(sys.argv[2]); cb = np.load(sys.argv[3])
assert len(s) == 4, len(s)
for k in range(2):
    same(s[2 * k], dist(x[k], cb).argmin(1).reshape(x[k].shape[:-1]))
    assert s[2 * k + 1].shape == x[k].shape[:-1]' "$O/s.npy" "$D/stream.npy" "$CB"
run "$ENC" -c "$CB" "$D/stream.npy" --to safetensors --quantized - -o "$O/s.safetensors"
expect_ok "a stream to safetensors"
run "$(bin tensor-info)" "$O/s.safetensors"
expect_stdout_has "indices.1" "safetensors names: indices, quantized, indices.1, quantized.1"
expect_stdout_has "quantized.1" "safetensors names: quantized.1"
for x in x_int x_f64; do
  run "$ENC" -c "$CB" "$D/$x.npy" -o "$O/i.npy"
  expect_ok "$x input"
  pycheck "$x is converted to float32" 'same(np.load(sys.argv[3]), dist(np.load(sys.argv[1]).astype(np.float32), np.load(sys.argv[2])).argmin(1))' \
    "$D/$x.npy" "$CB" "$O/i.npy"
done
run_sh "$(bin tensor-convert) $D/x_int.npy --to csv | $ENC -c $CB --to txt"
expect_ok "csv through a pipe, --to txt"
pycheck "text in, text out" 'same(np.loadtxt(sys.argv[3], dtype=np.int64), dist(np.load(sys.argv[1]).astype(np.float32), np.load(sys.argv[2])).argmin(1))' \
  "$D/x_int.npy" "$CB" "$T/out"
# encode -> decode through a pipe gives the chosen codes.
run_sh "cat $D/x3d.npy | $ENC -c $CB | $DEC -c $CB > $O/back.npy"
expect_ok "vq-encode | vq-decode"
pycheck "encode | decode = cb[nearest]" 'same(np.load(sys.argv[3]), np.load(sys.argv[2])[dist(np.load(sys.argv[1]), np.load(sys.argv[2])).argmin(1)].reshape(5, 7, 16))' \
  "$D/x3d.npy" "$CB" "$O/back.npy"

# ------------------------------------------------------------ residual, product, FSQ
run "$ENC" -c "$F/residual_cb.npy" --residual "$F/residual_x.npy" -o "$O/i.npy" --quantized "$O/q.npy" --distances "$O/d.npy"
expect_ok "--residual"
pycheck "--residual: numpy's stage-by-stage indices [300, 3], the float32 sum, |x - sum|^2" '
same(np.load(sys.argv[1]), np.load(sys.argv[2])); same(np.load(sys.argv[3]), np.load(sys.argv[4]))
x, q = np.load(sys.argv[5]).astype(np.float64), np.load(sys.argv[4]).astype(np.float64)
assert np.allclose(np.load(sys.argv[6]), ((x - q) ** 2).sum(1), rtol=1e-6, atol=1e-7)' \
  "$O/i.npy" "$F/residual_I.npy" "$O/q.npy" "$F/residual_q.npy" "$F/residual_x.npy" "$O/d.npy"
run "$ENC" -c "$F/pq_cb.npy" --pq 4 "$F/pq_x.npy" -o "$O/i.npy" --quantized "$O/q.npy"
expect_ok "--pq 4"
pycheck "--pq 4: numpy's per-slice indices [300, 4]; codes side by side" '
same(np.load(sys.argv[1]), np.load(sys.argv[2])); i, cb = np.load(sys.argv[1]), np.load(sys.argv[4])
same(np.load(sys.argv[3]), np.concatenate([cb[m][i[:, m]] for m in range(4)], axis=1))' \
  "$O/i.npy" "$F/pq_I.npy" "$O/q.npy" "$F/pq_cb.npy"
run "$ENC" --fsq 8,5,5,5 "$F/fsq_z.npy" -o "$O/i.npy" --quantized "$O/q.npy"
expect_ok "--fsq 8,5,5,5"
pycheck "--fsq: the paper's formula, mixed radix with channel 0 least significant" '
same(np.load(sys.argv[1]), np.load(sys.argv[2])); assert np.array_equal(np.load(sys.argv[3]), np.load(sys.argv[4]))' \
  "$O/i.npy" "$F/fsq_I.npy" "$O/q.npy" "$F/fsq_codes.npy"

# ------------------------------------------------------------ images
run "$ENC" -c "$D/palette.npy" "$F/picture.png" -o "$O/i.npy"
expect_ok "a PNG with a palette"
pycheck "colour quantization: every pixel's nearest palette colour, [48, 64]" '
img, pal, i = np.load(sys.argv[1]), np.load(sys.argv[2]), np.load(sys.argv[3])
assert i.shape == (48, 64); same(i.ravel(), dist(img.reshape(-1, 3).astype(np.float32), pal).argmin(1))' \
  "$F/picture.npy" "$D/palette.npy" "$O/i.npy"
run "$ENC" -c "$D/patch_cb.npy" --patch 8 "$F/picture.png" -o "$O/i.npy" --quantized "$O/q.npy"
expect_ok "--patch 8"
pycheck "--patch 8: [6, 8] tokens of row-major 8x8x3 patches" '
img, cb, i, q = np.load(sys.argv[1]), np.load(sys.argv[2]), np.load(sys.argv[3]), np.load(sys.argv[4])
p = img.reshape(6, 8, 8, 8, 3).transpose(0, 2, 1, 3, 4).reshape(6, 8, 192).astype(np.float32)
assert i.shape == (6, 8) and q.shape == (6, 8, 192); same(i.ravel(), dist(p, cb).argmin(1))' \
  "$F/picture.npy" "$D/patch_cb.npy" "$O/i.npy" "$O/q.npy"

# ------------------------------------------------------------ statistics
run "$ENC" -c "$CB" "$F/search_random_x.npy" -o "$O/i.npy" --stats --stats-json "$O/stats.json"
expect_rc 0 "--stats"
_read_err
[[ $ERRTXT == *"vq-encode: 400 vectors of dimension 16"* && $ERRTXT == *perplexity* && $ERRTXT == *dead* ]] && pass ||
  fail "--stats: stderr lacks the summary: $ERRTXT"
pycheck "--stats-json: mse, perplexity exp(-sum p log p), counts, dead codes" '
s = json.load(open(sys.argv[1])); x, cb = np.load(sys.argv[2]), np.load(sys.argv[3])
e = dist(x, cb); i = e.argmin(1); n = np.bincount(i, minlength=64); p = n[n > 0] / len(i)
assert s["vectors"] == 400 and s["dim"] == 16 and s["quantizer"] == "flat" and s["metric"] == "l2"
assert abs(s["mse"] - e.min(1).mean() / 16) < 1e-6 * s["mse"]
st = s["stages"][0]
assert abs(st["perplexity"] - np.exp(-(p * np.log(p)).sum())) < 1e-9 * st["perplexity"]
assert st["counts"] == n.tolist() and st["dead_codes"] == np.nonzero(n == 0)[0].tolist()
assert st["used"] == (n > 0).sum() and st["dead"] == (n == 0).sum() and st["max_count"] == n.max()' \
  "$O/stats.json" "$F/search_random_x.npy" "$CB"
run "$ENC" -c "$CB" "$F/search_random_x.npy" -o "$O/i2.npy" --stats -q
expect_ok "--stats -q prints nothing"
expect_file_eq "$O/i.npy" "$O/i2.npy" "--stats does not change the indices"
run "$ENC" -c "$F/residual_cb.npy" --residual "$F/residual_x.npy" -o "$O/i.npy" --stats-json "$O/stats.json"
expect_ok "--residual --stats-json"
pycheck "--residual --stats-json: usage per stage" '
s = json.load(open(sys.argv[1])); i = np.load(sys.argv[2])
assert s["quantizer"] == "residual" and len(s["stages"]) == 3
for l in range(3): assert s["stages"][l]["counts"] == np.bincount(i[:, l], minlength=16).tolist()' "$O/stats.json" "$F/residual_I.npy"
run "$ENC" --fsq 8,5,5,5 "$F/fsq_z.npy" -o "$O/i.npy" --stats-json "$O/stats.json"
expect_ok "--fsq --stats-json"
pycheck "--fsq --stats-json: 1000 codes" 's = json.load(open(sys.argv[1])); assert s["stages"][0]["codes"] == 1000 and s["metric"] == "fsq"' "$O/stats.json"

# ------------------------------------------------------------ threads, quiet, formats
run "$ENC" -c "$CB" "$D/big.npy" -o "$O/ref.npy"
for opts in "--threads 1" "--threads 3" "-q" "--quiet"; do
  # shellcheck disable=SC2086
  run "$ENC" $opts -c "$CB" "$D/big.npy" -o "$O/i.npy"
  expect_ok "$opts"
  expect_file_eq "$O/i.npy" "$O/ref.npy" "$opts gives the same indices"
done
run "$ENC" -c "$CB" "$F/search_random_x.npy" --to json -o "$O/i.json"
expect_ok "--to json"
pycheck "--to json: a list of indices" 'same(np.array(json.load(open(sys.argv[1])), np.int64), np.load(sys.argv[2]))' \
  "$O/i.json" "$F/search_random_l2_I.npy"
expect_to_formats vq-encode "$F/search_random_x.npy" -c "$CB"

# ------------------------------------------------------------ bad options (64)
X=$F/search_random_x.npy
bad_option vq-encode 64 "codebook" "$X"
bad_option vq-encode 64 "codebook fsq" -c "$CB" --fsq 8,5 "$X"
for l in "8,1" "8,,5" "x" "" "8,5," "70000"; do bad_option vq-encode 64 "fsq" --fsq="$l" "$X"; done
bad_option vq-encode 64 "residual pq" -c "$F/residual_cb.npy" --residual --pq 3 "$X"
bad_option vq-encode 64 "fsq" --fsq 8,5 --residual "$X"
bad_option vq-encode 64 "metric" -c "$CB" --metric manhattan "$X"
bad_option vq-encode 64 "metric" --fsq 8,5 --metric cosine "$X"
bad_option vq-encode 64 "residual l2" -c "$F/residual_cb.npy" --residual --metric cosine "$F/residual_x.npy"
bad_option vq-encode 64 "topk" -c "$CB" --topk -1 "$X"
bad_option vq-encode 64 "topk 65" -c "$CB" --topk 65 "$X"
bad_option vq-encode 64 "topk flat" -c "$F/residual_cb.npy" --residual --topk 2 "$F/residual_x.npy"
bad_option vq-encode 64 "patch" -c "$CB" --patch -2 "$X"
bad_option vq-encode 64 "pq" -c "$CB" --pq -1 "$X"
bad_option vq-encode 64 "" -c "$CB" --topk x "$X"
bad_option vq-encode 64 "bogus" -c "$CB" --bogus "$X"
bad_option vq-encode 64 "" -c "$CB" "$X" "$X"
bad_option vq-encode 64 "png" -c "$CB" --to png "$X"
bad_option vq-encode 64 "stats-json" -c "$CB" --stats-json - "$X"
bad_option vq-encode 64 "distances" -c "$CB" --distances= "$X"
run "$ENC" -c "$CB" "$X" -o "$O/x.npy" --distances "$O/x.npy"
expect_error 64 "two outputs" "-o and --distances to one file"
rm -f "$O"/*
expect_empty_dir "$O" "-o and --distances to one file"

# ------------------------------------------------------------ bad data (65, 66): nothing left behind
bad_data() {  # bad_data CODE WORDS DESC ARGS...
  local code=$1 words=$2 desc=$3
  shift 3
  local out
  out=$(freshdir dataout)
  run "$ENC" "$@" -o "$out/i.npy" --distances "$out/d.npy" --stats-json "$out/s.json"
  expect_error "$code" "$words" "$desc"
  expect_empty_dir "$out" "$desc"
}
bad_data 65 "dimension 15 x15.npy" "D mismatch" -c "$CB" "$D/x15.npy"
bad_data 65 "empty cb_empty.npy" "empty codebook" -c "$D/cb_empty.npy" "$X"
bad_data 65 "NaN [2] element 5 x_nan.npy" "a NaN vector" -c "$CB" "$D/x_nan.npy"
bad_data 65 "infinite [0] element 5" "an infinite value" -c "$CB" "$D/x_inf.npy"
bad_data 65 "code [2] NaN cb_nan.npy" "a NaN code" -c "$D/cb_nan.npy" "$X"
bad_data 65 "--residual --pq cb3.npy" "a 3-D codebook without --residual or --pq" -c "$D/cb3.npy" "$X"
bad_data 65 "2 subspaces --pq 3" "--pq that does not match" -c "$D/cb3.npy" --pq 3 "$X"
bad_data 65 "[L, K, D]" "--residual with a 2-D codebook" -c "$CB" --residual "$X"
bad_data 65 "48x64 5x5" "--patch that does not divide" -c "$CB" --patch 5 "$F/picture.png"
bad_data 65 "dimension 4 2 levels" "--fsq with the wrong dimension" --fsq 8,5 "$F/fsq_z.npy"
bad_data 65 "dimension 16 tensor 1" "a stream's second tensor of another dimension" -c "$D/palette.npy" "$D/mixed.npy"
bad_data 66 "missing.npy" "missing codebook" -c "$T/missing.npy" "$X"
bad_data 65 "garbage.bin" "garbage codebook" -c "$BAD/garbage.bin" "$X"
bad_data 65 "expected one tensor" "a codebook stream" -c "$D/stream.npy" "$X"

# ------------------------------------------------------------ bad input, bad output
# (The matrix's good arrays are [6, 8]: a codebook of D = 8 lets a stream's
# truncated second tensor be the error.)
bad_input_matrix vq-encode out.npy -c "$D/cb8.npy"
BAD_ONLY='missing|trunc_data_half|garbage|png_crc' bad_input_matrix vq-encode out.npy --fsq 8,5,5
bad_output_matrix vq-encode "$X" "$D/big.npy" -c "$CB"
bad_output_matrix vq-encode "$X" "$D/big.npy" -c "$CB" --distances - --stats -q

finish
