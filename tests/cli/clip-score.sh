#!/usr/bin/env bash
# clip-score end to end: every convention against the PyTorch references of
# tests/fixtures/clip (made by make_clip.py) through the real binary, the
# summaries as text and JSON, streamed retrieval equal at every tile size and
# thread count, sharded retrieval merged byte for byte, pipes (one stdin
# holding both inputs, text through tensor-convert), every option of --help,
# bad options (64) and bad data (65) with nothing left behind, the shipped
# example, and the shared bad-input and bad-output matrices.
TOOL=clip-score
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
CS=$(bin clip-score)
CONVERT=$(bin tensor-convert)
F=${NNKIT_FIXTURES:?NNKIT_FIXTURES must name tests/fixtures}/clip
D=$T/in
mkdir -p "$D"
O=$(freshdir o)

# ------------------------------------------------------------ --help, options
expect_help_version clip-score --mode --convention --w --refs --mean --bootstrap --seed --logit-scale \
  --logit-bias --templates --labels --text-image --k --loss --diagonal --no-normalize --allow-zero --block \
  --shard --merge --help --version --output --to --quiet --threads

PYPRELUDE='
import io
def load_stream(path):
    raw = open(path, "rb").read()
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append(np.load(f))
    return out
def close(got, want, tol=1e-5):
    """|got - want| <= tol * max(1, |want|), elementwise; float32 [same shape]."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = (np.abs(got.astype(np.float64) - want) / np.maximum(1, np.abs(want))).max() if want.size else 0
    assert err <= tol, "error %g > %g" % (err, tol)
def close_json(got, want, tol=1e-5):
    """every number of want is in got, within tol * max(1, |want|)."""
    if isinstance(want, dict):
        for k, v in want.items():
            assert k in got, "missing key %s (have %s)" % (k, sorted(got))
            close_json(got[k], v, tol)
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want): close_json(g, w, tol)
    elif isinstance(want, (int, float)):
        assert abs(got - want) <= tol * max(1, abs(want)), (got, want)
    else:
        assert got == want, (got, want)
def metrics(part):
    return json.load(open(os.environ["FIX"] + "/metrics.json"))[part]
def summary(part):
    return json.load(open(os.environ["FIX"] + "/summary.json"))[part]
'
export FIX=$F

# ------------------------------------------------------------ inputs
py '
d, f = sys.argv[1], sys.argv[2]
img, txt = np.load(f + "/img.npy"), np.load(f + "/txt.npy")
rng = np.random.default_rng(3)
np.save(d + "/img_f64.npy", img.astype(np.float64))
z = img.copy(); z[5] = 0; np.save(d + "/img_zero.npy", z)
n = txt.copy(); n[3, 7] = np.nan; np.save(d + "/txt_nan.npy", n)
n = txt.copy(); n[2, 1] = -np.inf; np.save(d + "/txt_inf.npy", n)
np.save(d + "/txt_d31.npy", txt[:, :31])
np.save(d + "/txt_39.npy", txt[:39])
np.save(d + "/vec.npy", txt[0])
np.save(d + "/bool.npy", txt > 0)
np.save(d + "/int_rows.npy", rng.integers(-3, 4, (40, 32)).astype(np.int16))
np.save(d + "/labels_bad.npy", np.array([0] * 39 + [8], dtype=np.int64))
np.save(d + "/labels_short.npy", np.zeros(39, dtype=np.int64))
np.save(d + "/owner_bad.npy", np.full(np.load(f + "/caps.npy").shape[0], 40, dtype=np.int64))
np.save(d + "/refs_39.npy", np.load(f + "/refs.npy")[:39])
np.savetxt(d + "/labels.txt", np.load(f + "/labels.npy"), fmt="%d")
np.save(d + "/big_img.npy", rng.normal(size=(2000, 32)).astype(np.float32))
np.save(d + "/big_txt.npy", rng.normal(size=(2000, 32)).astype(np.float32))
a = rng.normal(size=(600, 64)).astype(np.float32)
np.save(d + "/r_img.npy", a)
np.save(d + "/r_txt.npy", (a + 2.5 * rng.normal(size=a.shape)).astype(np.float32))
with open(d + "/both.npy", "wb") as o:
    np.save(o, img); np.save(o, txt)
' "$D" "$F"

# ------------------------------------------------------------ pairs: CLIPScore, torchmetrics, RefCLIPScore
run "$CS" "$F/img.npy" "$F/txt.npy"
expect_ok "pairs (default) to a pipe"
pycheck "pairs: CLIPScore 2.5*max(cos, 0) as the paper code" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$T/out" "$F/pairs_hessel.npy"
run "$CS" --mode pairs --convention hessel --w 1 "$F/img.npy" "$F/txt.npy" -o "$O/w1.npy"
expect_ok "--w 1"
pycheck "--w 1 is the 2.5 score / 2.5" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]) / 2.5)' "$O/w1.npy" "$F/pairs_hessel.npy"
run "$CS" "$F/img_f16.npy" "$F/txt.npy" -o "$O/f16.npy"
expect_ok "float16 IMAGE_EMB"
pycheck "float16 input" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/f16.npy" "$F/pairs_hessel_f16.npy"
run "$CS" "$D/img_f64.npy" "$F/txt.npy" -o "$O/f64.npy"
expect_ok "float64 IMAGE_EMB"
pycheck "float64 input" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/f64.npy" "$F/pairs_hessel.npy"
run "$CS" --convention torchmetrics "$F/img.npy" "$F/txt.npy" -o "$O/tm.npy"
expect_ok "--convention torchmetrics"
pycheck "torchmetrics: 100*cos per pair, unclamped" '
g = np.load(sys.argv[1]); close(g, np.load(sys.argv[2])); assert (g < 0).sum() == 3' "$O/tm.npy" "$F/pairs_torchmetrics.npy"
run "$CS" --refs "$F/refs.npy" "$F/img.npy" "$F/txt.npy" -o "$O/ref.npy"
expect_ok "--refs"
pycheck "--refs: a stream of CLIPScore then RefCLIPScore" '
s = load_stream(sys.argv[1]); assert len(s) == 2
close(s[0], np.load(sys.argv[2])); close(s[1], np.load(sys.argv[3]))' "$O/ref.npy" "$F/pairs_hessel.npy" "$F/refclip.npy"
run "$CS" --refs "$F/refs.npy" "$F/img.npy" "$F/txt.npy" -o "$O/ref.safetensors"
expect_ok "--refs -o x.safetensors"
pycheck "safetensors names: clipscore, refclipscore" '
import struct
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
assert set(k for k in h if k != "__metadata__") == {"clipscore", "refclipscore"}, h' "$O/ref.safetensors"

# ------------------------------------------------------------ summaries
run "$CS" --mean --bootstrap 200 --seed 7 --to json "$F/img.npy" "$F/txt.npy"
expect_ok "--mean --bootstrap 200 --seed 7 --to json"
pycheck "--mean JSON: mean, std, n, ci95 as the reference (Philox resampling)" '
g = json.load(open(sys.argv[1])); close_json(g, summary("hessel"))
assert g["convention"] == "hessel" and g["w"] == 2.5' "$T/out"
run "$CS" --bootstrap 200 --seed 7 --refs "$F/refs.npy" "$F/img.npy" "$F/txt.npy" -o "$O/s.json"
expect_ok "--bootstrap (implies --mean) --refs -o s.json"
pycheck "-o .json: JSON, with refclipscore" '
g = json.load(open(sys.argv[1])); close_json(g, summary("hessel")); close_json(g["refclipscore"], summary("refclip"))' "$O/s.json"
run "$CS" --convention torchmetrics --mean --bootstrap 200 --seed 7 --to json "$F/img.npy" "$F/txt.npy"
expect_ok "torchmetrics --mean --to json"
pycheck "torchmetrics summary: max(mean, 0) and its interval" '
g = json.load(open(sys.argv[1])); close_json(g, summary("torchmetrics")); assert "w" not in g' "$T/out"
py 'np.save(sys.argv[2], -np.load(sys.argv[1]))' "$F/txt.npy" "$D/txt_neg.npy"
run "$CS" --convention torchmetrics --mean --to json "$F/img.npy" "$D/txt_neg.npy"
expect_ok "torchmetrics with every caption negated"
pycheck "torchmetrics clamps a negative mean at 0" 'assert json.load(open(sys.argv[1]))["mean"] == 0' "$T/out"
run "$CS" --mean "$F/img.npy" "$F/txt.npy"
expect_ok "--mean as text"
expect_stdout_eq "score      n   mean      std
clipscore  40  0.865972  0.401321" "--mean as a text table"
run "$CS" --mean --bootstrap 50 --refs "$F/refs.npy" --to txt "$F/img.npy" "$F/txt.npy" -o "$O/s.txt"
expect_ok "--mean --to txt -o s.txt"
run_sh "head -n 1 $O/s.txt"
expect_stdout_eq "score         n   mean      std       ci95_low  ci95_high" "text summary header with the interval"
run "$CS" --bootstrap 300 --seed 3 --to json "$F/img.npy" "$F/txt.npy" -o "$O/b1.json" --threads 1
run "$CS" --bootstrap 300 --seed 3 --to json "$F/img.npy" "$F/txt.npy" -o "$O/b2.json" --threads 2
expect_file_eq "$O/b1.json" "$O/b2.json" "the bootstrap interval does not depend on --threads"
run "$CS" --bootstrap 300 --seed 4 --to json "$F/img.npy" "$F/txt.npy" -o "$O/b3.json"
pycheck "another --seed, another interval" '
assert json.load(open(sys.argv[1]))["ci95"] != json.load(open(sys.argv[2]))["ci95"]' "$O/b1.json" "$O/b3.json"

# ------------------------------------------------------------ matrices
run "$CS" --mode matrix "$F/img.npy" "$F/txt_m.npy" -o "$O/m.npy"
expect_ok "--mode matrix"
pycheck "matrix: the cosines" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/m.npy" "$F/matrix.npy"
run "$CS" -m matrix --logit-scale 50 "$F/img.npy" "$F/txt_m.npy" -o "$O/m50.npy"
expect_ok "-m matrix --logit-scale 50"
pycheck "--logit-scale multiplies" 'close(np.load(sys.argv[1]), 50 * np.load(sys.argv[2]).astype(np.float64), 2e-5)' "$O/m50.npy" "$F/matrix.npy"
run "$CS" -m matrix --no-normalize "$F/img.npy" "$F/txt_m.npy" -o "$O/raw.npy"
expect_ok "--no-normalize"
pycheck "--no-normalize: raw dot products" '
g, w = np.load(sys.argv[1]), np.load(sys.argv[2]); assert np.abs(g - w).max() <= 1e-5 * np.abs(w).max()' "$O/raw.npy" "$F/matrix_raw.npy"
run "$CS" -m matrix --diagonal "$F/img.npy" "$F/txt.npy" -o "$O/diag.npy"
expect_ok "-m matrix --diagonal"
pycheck "--diagonal: cos of row i with row i" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]) / 100)' "$O/diag.npy" "$F/pairs_torchmetrics.npy"
for b in 1 7 64 8192; do
  run "$CS" -m matrix --block "$b" "$F/img.npy" "$F/txt_m.npy" -o "$O/mb.npy"
  expect_ok "-m matrix --block $b"
  pycheck "--block $b: the same matrix" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/mb.npy" "$F/matrix.npy"
done
run "$CS" -m zero-shot --templates 3 "$F/img.npy" "$F/zs_txt.npy" -o "$O/zs.npy"
expect_ok "-m zero-shot --templates 3"
pycheck "zero-shot: open_clip classifier (3 templates), softmax(100 cos)" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/zs.npy" "$F/zs_probs.npy"
run "$CS" -m zero-shot "$F/img.npy" "$F/zs_txt.npy" -o "$O/zs1.npy"
expect_ok "-m zero-shot"
pycheck "zero-shot, one template per class" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/zs1.npy" "$F/zs_probs_t1.npy"
run "$CS" -m zero-shot --logit-scale 10 "$F/img.npy" "$F/txt_m.npy" -o "$O/zs10.npy"
expect_ok "-m zero-shot --logit-scale 10"
pycheck "zero-shot --logit-scale 10 is softmax(10 cos)" '
l = 10 * np.load(sys.argv[2]).astype(np.float64); p = np.exp(l - l.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
close(np.load(sys.argv[1]), p)' "$O/zs10.npy" "$F/matrix.npy"
run "$CS" -m zero-shot --templates 3 --labels "$F/labels.npy" --to json "$F/img.npy" "$F/zs_txt.npy"
expect_ok "-m zero-shot --labels --to json"
pycheck "zero-shot accuracy: top-1 and top-5 as open_clip" 'close_json(json.load(open(sys.argv[1])), metrics("zero_shot"))' "$T/out"
run "$CS" -m zero-shot --templates 3 --labels "$D/labels.txt" "$F/img.npy" "$F/zs_txt.npy"
expect_ok "--labels from a text file"
expect_stdout_eq "images  classes  top1   top5
40      8        0.325  0.95" "zero-shot accuracy as text"
run_sh "$CS -m zero-shot --templates 3 --labels - $F/img.npy $F/zs_txt.npy < $F/labels.npy"
expect_ok "--labels - (stdin)"
expect_stdout_has "0.325" "--labels from stdin"
run "$CS" -m siglip --logit-scale 10 --logit-bias -5 "$F/img.npy" "$F/txt_m.npy" -o "$O/sig.npy"
expect_ok "-m siglip"
pycheck "siglip: sigmoid(t cos + b) for every pair" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/sig.npy" "$F/siglip.npy"
run "$CS" -m siglip --diagonal --logit-scale 10 --logit-bias -5 "$F/img.npy" "$F/txt.npy" -o "$O/sigd.npy"
expect_ok "-m siglip --diagonal"
pycheck "siglip --diagonal" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$O/sigd.npy" "$F/siglip_diag.npy"

# ------------------------------------------------------------ retrieval
run "$CS" -m retrieval --text-image "$F/text_image.npy" --to json "$F/img.npy" "$F/caps.npy"
expect_ok "-m retrieval --text-image --to json"
pycheck "retrieval with several captions per image, both directions" '
g = json.load(open(sys.argv[1])); close_json(g, metrics("retrieval_caps"))
assert sorted(g) == ["image_to_text", "text_to_image"]
assert sorted(g["image_to_text"]) == ["median_rank", "mrr", "queries", "recall@1", "recall@10", "recall@5"]' "$T/out"
cp "$T/out" "$O/ret.json"
for b in 1 5 64 8192; do
  for th in 1 2 3; do
    run "$CS" -m retrieval --block "$b" --threads "$th" --text-image "$F/text_image.npy" --to json "$F/img.npy" "$F/caps.npy"
    expect_file_eq "$T/out" "$O/ret.json" "retrieval --block $b --threads $th: the same JSON"
  done
done
run "$CS" -m retrieval --to json "$F/img.npy" "$F/txt.npy"
expect_ok "-m retrieval, pair by pair"
pycheck "retrieval pair by pair" 'close_json(json.load(open(sys.argv[1])), metrics("retrieval_pairs"))' "$T/out"
run "$CS" -m retrieval --k 2,1,2 --text-image "$F/text_image.npy" "$F/img.npy" "$F/caps.npy"
expect_ok "--k 2,1,2"
expect_stdout_eq "direction      queries  recall@2  recall@1  median_rank  mrr
image_to_text  38       0.5       0.368421  2.5          0.49572
text_to_image  118      0.432203  0.271186  4            0.435784" "--k 2,1,2: recall@2 and recall@1, as a table"
# Streamed ranks against numpy's dense matrix (float64, no near-ties in these data).
for b in 7 512; do
  run "$CS" -m retrieval --block "$b" --k 1,5,10,50 -o "$O/r.json" "$D/r_img.npy" "$D/r_txt.npy"
  expect_ok "-m retrieval --block $b on 600 x 600"
  pycheck "streamed retrieval (--block $b) equals numpy on the dense matrix" '
a, b = np.load(sys.argv[2]).astype(np.float64), np.load(sys.argv[3]).astype(np.float64)
a /= np.linalg.norm(a, axis=1, keepdims=True); b /= np.linalg.norm(b, axis=1, keepdims=True)
s = a @ b.T
g = json.load(open(sys.argv[1]))
for name, m in (("image_to_text", s), ("text_to_image", s.T)):
    pos = np.diag(m)[:, None]
    gap = np.abs(m - pos + np.eye(len(m)) * 9).min()
    assert gap > 1e-6, gap  # float32 rounding of these cosines is below 1e-7
    ranks = 1 + ((m >= pos) & ~np.eye(len(m), dtype=bool)).sum(1)
    want = {"recall@%d" % k: float((ranks <= k).mean()) for k in (1, 5, 10, 50)}
    want.update(median_rank=float(np.median(ranks)), mrr=float((1 / ranks).mean()), queries=len(m))
    close_json(g[name], want, 1e-12)' "$O/r.json" "$D/r_img.npy" "$D/r_txt.npy"
done

# Bounded memory: 20,000 x 20,000 retrieval holds no 1.6 GB matrix.
if [ -x /usr/bin/time ]; then
  py 'a = np.random.default_rng(4).normal(size=(20000, 16)).astype(np.float32)
np.save(sys.argv[1], a); np.save(sys.argv[2], a + np.random.default_rng(5).normal(size=a.shape).astype(np.float32))' \
    "$D/w_img.npy" "$D/w_txt.npy"
  run /usr/bin/time -f "maxrss %M" -o "$T/rss" "$CS" -m retrieval "$D/w_img.npy" "$D/w_txt.npy"
  expect_rc 0 "retrieval of 20000 x 20000"
  rss=$(awk '/maxrss/ { print $2 }' "$T/rss")
  [ "${rss:-999999}" -lt 200000 ] && pass || fail "retrieval of 20000 x 20000 used ${rss} KB (the matrix alone is 1.6 GB)"
  rm -f "$D/w_img.npy" "$D/w_txt.npy"
fi

# ------------------------------------------------------------ sharded retrieval: --shard K/N, then --merge
py '
d = sys.argv[1]
rng = np.random.default_rng(11)
# Small whole numbers, some rows repeated: many exact ties among the similarities.
img = rng.integers(-2, 3, (150, 8)).astype(np.float32); img[:, 0][img[:, 0] == 0] = 1
txt = rng.integers(-2, 3, (310, 8)).astype(np.float32); txt[:, 0][txt[:, 0] == 0] = 1
img[100:120] = img[:20]; txt[200:240] = txt[:40]
np.save(d + "/t_img.npy", img); np.save(d + "/t_txt.npy", txt)
np.save(d + "/t_owner.npy", (np.arange(310) * 7) % 140)  # images 140.. have no caption
' "$D"
S=$(freshdir shards)
# shard_and_merge TAG N ARGS...: the N states of the run ARGS..., merged in
# the order 1, 0, N-1, ..., 2, as text and JSON, equal to the whole run's bytes.
shard_and_merge() {
  local tag=$1 n=$2 k states=()
  shift 2
  for ((k = 0; k < n; k++)); do
    run "$CS" -m retrieval --shard "$k/$n" "$@" -o "$S/$tag.$n.$k.st"
    expect_ok "$tag: --shard $k/$n"
  done
  for ((k = 0; k < n; k++)); do states+=("$S/$tag.$n.$(((n + 1 - k) % n)).st"); done
  run "$CS" --merge "${states[@]}" -o "$S/merged.txt"
  expect_ok "$tag: --merge of $n states"
  expect_file_eq "$S/merged.txt" "$S/$tag.whole.txt" "$tag: $n shards merged give the whole run's table"
  run "$CS" --merge --to json "${states[@]}"
  expect_file_eq "$T/out" "$S/$tag.whole.json" "$tag: $n shards merged give the whole run's JSON"
  run "$CS" --merge --k 1,3 "${states[@]}"
  expect_file_eq "$T/out" "$S/$tag.whole.k13.txt" "$tag: $n shards merged with --k 1,3"
}
# sharded_case TAG ARGS...: the whole run, then 1, 2, 3 and 5 shards of it.
sharded_case() {
  local tag=$1 n
  shift
  run "$CS" -m retrieval "$@" -o "$S/$tag.whole.txt"
  expect_ok "$tag: the whole run"
  run "$CS" -m retrieval "$@" -o "$S/$tag.whole.json"
  run "$CS" -m retrieval --k 1,3 "$@" -o "$S/$tag.whole.k13.txt"
  for n in 1 2 3 5; do shard_and_merge "$tag" "$n" "$@"; done
}
sharded_case pairs "$D/r_img.npy" "$D/r_txt.npy"
sharded_case caps --block 7 --text-image "$F/text_image.npy" "$F/img.npy" "$F/caps.npy"
sharded_case ties --block 16 --text-image "$D/t_owner.npy" "$D/t_img.npy" "$D/t_txt.npy"
sharded_case ties64 --block 64 --threads 1 --text-image "$D/t_owner.npy" "$D/t_img.npy" "$D/t_txt.npy"
pycheck "a state as clip-score(1) says numpy reads it" '
import struct
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
assert meta["format"] == "nnkit clip-score retrieval shard" and meta["version"] == "1", meta
assert (meta["shard"], meta["shards"], meta["block"], meta["images"], meta["texts"]) == ("1", "3", "7", "40", "118"), meta
assert (meta["row_begin"], meta["row_end"]) == ("14", "28"), meta  # 6 blocks of 7 rows: 2 per shard
assert len(meta["fingerprint"]) == 16, meta
t = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<i8") for k, v in header.items()}
assert [header[k]["dtype"] for k in sorted(t)] == ["I64", "I64"]
assert t["image_to_text_rank"].shape == (14,) and t["text_to_image_count"].shape == (118,)' "$S/caps.3.1.st"
pycheck "the states add up to the ranks of the whole run" '
import struct
def load(path):
    raw = open(path, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<i8")
            for k, v in h.items() if k != "__metadata__"}
s = [load(p) for p in sys.argv[1:4]]
i2t = np.concatenate([x["image_to_text_rank"] for x in s])
t2i = 1 + sum(x["text_to_image_count"] for x in s)
g = json.load(open(sys.argv[4]))
assert g["image_to_text"]["queries"] == (i2t > 0).sum() and abs(g["text_to_image"]["mrr"] - (1 / t2i).mean()) < 1e-12, g' \
  "$S/caps.3.0.st" "$S/caps.3.1.st" "$S/caps.3.2.st" "$S/caps.whole.json"
# Pipes: a state to stdout, a state from stdin.
run_sh "$CS -m retrieval --shard 0/1 --block 7 --text-image $F/text_image.npy $F/img.npy $F/caps.npy | $CS --merge -"
expect_ok "--shard to a pipe, --merge from stdin"
expect_file_eq "$T/out" "$S/caps.whole.txt" "a piped state merges to the whole run"
run_sh "$CS --merge $S/caps.3.2.st - $S/caps.3.0.st < $S/caps.3.1.st"
expect_file_eq "$T/out" "$S/caps.whole.txt" "one of the states from stdin"
run_sh "$CS -m retrieval --shard 0/1 --block 7 --text-image $F/text_image.npy $F/img.npy $F/caps.npy | $CS --merge"
expect_ok "--merge with no STATE reads stdin"
expect_file_eq "$T/out" "$S/caps.whole.txt" "--merge with no STATE: stdin's state merges to the whole run"
# Bad sets of states: exit 65, one line, nothing written.
merge_error() {  # merge_error WORDS DESC STATE...
  local words=$1 desc=$2 out
  shift 2
  out=$(freshdir mergeout)
  run "$CS" --merge "$@" -o "$out/m.json"
  expect_error 65 "$words" "$desc"
  expect_empty_dir "$out" "$desc"
}
C3=$S/caps.3
merge_error "shard 1/3 missing" "a missing shard" "$C3.0.st" "$C3.2.st"
merge_error "shard 2/3 missing" "the last shard missing" "$C3.1.st" "$C3.0.st"
merge_error "caps.3.1.st both shard 1/3" "a shard given twice" "$C3.0.st" "$C3.1.st" "$C3.1.st" "$C3.2.st"
cp "$C3.1.st" "$S/copy.st"
merge_error "copy.st both shard 1/3" "a shard given twice under two names" "$C3.0.st" "$C3.1.st" "$S/copy.st" "$C3.2.st"
merge_error "different runs" "states of another run (other inputs)" "$C3.0.st" "$S/pairs.3.1.st" "$C3.2.st"
merge_error "different runs shard counts" "states of runs with other shard counts" "$C3.0.st" "$S/caps.5.1.st" "$C3.2.st"
run "$CS" -m retrieval --shard 1/3 --block 8 --text-image "$F/text_image.npy" "$F/img.npy" "$F/caps.npy" -o "$S/b8.st"
merge_error "different runs --block 8 7" "a state of another --block" "$C3.0.st" "$S/b8.st" "$C3.2.st"
py 'o = np.load(sys.argv[1]); o[0] = (o[0] + 1) % 40; np.save(sys.argv[2], o)' "$F/text_image.npy" "$D/owner_other.npy"
run "$CS" -m retrieval --shard 1/3 --block 7 --text-image "$D/owner_other.npy" "$F/img.npy" "$F/caps.npy" -o "$S/o.st"
merge_error "different runs inputs" "a state of another --text-image" "$C3.0.st" "$S/o.st" "$C3.2.st"
head -c 700 "$C3.1.st" > "$S/trunc.st"
merge_error "trunc.st" "a truncated state" "$C3.0.st" "$S/trunc.st" "$C3.2.st"
head -c 20 "$C3.1.st" > "$S/trunc_head.st"
merge_error "trunc_head.st" "a state cut inside its header" "$C3.0.st" "$S/trunc_head.st" "$C3.2.st"
merge_error "img.npy not a clip-score retrieval shard state" "an embedding file as a state" "$C3.0.st" "$F/img.npy" "$C3.2.st"
: > "$S/empty.st"
merge_error "empty.st" "an empty state" "$S/empty.st"
run "$CS" --merge "$C3.0.st" /nonexistent/s.st -o "$S/m.txt"
expect_error 66 "/nonexistent/s.st" "--merge with a missing state"
# Bad --shard and --merge command lines: exit 64, nothing written.
P2=("$F/img.npy" "$F/txt.npy")
R2=(-m retrieval "${P2[@]}")
for p in 5/3 3/3 -1/2 1/0 abc 1 1/ /2 "0/2 " 0.5/2; do
  bad_option clip-score 64 "part" --shard="$p" "${R2[@]}"
done
bad_option clip-score 64 "shard retrieval tensor-split --part" --shard 0/2 "${P2[@]}"
bad_option clip-score 64 "shard retrieval tensor-split --part" -m matrix --shard 0/2 "${P2[@]}"
bad_option clip-score 64 "shard retrieval" --loss clip --shard 0/2 "${P2[@]}"
bad_option clip-score 64 "--k --merge" --shard 0/2 --k 1,5 "${R2[@]}"
bad_option clip-score 64 "shard safetensors json" --shard 0/2 --to json "${R2[@]}"
bad_option clip-score 64 "--block --merge" --merge --block 7 "$C3.0.st" "$C3.1.st" "$C3.2.st"
bad_option clip-score 64 "--text-image --merge" --merge --text-image "$F/text_image.npy" "$C3.0.st"
bad_option clip-score 64 "--shard --merge" --merge --shard 0/3 "$C3.0.st"
bad_option clip-score 64 "--merge --mode pairs" --merge -m pairs "$C3.0.st"
bad_option clip-score 64 "--merge summary npy" --merge --to npy "$C3.0.st" "$C3.1.st" "$C3.2.st"
bad_option clip-score 64 "stdin" --merge - - "$C3.0.st"
bad_option clip-score 64 "k" --merge --k 0 "$C3.0.st"
run "$CS" --merge -m retrieval "$C3.0.st" "$C3.1.st" "$C3.2.st"
expect_ok "--merge takes --mode retrieval"
# A shard that fails leaves no state behind.
out=$(freshdir shardout)
run "$CS" -m retrieval --shard 0/2 "$F/img.npy" "$D/txt_nan.npy" -o "$out/s.st"
expect_error 65 "NaN" "a shard of bad data"
expect_empty_dir "$out" "a shard of bad data"
run "$CS" -m retrieval --shard 0/2 "$F/img.npy" "$D/txt_39.npy" -o "$out/s.st"
expect_error 65 "40 39" "a shard of N != M without --text-image"
expect_empty_dir "$out" "a shard of N != M"
rm -f "$S"/*

# ------------------------------------------------------------ losses
run "$CS" --loss clip --to json "$F/img.npy" "$F/txt.npy"
expect_ok "--loss clip"
pycheck "CLIP loss as open_clip ClipLoss (scale 100)" 'close_json(json.load(open(sys.argv[1])), metrics("clip_loss"))' "$T/out"
run "$CS" --mode pairs --loss siglip --logit-scale 10 --logit-bias -10 -o "$O/l.json" "$F/img.npy" "$F/txt.npy"
expect_ok "--loss siglip"
pycheck "SigLIP loss as open_clip SigLipLoss" 'close_json(json.load(open(sys.argv[1])), metrics("siglip_loss"))' "$O/l.json"
run "$CS" --loss clip --logit-scale 20 --block 9 "$F/img.npy" "$F/txt.npy"
expect_ok "--loss clip --logit-scale 20 --block 9"
expect_stdout_has "loss  value" "--loss as a text table"

# ------------------------------------------------------------ formats, pipes, stdin
for f in txt csv json; do
  run "$CS" "$F/img.npy" "$F/txt.npy" --to "$f" -o "$O/p.$f"
  expect_ok "pairs --to $f"
done
run "$CONVERT" "$O/p.csv" -o "$O/back.npy"
pycheck "pairs --to csv reads back" 'close(np.load(sys.argv[1]).ravel(), np.load(sys.argv[2]))' "$O/back.npy" "$F/pairs_hessel.npy"
pycheck "pairs --to json: a list of numbers" 'close(np.array(json.load(open(sys.argv[1]))), np.load(sys.argv[2]))' "$O/p.json" "$F/pairs_hessel.npy"
run "$CS" "$F/img.npy" "$F/txt.npy"
cp "$T/out" "$O/ref_pairs.npy"
for how in "cat $D/both.npy | $CS - -" "$CS - - < $D/both.npy" "cat $F/img.npy | $CS - $F/txt.npy" \
           "$CS $F/img.npy - < $F/txt.npy" "$CONVERT $F/img.npy --to csv | $CS - $F/txt.npy" \
           "$CS -q $F/img.npy $F/txt.npy" "$CS --threads 1 $F/img.npy $F/txt.npy -o -" \
           "$CS $F/img.npy $F/txt.npy --output -"; do
  run_sh "$how"
  expect_ok "$how"
  pycheck "$how gives the pairs" 'close(np.load(sys.argv[1]), np.load(sys.argv[2]))' "$T/out" "$O/ref_pairs.npy"
done
run_sh "cat $F/caps.npy $F/text_image.npy | $CS -m retrieval --text-image - --to json $F/img.npy -"
expect_ok "stdin holding TEXT_EMB and then --text-image"
pycheck "TEXT_EMB and --text-image from one stdin" 'close_json(json.load(open(sys.argv[1])), metrics("retrieval_caps"))' "$T/out"
run_sh "cat $F/img.npy $F/refs.npy | $CS --refs - - $F/txt.npy"
expect_ok "stdin holding IMAGE_EMB and then --refs"
pycheck "IMAGE_EMB and --refs from one stdin" 'close(load_stream(sys.argv[1])[1], np.load(sys.argv[2]))' "$T/out" "$F/refclip.npy"
run_sh "cat $F/img.npy | $CS - -"
expect_error 65 "stdin 1 tensor 2 inputs" "stdin named twice but holding one tensor"
run_sh "cat $D/both.npy $F/txt.npy | $CS -m retrieval - - "
expect_error 65 "3 tensor" "stdin named twice but holding three tensors"
run "$CS" "$D/int_rows.npy" "$F/txt.npy"
expect_ok "integer rows are converted"
run "$CS" --threads 2 -m matrix "$D/big_img.npy" "$D/big_txt.npy" -o "$O/t2.npy"
run "$CS" --threads 1 -m matrix "$D/big_img.npy" "$D/big_txt.npy" -o "$O/t1.npy"
expect_file_eq "$O/t1.npy" "$O/t2.npy" "the matrix is the same at --threads 1 and 2"
rm -f "$O"/*

# ------------------------------------------------------------ zero vectors, NaN, shapes: exit 65
data_error() {  # data_error WORDS DESC ARGS...: exit 65, one line, nothing left
  local words=$1 desc=$2
  shift 2
  local out
  out=$(freshdir dataout)
  run "$CS" "$@" -o "$out/out.npy"
  expect_error 65 "$words" "$desc"
  expect_empty_dir "$out" "$desc"
}
data_error "IMAGE_EMB img_zero.npy row 5 zero --allow-zero" "a zero image row" "$D/img_zero.npy" "$F/txt.npy"
data_error "zero" "a zero row in retrieval" -m retrieval "$D/img_zero.npy" "$F/txt.npy"
run "$CS" --allow-zero "$D/img_zero.npy" "$F/txt.npy" -o "$O/z.npy"
expect_ok "--allow-zero"
pycheck "--allow-zero: the zero row scores 0, the others as before" '
g, w = np.load(sys.argv[1]), np.load(sys.argv[2]).copy(); w[5] = 0; close(g, w)' "$O/z.npy" "$F/pairs_hessel.npy"
run "$CS" --no-normalize "$D/img_zero.npy" "$F/txt.npy" -o "$O/z.npy"
expect_ok "--no-normalize lets a zero row through"
data_error "TEXT_EMB txt_nan.npy [3, 7] NaN" "NaN in TEXT_EMB" "$F/img.npy" "$D/txt_nan.npy"
data_error "[2, 1] infinite" "-inf in TEXT_EMB" -m matrix "$F/img.npy" "$D/txt_inf.npy"
data_error "NaN" "NaN, with --allow-zero" --allow-zero "$F/img.npy" "$D/txt_nan.npy"
data_error "D = 31 D = 32" "D mismatch" "$F/img.npy" "$D/txt_d31.npy"
data_error "D = 31" "D mismatch in retrieval" -m retrieval "$F/img.npy" "$D/txt_d31.npy"
data_error "D = 31" "D mismatch in the matrix" -m matrix "$F/img.npy" "$D/txt_d31.npy"
data_error "40 39" "N != M in pairs" "$F/img.npy" "$D/txt_39.npy"
data_error "40 39" "N != M in retrieval without --text-image" -m retrieval "$F/img.npy" "$D/txt_39.npy"
data_error "40 39" "N != M for --loss" --loss clip "$F/img.npy" "$D/txt_39.npy"
data_error "40 56" "N != M for --diagonal" -m matrix --diagonal "$F/img.npy" "$F/txt_m.npy"
data_error "2-D [32]" "a 1-D TEXT_EMB" "$F/img.npy" "$D/vec.npy"
data_error "booleans" "a bool TEXT_EMB" "$F/img.npy" "$D/bool.npy"
data_error "REF_EMB 3-D" "2-D --refs" --refs "$F/txt.npy" "$F/img.npy" "$F/txt.npy"
data_error "REF_EMB N = 40" "--refs for 39 captions" --refs "$D/refs_39.npy" "$F/img.npy" "$F/txt.npy"
data_error "LABELS labels_bad.npy entry 39 8" "a label out of range" -m zero-shot --templates 3 --labels "$D/labels_bad.npy" "$F/img.npy" "$F/zs_txt.npy"
data_error "LABELS 40 indices [39]" "too few labels" -m zero-shot --labels "$D/labels_short.npy" "$F/img.npy" "$F/zs_txt.npy"
data_error "TEXT_IMAGE owner_bad.npy 40" "--text-image out of range" -m retrieval --text-image "$D/owner_bad.npy" "$F/img.npy" "$F/caps.npy"
data_error "TEXT_IMAGE" "--text-image of the wrong length" -m retrieval --text-image "$F/labels.npy" "$F/img.npy" "$F/caps.npy"
data_error "24 rows 5 templates" "--templates that do not divide the rows" -m zero-shot --templates 5 "$F/img.npy" "$F/zs_txt.npy"

# ------------------------------------------------------------ bad options: exit 64, nothing left
G2=("$F/img.npy" "$F/txt.npy")
bad_option clip-score 64 "mode" --mode bogus "${G2[@]}"
bad_option clip-score 64 "convention" --convention openai "${G2[@]}"
bad_option clip-score 64 "w" --w 0 "${G2[@]}"
bad_option clip-score 64 "w" --w -1 "${G2[@]}"
bad_option clip-score 64 "w" --w nan "${G2[@]}"
bad_option clip-score 64 "" --w x "${G2[@]}"
bad_option clip-score 64 "logit-scale" -m matrix --logit-scale 0 "${G2[@]}"
bad_option clip-score 64 "logit-scale" -m matrix --logit-scale inf "${G2[@]}"
bad_option clip-score 64 "logit-bias" -m siglip --logit-scale 10 --logit-bias nan "${G2[@]}"
bad_option clip-score 64 "siglip logit-scale logit-bias" -m siglip "${G2[@]}"
bad_option clip-score 64 "logit-bias" -m siglip --logit-scale 10 "${G2[@]}"
bad_option clip-score 64 "logit-scale" --loss siglip --logit-bias -10 "${G2[@]}"
bad_option clip-score 64 "loss" --loss bogus "${G2[@]}"
bad_option clip-score 64 "loss matrix" --loss clip -m matrix "${G2[@]}"
bad_option clip-score 64 "refs torchmetrics" --refs "$F/refs.npy" --convention torchmetrics "${G2[@]}"
bad_option clip-score 64 "refs pairs" --refs "$F/refs.npy" -m matrix "${G2[@]}"
bad_option clip-score 64 "w torchmetrics" --w 2 --convention torchmetrics "${G2[@]}"
bad_option clip-score 64 "convention" -m retrieval --convention hessel "${G2[@]}"
bad_option clip-score 64 "mean pairs" -m matrix --mean "${G2[@]}"
bad_option clip-score 64 "bootstrap" -m retrieval --bootstrap 10 "${G2[@]}"
bad_option clip-score 64 "bootstrap" --bootstrap -1 "${G2[@]}"
bad_option clip-score 64 "seed bootstrap" --mean --seed 3 "${G2[@]}"
bad_option clip-score 64 "seed" --bootstrap 5 --seed -1 "${G2[@]}"
bad_option clip-score 64 "logit-scale" --logit-scale 50 "${G2[@]}"
bad_option clip-score 64 "logit-scale retrieval" -m retrieval --logit-scale 50 "${G2[@]}"
bad_option clip-score 64 "logit-bias" -m zero-shot --logit-bias 1 "${G2[@]}"
bad_option clip-score 64 "templates" --templates 3 "${G2[@]}"
bad_option clip-score 64 "templates" -m zero-shot --templates 0 "${G2[@]}"
bad_option clip-score 64 "labels zero-shot" --labels "$F/labels.npy" "${G2[@]}"
bad_option clip-score 64 "text-image retrieval" -m matrix --text-image "$F/labels.npy" "${G2[@]}"
bad_option clip-score 64 "k retrieval" --k 1,5 "${G2[@]}"
for k in 0 -1 a 1,,2 "" 1.5 ,1 "5 "; do
  bad_option clip-score 64 "k" -m retrieval --k="$k" "${G2[@]}"
done
bad_option clip-score 64 "diagonal" --diagonal "${G2[@]}"
bad_option clip-score 64 "diagonal" -m zero-shot --diagonal "${G2[@]}"
bad_option clip-score 64 "block" --block 64 "${G2[@]}"
bad_option clip-score 64 "block" -m matrix --block 0 "${G2[@]}"
bad_option clip-score 64 "block" -m matrix --block 9000 "${G2[@]}"
bad_option clip-score 64 "block" -m matrix --diagonal --block 16 "${G2[@]}"
bad_option clip-score 64 "summary npy" --mean --to npy "${G2[@]}"
bad_option clip-score 64 "summary csv" -m retrieval --to csv "${G2[@]}"
bad_option clip-score 64 "" --to png "${G2[@]}"
bad_option clip-score 64 "bogus" --bogus "${G2[@]}"
bad_option clip-score 64 "2 inputs" "$F/img.npy"
bad_option clip-score 64 "too many" "${G2[@]}" "$F/txt.npy"
out=$(freshdir pngout)
run "$CS" "${G2[@]}" -o "$out/x.png"
expect_error 64 "png" "-o x.png"
expect_empty_dir "$out" "-o x.png"
# A bad option value wins over a missing input.
run "$CS" --w 0 /nonexistent/a.npy /nonexistent/b.npy
expect_error 64 "w" "bad --w with missing inputs"
run "$CS" /nonexistent/a.npy "$F/txt.npy"
expect_error 66 "/nonexistent/a.npy" "a missing IMAGE_EMB"
run "$CS" --refs /nonexistent/r.npy "${G2[@]}"
expect_error 66 "/nonexistent/r.npy" "a missing --refs"

# Every output format the help lists for --to is one the tool writes.
expect_to_formats clip-score "$F/txt.npy" "$F/img.npy"

# ------------------------------------------------------------ the shipped example
if [ -n "$NNKIT_SRC" ] && [ -f "$NNKIT_SRC/examples/clip/run.sh" ]; then
  run_sh "NNKIT_BIN=$NNKIT_BIN OUT=$T/example bash $NNKIT_SRC/examples/clip/run.sh"
  expect_ok "examples/clip/run.sh"
  expect_stdout_has "clipscore  128  0.755411" "the example's CLIPScore"
  pycheck "the example: CLIPScore, RefCLIPScore and recall files" '
c, r = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert abs(c["mean"] - 0.755411) < 1e-5 and c["bootstrap"] == 1000, c
assert r["image_to_text"]["queries"] == 128 and r["text_to_image"]["queries"] == 640, r
assert 0.3 < r["image_to_text"]["recall@1"] < 0.7, r' "$T/example/clipscore.json" "$T/example/recall.json"
else
  fail "NNKIT_SRC is not set: cannot run examples/clip/run.sh"
fi

# ------------------------------------------------------------ bad input, bad output
bad_input_matrix clip-score out.npy "$F/img.npy"
BAD_ONLY='missing|adir|empty|trunc_data_half|garbage|huge_shape|huge_fits|st_offsets|png_crc|text_word' \
  bad_input_matrix clip-score out.json -m retrieval "$F/img.npy"
BAD_ONLY='missing|empty|trunc_data_half|garbage|huge_shape' \
  bad_input_matrix clip-score out.npy -m zero-shot --labels "$F/labels.npy" "$F/img.npy"
BAD_ONLY='missing|trunc_data_half|garbage' bad_input_matrix clip-score out.npy --refs "$F/refs.npy" "$F/img.npy"
bad_output_matrix clip-score "$F/txt_m.npy" "$D/big_txt.npy" -m matrix "$D/big_img.npy"
bad_output_matrix clip-score "$F/txt.npy" "$F/txt.npy" --mean --to json "$F/img.npy"

finish
