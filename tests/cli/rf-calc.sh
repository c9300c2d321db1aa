#!/usr/bin/env bash
# rf-calc end to end: the published receptive fields of the built-in networks,
# descriptions from files, pipes and stdin, every output format checked by
# numpy (table, JSON, CSV, npy, safetensors, --boxes, --unit), every option of
# --help, the built-in networks against the shipped files, bad descriptions
# (exit 65 naming the line) and bad options (64) with no output left behind,
# the bad-output matrix, and a 10,000-layer chain in well under a second.
TOOL=rf-calc
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bad-input.sh"
RF=$(bin rf-calc)
D=$T/in
mkdir -p "$D"

# ------------------------------------------------------------ --help, options
expect_help_version rf-calc --model --list-models --input-size --padding-convention --allow-misaligned \
  --layer --boxes --unit --clip --help --version --output --to --quiet --threads

# ------------------------------------------------------------ inputs
cat >"$D/net.txt" <<'EOF'
# the example of the issue: a stem and a residual branch
conv1: conv k=7 s=2 p=3
pool1: maxpool k=3 s=2 p=1
a:     conv k=1
b:     conv k=3 p=1 from=a
sum:   add from=pool1,b
EOF
printf 'c: conv k=3 s=2\r\nu: deconv k=3 s=2\r\nu3: upsample factor=3 from=c\r\n' >"$D/frac.txt"
printf 'a: conv k=3\nb: conv k=2 from=input\nsum: add from=a,b\n' >"$D/misaligned.txt"
printf 'c: conv k=3x5 s=2x1 p=1x2\np: maxpool k=2 s=2 ceil=1\n' >"$D/rect.txt"
printf 'c: conv k=3 s=2 p=same\n' >"$D/tfsame.txt"
printf 'c: conv k=3 s=2 p=1\ng: global_pool\n' >"$D/global.txt"
# A chain of 10,000 layers (strides of 2 every 2,000) and a copy of the issue
# example with a bad line in each way the issue names.
"$PY" - "$D" <<'EOF'
import os, sys
d = sys.argv[1]
with open(os.path.join(d, "chain.txt"), "w") as f:
    for i in range(10000):
        if i % 2000 == 1999:
            f.write("l%d: maxpool k=3 s=2 p=1\n" % i)
        elif i % 3 == 0:
            f.write("l%d: conv k=3x5 d=2 p=2x4\n" % i)
        elif i % 3 == 1:
            f.write("l%d: relu\n" % i)
        else:
            f.write("l%d: conv k=3 p=same\n" % i)
good = open(os.path.join(d, "net.txt")).read().splitlines()
bad = {
    "op": (4, "b:     convv k=3 p=1 from=a"),
    "key": (4, "b:     conv k=3 q=1 from=a"),
    "from": (4, "b:     conv k=3 p=1 from=nowhere"),
    "cycle": (4, "b:     conv k=3 p=1 from=sum"),
    "self": (4, "b:     conv k=3 p=1 from=b"),
    "stride0": (3, "pool1: maxpool k=3 s=0 p=1"),
    "kneg": (2, "conv1: conv k=-7 s=2 p=3"),
    "absurd": (2, "conv1: conv k=7 s=2 p=30000000000"),
    "nocolon": (5, "a conv k=1"),
    "twice": (5, "b:     conv k=3 p=1 p=1 from=a"),
    "dup": (5, "conv1: conv k=1"),
    "merge1": (6, "sum:   add from=b"),
}
for name, (line, text) in bad.items():
    lines = list(good)
    lines[line - 1] = text
    with open(os.path.join(d, "bad_%s_%d.txt" % (name, line)), "w") as f:
        f.write("\n".join(lines) + "\n")
EOF
make_bad_inputs

PYPRELUDE='
def load_stream(path):
    import io
    raw = open(path, "rb").read()
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append(np.load(f))
    return out
def report(path):
    return json.load(open(path))
def rsp(entry):
    return [entry["receptive_field"], entry["effective_stride"], entry["effective_padding"]]
'
O=$(freshdir o)

