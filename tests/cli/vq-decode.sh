#!/usr/bin/env bash
# vq-decode end to end: codes of flat, residual, product and FSQ indices
# against numpy and the fixtures of tests/fixtures/vq, round trips through
# vq-encode (pipes, PNG colour quantization, patches back to the very same
# image), index dtypes and text, streams, every option of --help, out-of-range
# indices named by position (65), bad options (64), nothing left behind, and
# the shared bad-input and bad-output matrices.
TOOL=vq-decode
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
ENC=$(bin vq-encode)
DEC=$(bin vq-decode)
TRAIN=$(bin vq-train)
F=${NNKIT_FIXTURES:?NNKIT_FIXTURES must name tests/fixtures}/vq
D=$T/in
mkdir -p "$D"
O=$(freshdir o)
CB=$F/search_random_cb.npy

# ------------------------------------------------------------ --help, options
expect_help_version vq-decode --codebook --residual --pq --fsq --patch --help --version --output --to --quiet --threads

PYPRELUDE='
import io
def load_stream(path):
    raw = open(path, "rb").read()
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append(np.load(f))
    return out
def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    assert np.array_equal(a, b), np.argwhere(a != b)[:5]
'

# ------------------------------------------------------------ inputs
py '
d = sys.argv[1]
rng = np.random.default_rng(8)
def save(name, a):
    np.save(os.path.join(d, name + ".npy"), a)
i = rng.integers(0, 64, (5, 6))
for t in ("int64", "int32", "uint8", "int16", "uint16", "float32", "float64"):
    save("i_" + t, i.astype(t))
save("i_scalar", np.int64(7))
save("i_empty", np.zeros((0, 3), np.int64))
save("i_range", np.array([[0, 1, 2], [3, 64, 5]]))
save("i_neg", np.array([4, -1]))
save("i_half", np.array([4.0, 2.5], np.float32))
save("i_nan", np.array([4.0, np.nan], np.float32))
save("i_bool", np.array([True, False]))
save("i_res_bad", np.zeros((4, 2), np.int64))
save("i_big", rng.integers(0, 64, (20000,)))
save("fsq_all", np.arange(1000))
with open(os.path.join(d, "stream.npy"), "wb") as f:
    np.save(f, np.array([1, 2, 3]))
    np.save(f, np.array([[4], [5]], np.int32))
with open(os.path.join(d, "i.txt"), "w") as f:
    f.write("1 2 3\n4 5 63\n")
' "$D"
make_bad_inputs

# ------------------------------------------------------------ flat codebooks, dtypes, text
for t in int64 int32 uint8 int16 uint16 float32 float64; do
  run "$DEC" --codebook "$CB" "$D/i_$t.npy" -o "$O/v.npy"
  expect_ok "indices of $t"
  pycheck "$t indices [5, 6] give cb[i], [5, 6, 16] float32" 'same(np.load(sys.argv[3]), np.load(sys.argv[2])[np.load(sys.argv[1]).astype(np.int64)])' \
    "$D/i_$t.npy" "$CB" "$O/v.npy"
done
run "$DEC" -c "$CB" "$D/i_scalar.npy" -o "$O/v.npy"
expect_ok "a 0-d index"
pycheck "a 0-d index gives one vector [16]" 'same(np.load(sys.argv[2]), np.load(sys.argv[1])[7])' "$CB" "$O/v.npy"
run "$DEC" -c "$CB" "$D/i_empty.npy" -o "$O/v.npy"
expect_ok "no indices"
pycheck "[0, 3] indices give [0, 3, 16]" 'assert np.load(sys.argv[1]).shape == (0, 3, 16)' "$O/v.npy"
run "$DEC" -c "$CB" "$D/i.txt" --to csv
expect_ok "text indices, --to csv"
pycheck "text in, csv out" 'same(np.loadtxt(sys.argv[2], delimiter=",", dtype=np.float32).reshape(2, 3, 16), np.load(sys.argv[1])[[[1, 2, 3], [4, 5, 63]]])' \
  "$CB" "$T/out"
run "$DEC" -c "$CB" "$D/stream.npy" -o "$O/s.npy"
expect_ok "a stream of index tensors"
pycheck "a stream: the codes of each tensor" '
s, cb = load_stream(sys.argv[1]), np.load(sys.argv[2])
assert len(s) == 2; same(s[0], cb[[1, 2, 3]]); same(s[1], cb[[[4], [5]]])' "$O/s.npy" "$CB"
run "$DEC" -c "$CB" "$D/stream.npy" --to safetensors -o "$O/s.safetensors"
expect_ok "a stream to safetensors"
run "$(bin tensor-info)" "$O/s.safetensors"
expect_stdout_has "vectors.1" "safetensors names: vectors, vectors.1"