# ------------------------------------------------------------ the published values
# Araujo, Norris & Sim (Distill 2019) and google-research/receptive_field.
check_model() {  # check_model NAME R S P [OPTIONS...]
  local name=$1 r=$2 s=$3 p=$4
  shift 4
  run "$RF" --model "$name" "$@" --to json -o "$O/$name.json"
  expect_ok "--model $name $*"
  pycheck "--model $name: r=$r S=$s P=$p" '
out = report(sys.argv[1])["output"]
want = [int(v) for v in sys.argv[2:5]]
assert rsp(out) == [[want[0]] * 2, [want[1]] * 2, [want[2]] * 2], rsp(out)' "$O/$name.json" "$r" "$s" "$p"
}
check_model vgg16 212 32 90
check_model vgg16 212 32 90 --input-size 224
check_model alexnet_v2 195 32 64
check_model resnet_v1_50 483 32 239 --padding-convention tf --input-size 224
check_model resnet_v1_101 1027 32 511 --padding-convention tf --input-size 224
check_model resnet_v1_152 1507 32 751 --padding-convention tf --input-size 224
check_model mobilenet_v1 315 32 126 --padding-convention tf --input-size 224
check_model resnet50 427 32 213
# torchvision's others, computed by hand (see the unit tests for the recurrence).
check_model alexnet 195 32 66
check_model vgg11 150 32 59
check_model vgg13 156 32 62
check_model vgg19 268 32 118
check_model resnet18 435 32 217
check_model resnet34 899 32 449
check_model resnet101 971 32 485
check_model resnet152 1451 32 725
run "$RF" -m resnet50 --input-size 224 -l layer3 --to json
expect_ok "-m resnet50 -l layer3"
pycheck "resnet50 layer3 at 224: 14x14 units, r=267 S=16 P=133" '
out = report(sys.argv[1])["output"]
assert out["name"] == "layer3" and out["output_size"] == [14, 14], out
assert rsp(out) == [[267, 267], [16, 16], [133, 133]], rsp(out)' "$T/out"

# ------------------------------------------------------------ --list-models, and the shipped files
run "$RF" --list-models
expect_ok "--list-models"
for m in alexnet vgg11 vgg13 vgg16 vgg19 resnet18 resnet34 resnet50 resnet101 resnet152 alexnet_v2 \
         resnet_v1_50 mobilenet_v1; do
  expect_stdout_has "$m " "--list-models lists $m"
done
expect_stdout_has "torchvision ResNet-50: conv1 to layer4" "--list-models gives each network's summary"
n_listed=$(wc -l <"$T/out")
if [ -n "$NNKIT_SRC" ] && [ -d "$NNKIT_SRC/models/rf-calc" ]; then
  n_files=0
  for f in "$NNKIT_SRC"/models/rf-calc/*.net; do
    n_files=$((n_files + 1))
    m=$(basename "$f" .net)
    opts=()
    case $m in resnet_v1_*|mobilenet_v1) opts=(--padding-convention tf --input-size 224) ;; esac
    run "$RF" "$f" "${opts[@]}" --to csv -o "$O/file.csv"
    expect_ok "the shipped $m.net"
    run "$RF" --model "$m" "${opts[@]}" --to csv -o "$O/model.csv"
    expect_ok "--model $m"
    expect_file_eq "$O/file.csv" "$O/model.csv" "--model $m is models/rf-calc/$m.net (rebuilt since?)"
  done
  [ "$n_files" -eq "$n_listed" ] && pass || fail "--list-models lists $n_listed networks, models/rf-calc has $n_files"
fi
run "$RF" --list-models -o "$O/list.txt"
expect_ok "--list-models -o FILE"
[ "$(wc -l <"$O/list.txt")" -eq "$n_listed" ] && pass || fail "--list-models -o FILE"
rm -f "$O"/*

# ------------------------------------------------------------ the table, from files, pipes and stdin
TABLE='layer  op       size  r   S  P  center
conv1  conv     112   7   2  3  0
pool1  maxpool  56    11  4  5  0
a      conv     56    11  4  5  0
b      conv     56    19  4  9  0
sum    add      56    19  4  9  0'
for how in "$RF $D/net.txt --input-size 224 --to txt" "cat $D/net.txt | $RF --input-size 224 --to txt" \
           "cat $D/net.txt | $RF - --input-size=224 --to txt" "$RF --to txt --input-size 224 < $D/net.txt" \
           "$RF $D/net.txt --input-size 224x224 -o $O/t.txt && cat $O/t.txt" \
           "$RF $D/net.txt --input-size 224 --to text"; do
  run_sh "$how"
  expect_ok "$how"
  expect_stdout_eq "$TABLE" "$how: the table"
done
run "$RF" "$D/net.txt" --to txt
expect_stdout_eq "layer  op       size  r   S  P  center
conv1  conv     -     7   2  3  0
pool1  maxpool  -     11  4  5  0
a      conv     -     11  4  5  0
b      conv     -     19  4  9  0
sum    add      -     19  4  9  0" "without --input-size the sizes are unknown"
# Exact fractions, CRLF line ends, per-axis values and sizes.
run "$RF" "$D/frac.txt" --to txt
expect_stdout_eq "layer  op        size  r     S    P    center
c      conv      -     3     2    0    1
u      deconv    -     5     1    2    0
u3     upsample  -     13/3  2/3  4/3  1/3" "deconv and upsampling: exact fractions"
run "$RF" "$D/rect.txt" --input-size 9x10 --to txt
expect_stdout_eq "layer  op       size  r    S    P    center
c      conv     5x10  3x5  2x1  1x2  0
p      maxpool  3x5   5x6  4x2  1x2  1x0.5" "HxW kernels, strides, padding and sizes; ceil mode"
rm -f "$O"/*

# ------------------------------------------------------------ JSON, CSV, npy, safetensors
run "$RF" "$D/net.txt" --input-size 224 --to json
expect_ok "--to json"
cp "$T/out" "$O/net.json"
pycheck "--to json: layers, output and every key" '
j = report(sys.argv[1])
assert set(j) == {"layers", "output"}, j.keys()
names = [e["name"] for e in j["layers"]]
assert names == ["conv1", "pool1", "a", "b", "sum"], names
keys = {"name", "op", "receptive_field", "effective_stride", "effective_padding", "center", "output_size"}
for e in j["layers"]:
    assert set(e) == keys, e
assert j["output"] == j["layers"][-1]
e = j["layers"][1]
assert e["op"] == "maxpool" and e["receptive_field"] == [11, 11] and e["effective_stride"] == [4, 4]
assert e["effective_padding"] == [5, 5] and e["center"] == [0, 0] and e["output_size"] == [56, 56], e
assert all(isinstance(v, int) for v in e["receptive_field"])' "$O/net.json"
run "$RF" "$D/frac.txt" --to json
expect_ok "--to json of fractions"
pycheck "--to json: fractions as numbers, output_size null without a size" '
j = report(sys.argv[1])
u3 = j["layers"][2]
assert abs(u3["receptive_field"][0] - 13 / 3) < 1e-12 and abs(u3["center"][1] - 1 / 3) < 1e-12, u3
assert j["layers"][1]["effective_stride"] == [1, 1] and u3["output_size"] is None, j' "$T/out"
run "$RF" "$D/net.txt" --input-size 224 -o "$O/net.csv"
expect_ok "-o x.csv"
pycheck "-o x.csv: a header and the JSON values" '
import csv
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["name", "op", "receptive_field_h", "receptive_field_w", "effective_stride_h",
                   "effective_stride_w", "effective_padding_h", "effective_padding_w", "center_h",
                   "center_w", "output_size_h", "output_size_w"], rows[0]
j = report(sys.argv[2])["layers"]
assert len(rows) == 1 + len(j)
for r, e in zip(rows[1:], j):
    want = [e["name"], e["op"]] + [str(v) for k in ("receptive_field", "effective_stride",
            "effective_padding", "center", "output_size") for v in e[k]]
    assert r == want, (r, want)' "$O/net.csv" "$O/net.json"
run "$RF" "$D/frac.txt" --to csv
expect_ok "--to csv of fractions"
pycheck "--to csv: exact decimals, round-trip doubles, empty sizes" '
rows = open(sys.argv[1]).read().splitlines()
assert rows[3] == "u3,upsample,4.333333333333333,4.333333333333333,0.6666666666666666,0.6666666666666666," \
    "1.3333333333333333,1.3333333333333333,0.3333333333333333,0.3333333333333333,,", rows[3]
assert rows[1] == "c,conv,3,3,2,2,0,0,1,1,,", rows[1]' "$T/out"
for how in "-o $O/net.npy" "--to npy -o $O/net.npy" "--to npy > $O/net.npy" "| cat > $O/net.npy"; do
  run_sh "$RF $D/net.txt --input-size 224 $how"
  expect_ok "$how"
  pycheck "$how: float64 [layers, 8] in the documented column order" '
a = np.load(sys.argv[1])
assert a.dtype == np.float64 and a.shape == (5, 8), (a.dtype, a.shape)
j = report(sys.argv[2])["layers"]
want = [[v for k in ("receptive_field", "effective_stride", "effective_padding", "center") for v in e[k]] for e in j]
assert np.array_equal(a, np.array(want, dtype=np.float64)), a' "$O/net.npy" "$O/net.json"
done
run "$RF" "$D/frac.txt" --to npy
expect_ok "--to npy of fractions"
pycheck "--to npy: fractions as the nearest doubles" '
a = np.load(sys.argv[1])
assert a.shape == (3, 8) and a[2, 0] == 13 / 3 and a[2, 2] == 2 / 3 and a[2, 6] == 1 / 3, a' "$T/out"
run "$RF" "$D/net.txt" --to safetensors -o "$O/net.st"
expect_ok "--to safetensors"
pycheck "--to safetensors: one float64 tensor named layers" '
import struct
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
h.pop("__metadata__", None)
assert list(h) == ["layers"] and h["layers"]["dtype"] == "F64" and h["layers"]["shape"] == [5, 8], h
a = np.frombuffer(raw[8 + n:], "<f8").reshape(5, 8)
assert a[4, 0] == 19 and a[4, 4] == 9, a' "$O/net.st"
expect_to_formats rf-calc "$D/net.txt" --input-size 224
rm -f "$O"/*

# ------------------------------------------------------------ --layer
run "$RF" "$D/net.txt" --layer pool1 --to json
expect_ok "--layer pool1"
pycheck "--layer: the report ends at that layer" '
j = report(sys.argv[1])
assert [e["name"] for e in j["layers"]] == ["conv1", "pool1"] and j["output"]["name"] == "pool1", j' "$T/out"
run "$RF" "$D/misaligned.txt" -l a --to csv
expect_ok "-l a: the misaligned merge below is not reached"
expect_stdout_has "a,conv,3,3" "-l a"
bad_option rf-calc 64 "nope net.txt" "$D/net.txt" --layer nope
bad_option rf-calc 64 "input" "$D/net.txt" --layer input

# ------------------------------------------------------------ --boxes
run "$RF" "$D/net.txt" --input-size 224x200 --boxes -o "$O/boxes.npy"
expect_ok "--boxes"
run "$RF" "$D/net.txt" --input-size 224x200 --to json -o "$O/hw.json"
pycheck "--boxes: [H*W, 4] float32 x1 y1 x2 y2, row-major, from r, S, P" '
b = np.load(sys.argv[1]); out = report(sys.argv[2])["output"]
H, W = out["output_size"]; (rh, rw), (sh, sw), (ph, pw) = rsp(out)
assert b.dtype == np.float32 and b.shape == (H * W, 4), (b.dtype, b.shape)
i, j = np.divmod(np.arange(H * W), W)
want = np.stack([j * sw - pw, i * sh - ph, j * sw - pw + rw - 1, i * sh - ph + rh - 1], 1)
assert np.array_equal(b, want.astype(np.float32)), (b[:3], want[:3])' "$O/boxes.npy" "$O/hw.json"
run "$RF" "$D/net.txt" --input-size 224x200 --boxes --clip -o "$O/clipped.npy"
expect_ok "--boxes --clip"
pycheck "--clip: the boxes intersected with the image" '
b, c = np.load(sys.argv[1]), np.load(sys.argv[2])
want = b.copy()
want[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, 199); want[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, 223)
assert np.array_equal(c, want) and c.min() == 0 and c[:, 2].max() == 199 and c[:, 3].max() == 223' \
  "$O/boxes.npy" "$O/clipped.npy"
run "$RF" --model vgg16 --input-size 64 --layer pool3 --boxes --to csv
expect_ok "--boxes --to csv"
pycheck "--boxes --to csv: one box per line" '
rows = [r for r in open(sys.argv[1]).read().splitlines() if not r.startswith("#")]
assert len(rows) == 64, len(rows)
assert [float(v) for v in rows[0].split(",")] == [-18, -18, 25, 25], rows[:2]
assert [float(v) for v in rows[9].split(",")] == [-10, -10, 33, 33], rows[9]' "$T/out"
run "$RF" "$D/frac.txt" --input-size 5 --boxes --layer u3 --to npy
expect_ok "--boxes of fractional boxes"
pycheck "--boxes: fractional corners as float32" '
b = np.load(sys.argv[1])
assert b.shape == (36, 4) and np.isclose(b[1, 0], 2 / 3 - 4 / 3) and np.isclose(b[1, 2], 2 / 3 - 4 / 3 + 10 / 3), b[:2]' "$T/out"
# Piped into the other tools (iou comes with its own tool).
run_sh "$RF --model resnet50 --input-size 224 --boxes | $(bin tensor-info) --json"
expect_ok "--boxes | tensor-info"
pycheck "--boxes | tensor-info: float32 [49, 4]" '
j = json.load(open(sys.argv[1]))
assert j[0]["dtype"] == "float32" and j[0]["shape"] == [49, 4], j' "$T/out"
run_sh "$RF --model resnet50 --input-size 224 --layer layer1 --boxes --clip | $(bin tensor-split) --part 1/56 > $O/row1.npy"
expect_ok "--boxes | tensor-split: the second row of units"
pycheck "--boxes | tensor-split --part 1/56: units (1, 0..55)" '
b = np.load(sys.argv[1])
assert b.shape == (56, 4) and b[0].tolist() == [0, 0, 17, 21] and b[-1].tolist() == [203, 0, 223, 21], b[[0, -1]]' "$O/row1.npy"
rm -f "$O"/*

# ------------------------------------------------------------ --unit
run "$RF" "$D/net.txt" --input-size 224 --unit 10,20 --to txt
expect_stdout_eq "unit (10, 20) of sum sees x 71..89 and y 31..49 of the input (center x 80, y 40)" "--unit on txt"
run "$RF" "$D/net.txt" --unit 0,0 --clip --input-size 224 --to json
expect_ok "--unit --clip --to json"
pycheck "--unit --to json" '
j = report(sys.argv[1])
assert j == {"layer": "sum", "unit": [0, 0], "box": [0, 0, 9, 9], "center": [0, 0]}, j' "$T/out"
run "$RF" "$D/net.txt" --unit 2,3 -o "$O/u.npy"
expect_ok "--unit without --input-size -o x.npy"
pycheck "--unit: a [1, 4] float32 row of --boxes" '
u = np.load(sys.argv[1])
assert u.dtype == np.float32 and u.tolist() == [[3, -1, 21, 17]], u' "$O/u.npy"
run "$RF" "$D/frac.txt" --unit 0,1 --layer u3 --to txt
expect_stdout_eq "unit (0, 1) of u3 sees x -2/3..8/3 and y -4/3..2 of the input (center x 1, y 1/3)" \
  "--unit: exact fractional regions"
bad_option rf-calc 64 "unit 56x56" "$D/net.txt" --input-size 224 --unit 56,0
for u in 1 "1,x" "1,2,3" "-1,2" "1x2" ""; do
  bad_option rf-calc 64 "unit" "$D/net.txt" --unit="$u"
done

rm -f "$O"/*

# ------------------------------------------------------------ padding conventions, alignment
run "$RF" "$D/tfsame.txt"
expect_error 65 "line 1 PyTorch same stride --padding-convention" "strided p=same under torch"
run "$RF" "$D/tfsame.txt" --padding-convention tf
expect_error 64 "line 1 input --input-size" "TensorFlow's strided SAME without a size"
run "$RF" "$D/tfsame.txt" --padding-convention tf --input-size 224 --to csv
expect_stdout_has "c,conv,3,3,2,2,0,0,1,1,112,112" "tf SAME at 224: no padding before"
run "$RF" "$D/tfsame.txt" --padding-convention tf --input-size 225x224 --to csv
expect_stdout_has "c,conv,3,3,2,2,1,0,0,1,113,112" "tf SAME at 225x224: one pixel before along H only"
run "$RF" "$D/misaligned.txt" --to txt -o "$O/m.txt"
expect_error 65 "line 3 'sum' 'a' 'b' aligned --allow-misaligned" "a misaligned merge"
expect_empty_dir "$O" "a misaligned merge"
run "$RF" "$D/misaligned.txt" --allow-misaligned --to csv
expect_rc 0 "--allow-misaligned"
_read_err
[[ $ERRTXT == "rf-calc: warning: line 3: 'sum' merges paths that are not aligned"* ]] && pass ||
  fail "--allow-misaligned: want one warning, got '$ERRTXT'"
expect_stdout_has "sum,add,3,3,1,1,0,0,1,1" "--allow-misaligned: the region that covers both"
run "$RF" "$D/misaligned.txt" --allow-misaligned -q --to csv
expect_ok "-q silences the warning"
run "$RF" "$D/global.txt" --input-size 32 --to csv
expect_stdout_has "g,global_pool,33,33,32,32,1,1,15,15,1,1" "global_pool covers the whole input"
run "$RF" "$D/global.txt"
expect_error 64 "line 2 global_pool input --input-size" "global_pool without a size"

# ------------------------------------------------------------ options that change nothing
run "$RF" "$D/net.txt" --input-size 224 --to npy
cp "$T/out" "$T/ref.npy"
for opts in "-q" "--quiet" "--threads 1" "--threads 3" "--padding-convention torch" "--padding-convention=tf"; do
  # shellcheck disable=SC2086
  run "$RF" $opts "$D/net.txt" --input-size 224 --to npy
  expect_ok "$opts"
  expect_file_eq "$T/out" "$T/ref.npy" "$opts does not change the output"
done

# ------------------------------------------------------------ bad descriptions: 65 and the line
out=$(freshdir badnet)
for f in "$D"/bad_*.txt; do
  line=${f##*_}; line=${line%.txt}
  run "$RF" "$f" --input-size 224 -o "$out/out.npy"
  expect_error 65 "line $line $(basename "$f")" "$(basename "$f")"
  expect_empty_dir "$out" "$(basename "$f")"
  LAST_CMD="cat $(basename "$f") | rf-calc -o out.npy"
  timeout -k 2 "$RUN_TIMEOUT" "$RF" -o "$out/out.npy" <"$f" >"$T/out" 2>"$T/err"
  RC=$?
  expect_error 65 "line $line stdin" "$LAST_CMD"
  expect_empty_dir "$out" "$LAST_CMD"
done
run "$RF" "$D/bad_op_4.txt"
expect_error 65 "line 4: unknown op 'convv'" "the message of an unknown op"
run "$RF" "$D/bad_cycle_4.txt"
expect_error 65 "line 4: 'sum' below line 6" "the message of a forward reference"
run "$RF" "$D/bad_stride0_3.txt"
expect_error 65 "line 3: 's=0' at least 1" "the message of a zero stride"
run "$RF" "$D/bad_absurd_2.txt"
expect_error 65 "line 2: absurd" "the message of an absurd size"
for f in garbage.bin empty.npy trunc_data_half.npy good.png text_word.txt; do
  run "$RF" "$BAD/$f" -o "$out/out.npy"
  expect_error 65 "$f" "$f is not a network"
  expect_empty_dir "$out" "$f is not a network"
done
run "$RF" /nonexistent/net.txt -o "$out/out.npy"
expect_error 66 "/nonexistent/net.txt" "a missing description"
run "$RF" "$BAD/adir" -o "$out/out.npy"
expect_error 66 "adir" "a directory as description"
LAST_CMD="rf-calc - <&-"
timeout -k 2 "$RUN_TIMEOUT" "$RF" - -o "$out/out.npy" <&- >"$T/out" 2>"$T/err"
RC=$?
{ [ "$RC" -eq 66 ] || [ "$RC" -eq 74 ]; } && pass || fail "$LAST_CMD: want exit 66 or 74, got $RC"
expect_empty_dir "$out" "$LAST_CMD"
# Deep stride chains overflow 64-bit integers: an error naming the line.
"$PY" -c 'print("".join("c%d: conv k=2 s=2\n" % i for i in range(80)))' >"$D/deep.txt"
run "$RF" "$D/deep.txt"
expect_error 65 "line 63 overflows" "64 strides of 2"

# ------------------------------------------------------------ bad options: 64
for s in 0 x 3x -5 224x0 "224 224" 1x2x3 99999999999 ""; do
  bad_option rf-calc 64 "input-size" "$D/net.txt" --input-size="$s"
done
bad_option rf-calc 64 "boxes input-size" "$D/net.txt" --boxes
bad_option rf-calc 64 "clip" "$D/net.txt" --input-size 224 --clip
bad_option rf-calc 64 "clip input-size" "$D/net.txt" --unit 1,1 --clip
bad_option rf-calc 64 "boxes unit" "$D/net.txt" --input-size 224 --boxes --unit 1,1
bad_option rf-calc 64 "model bogus" --model bogus
bad_option rf-calc 64 "model" --model vgg16 "$D/net.txt"
bad_option rf-calc 64 "padding-convention" "$D/net.txt" --padding-convention caffe
bad_option rf-calc 64 "" "$D/net.txt" --to png
bad_option rf-calc 64 "" "$D/net.txt" --to bogus
bad_option rf-calc 64 "" "$D/net.txt" "$D/net.txt"
bad_option rf-calc 64 "bogus" "$D/net.txt" --bogus
run "$RF" "$D/net.txt" -o "$O/x.png"
expect_error 64 "png" "-o x.png"
expect_empty_dir "$O" "-o x.png"
# A bad option wins over a missing input.
run "$RF" --input-size x /nonexistent/net.txt
expect_error 64 "input-size" "a bad option with a missing input"

# ------------------------------------------------------------ the 10,000-layer chain
t0=$EPOCHREALTIME
run "$RF" "$D/chain.txt" --input-size 4096 --to npy -o "$O/chain.npy"
t1=$EPOCHREALTIME
expect_ok "a 10,000-layer chain"
ms=$(awk "BEGIN { printf \"%d\", ($t1 - $t0) * 1000 }")
[ "$ms" -lt 1000 ] && pass || fail "a 10,000-layer chain took $ms ms (want well under a second)"
pycheck "the 10,000-layer chain: the recurrence in numpy" '
a = np.load(sys.argv[1])
assert a.shape == (10000, 8)
r, S, P = np.ones(2), np.ones(2), np.zeros(2)
for i in range(10000):
    if i % 2000 == 1999: k, s, p = np.array([3, 3]), 2, np.array([1, 1])
    elif i % 3 == 0: k, s, p = np.array([5, 9]), 1, np.array([2, 4])
    elif i % 3 == 1: continue
    else: k, s, p = np.array([3, 3]), 1, np.array([1, 1])
    r += (k - 1) * S; P += p * S; S *= s
assert a[-1, :6].tolist() == [r[0], r[1], S[0], S[1], P[0], P[1]], (a[-1], r, S, P)' "$O/chain.npy"
rm -f "$O"/*

# ------------------------------------------------------------ examples/rf-calc
if [ -n "$NNKIT_SRC" ] && [ -f "$NNKIT_SRC/examples/rf-calc/run.sh" ]; then
  ex=$(freshdir example)
  run env NNKIT_BIN="$NNKIT_BIN" bash "$NNKIT_SRC/examples/rf-calc/run.sh" "$ex"
  expect_rc 0 "examples/rf-calc/run.sh"
  expect_stdout_has "layer3               identity  30x40    267  16  133  0" "the example's table"
  expect_stdout_has "float32  [1200, 4]" "the example's boxes through tensor-info"
  expect_stdout_has "0.0,0.0,133.0,245.0" "the example's boxes through tensor-split and tensor-convert"
  pycheck "the example's boxes.npy: 30x40 units of layer3 at 480x640, clipped" '
b = np.load(sys.argv[1])
assert b.shape == (1200, 4) and b.min() == 0 and b[:, 2].max() == 639 and b[:, 3].max() == 479, b.shape' \
    "$ex/boxes.npy"
fi

# ------------------------------------------------------------ bad output
bad_output_matrix rf-calc "$D/net.txt" "$D/chain.txt"

finish