# ------------------------------------------------------------ round trips with vq-encode
run_sh "$ENC -c $CB $F/search_random_x.npy | $DEC -c $CB > $O/v.npy"
expect_ok "vq-encode | vq-decode"
run "$ENC" -c "$CB" "$F/search_random_x.npy" --quantized "$O/q.npy" -o /dev/null
pycheck "encode | decode = encode --quantized" 'same(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/v.npy" "$O/q.npy"
run "$DEC" -c "$F/residual_cb.npy" --residual "$F/residual_I.npy" -o "$O/v.npy"
expect_ok "--residual"
pycheck "--residual: the float32 sum of the stage codes, numpy's" 'same(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/v.npy" "$F/residual_q.npy"
run "$DEC" -c "$F/pq_cb.npy" --pq 4 "$F/pq_I.npy" -o "$O/v.npy"
expect_ok "--pq 4"
pycheck "--pq 4: the subspace codes side by side" '
i, cb = np.load(sys.argv[2]), np.load(sys.argv[3])
same(np.load(sys.argv[1]), np.concatenate([cb[m][i[:, m]] for m in range(4)], axis=1))' "$O/v.npy" "$F/pq_I.npy" "$F/pq_cb.npy"
run "$DEC" --fsq 8,5,5,5 "$F/fsq_I.npy" -o "$O/v.npy"
expect_ok "--fsq 8,5,5,5"
pycheck "--fsq: the codes of the formula" 'assert np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/v.npy" "$F/fsq_codes.npy"
run "$DEC" --fsq 8,5,5,5 "$D/fsq_all.npy" -o "$O/v.npy"
expect_ok "--fsq: all 1000 indices"
pycheck "--fsq: mixed radix, channel 0 least significant; all 1000 codes distinct" '
v = np.load(sys.argv[1]); n = np.arange(1000); L = [8, 5, 5, 5]; b = [1, 8, 40, 200]
for c in range(4): assert np.array_equal(v[:, c], ((n // b[c]) % L[c] - L[c] // 2) / (L[c] // 2)), c
assert len({tuple(r) for r in v}) == 1000' "$O/v.npy"
# A palette and a PNG, both ways through pipes.
run_sh "$TRAIN --k 8 $F/picture.png | tee $O/pal.npy >/dev/null; $ENC -c $O/pal.npy $F/picture.png | $DEC -c $O/pal.npy --to png > $O/q.png"
expect_ok "train | encode | decode --to png"
run "$(bin tensor-convert)" "$O/q.png" -o "$O/q.npy"
pycheck "the quantized PNG is uint8 [48, 64, 3] of palette colours, each pixel its nearest" '
img, pal, q = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64), np.load(sys.argv[3])
assert q.dtype == np.uint8 and q.shape == (48, 64, 3)
near = ((img.reshape(-1, 1, 3) - pal[None]) ** 2).sum(-1).argmin(1)
same(q.reshape(-1, 3), np.clip(np.round(pal[near]), 0, 255).astype(np.uint8))' "$F/picture.npy" "$O/pal.npy" "$O/q.npy"
# Every 4x4 patch of the picture is a code (K = number of patches): back to the same image.
run "$TRAIN" --k 192 --iters 0 --patch 4 "$F/picture.png" -o "$O/patches.npy"
expect_ok "vq-train --k 192 --patch 4"
run_sh "$ENC -c $O/patches.npy --patch 4 $F/picture.png | $DEC -c $O/patches.npy --patch 4 -o $O/back.png"
expect_ok "encode --patch 4 | decode --patch 4 -o back.png"
run "$(bin tensor-convert)" "$O/back.png" -o "$O/back.npy"
pycheck "--patch: every patch is a code, so the picture comes back exactly" 'same(np.load(sys.argv[1]), np.load(sys.argv[2]))' \
  "$O/back.npy" "$F/picture.npy"
run_sh "$ENC -c $O/patches.npy --patch 4 $F/picture.png | $DEC -c $O/patches.npy --patch 4 > $O/back.npy"
expect_ok "decode --patch 4 to npy"
pycheck "--patch to npy: float32 [48, 64, 3]" 'same(np.load(sys.argv[1]), np.load(sys.argv[2]).astype(np.float32))' "$O/back.npy" "$F/picture.npy"

# ------------------------------------------------------------ threads, quiet, formats
run "$DEC" -c "$CB" "$D/i_big.npy" -o "$O/ref.npy"
for opts in "--threads 1" "--threads 3" "-q" "--quiet"; do
  # shellcheck disable=SC2086
  run "$DEC" $opts -c "$CB" "$D/i_big.npy" -o "$O/v.npy"
  expect_ok "$opts"
  expect_file_eq "$O/v.npy" "$O/ref.npy" "$opts gives the same vectors"
done
run "$DEC" -c "$CB" "$D/i_int64.npy" --to json -o "$O/v.json"
expect_ok "--to json"
pycheck "--to json: nested lists" 'assert np.allclose(np.array(json.load(open(sys.argv[1]))), np.load(sys.argv[2])[np.load(sys.argv[3])])' \
  "$O/v.json" "$CB" "$D/i_int64.npy"
py 'np.save(sys.argv[1], (np.arange(24).reshape(8, 3) * 10).astype(np.float32)); np.save(sys.argv[2], np.arange(16).reshape(4, 4) % 8)' \
  "$D/colours.npy" "$D/img_idx.npy"
expect_to_formats vq-decode "$D/img_idx.npy" -c "$D/colours.npy"

# ------------------------------------------------------------ out-of-range and other bad data (65)
bad_data() {  # bad_data WORDS DESC ARGS...
  local words=$1 desc=$2
  shift 2
  local out
  out=$(freshdir dataout)
  run "$DEC" "$@" -o "$out/v.npy"
  expect_error 65 "$words" "$desc"
  expect_empty_dir "$out" "$desc"
}
bad_data "64 [1, 1] range 64 codes i_range.npy" "an index past the codebook" -c "$CB" "$D/i_range.npy"
bad_data "-1 [1] range" "a negative index" -c "$CB" "$D/i_neg.npy"
bad_data "2.5 [1] integer" "a fractional index" -c "$CB" "$D/i_half.npy"
bad_data "nan [1]" "a NaN index" -c "$CB" "$D/i_nan.npy"
bad_data "integers bool" "bool indices" -c "$CB" "$D/i_bool.npy"
bad_data "last axis must be 3" "residual indices of the wrong width" -c "$F/residual_cb.npy" --residual "$D/i_res_bad.npy"
bad_data "200 at [200] FSQ 200 codes" "an FSQ index past the code space" --fsq 8,5,5 "$D/fsq_all.npy"
bad_data "empty" "an empty codebook" -c "$T/bad/../in/i_empty.npy" "$D/i_int64.npy"
bad_data "[L, K, D]" "--residual with a flat codebook" -c "$CB" --residual "$D/i_res_bad.npy"
bad_data "--residual --pq" "a 3-D codebook without a flag" -c "$F/residual_cb.npy" "$D/i_res_bad.npy"
bad_data "--patch 3 3*3*C [5, 6, 16]" "--patch that does not fit the vectors" -c "$CB" --patch 3 "$D/i_int64.npy"
run "$DEC" -c "$T/nope.npy" "$D/i_int64.npy" -o "$O/v.npy"
expect_error 66 "nope.npy" "a missing codebook"

# ------------------------------------------------------------ bad options (64)
bad_option vq-decode 64 "codebook" "$D/i_int64.npy"
bad_option vq-decode 64 "codebook fsq" -c "$CB" --fsq 8,5 "$D/i_int64.npy"
bad_option vq-decode 64 "fsq" --fsq 8,5,1 "$D/i_int64.npy"
bad_option vq-decode 64 "fsq" --fsq 8,5 --pq 2 "$D/i_int64.npy"
bad_option vq-decode 64 "residual pq" -c "$F/residual_cb.npy" --residual --pq 3 "$D/i_int64.npy"
bad_option vq-decode 64 "pq" -c "$CB" --pq -1 "$D/i_int64.npy"
bad_option vq-decode 64 "patch" -c "$CB" --patch -1 "$D/i_int64.npy"
bad_option vq-decode 64 "bogus" -c "$CB" --bogus "$D/i_int64.npy"
bad_option vq-decode 64 "" -c "$CB" "$D/i_int64.npy" "$D/i_int64.npy"
bad_option vq-decode 64 "png" -c "$CB" --to png "$D/stream.npy"
bad_option vq-decode 64 "" -c "$CB" --to npz "$D/i_int64.npy"

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix vq-decode out.npy -c "$CB"
BAD_ONLY='missing|trunc_data_half|garbage|png_crc' bad_input_matrix vq-decode out.npy --fsq 8,5,5
bad_output_matrix vq-decode "$D/i_int64.npy" "$D/i_big.npy" -c "$CB"

finish
