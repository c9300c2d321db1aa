# shellcheck shell=bash
# The bad-input matrix shared by the tool scripts: every way an input can be
# wrong, and what every tool must do about it (exit code, one error line that
# names the problem and the input, no crash signal, nothing left in the output
# folder). Source after lib.sh.
#
#   make_bad_inputs                 writes the inputs under $BAD (once)
#   bad_input_matrix NAME OUTNAME [ARGS...]
#       runs `NAME ARGS... INPUT -o DIR/OUTNAME` for every bad INPUT (files and
#       stdin) and checks each failure.
#   bad_output_matrix NAME GOOD OUTNAME [ARGS...]
#       unwritable -o, a directory as -o, /dev/full, stdout closed or full,
#       and the reader of a pipe going away; then, once per tool,
#   overflow_matrix NAME
#       sizes that overflow int64 (or no memory holds) in NAME's options and
#       in the inputs that options name (--model, --codebook, --labels, ...):
#       each a one-line error with the exit status of _overflow_cases,
#       quickly, nothing left in the output folder.

BAD=$T/bad

make_bad_inputs() {
  [ -d "$BAD" ] && return 0
  mkdir -p "$BAD/adir"
  py '
import os, struct, zlib
d = sys.argv[1]
def w(name, b):
    with open(os.path.join(d, name), "wb") as f:
        f.write(b)
def npy_bytes(a):
    import io
    f = io.BytesIO(); np.save(f, a); return f.getvalue()
def header(text, version=1):
    text = text + " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(text)) + text.encode("latin1")

good = npy_bytes(np.arange(48, dtype="<f4").reshape(6, 8))
w("empty.npy", b"")
w("trunc_magic.npy", good[:4])
w("trunc_version.npy", good[:7])
w("trunc_hlen.npy", good[:9])
w("trunc_header.npy", good[:40])
w("trunc_header_end.npy", good[:127])
w("trunc_data_first.npy", good[:129])
w("trunc_data_half.npy", good[:128 + 96])
w("trunc_data_last.npy", good[:-1])
w("trunc_second.npy", good + good[:150])
w("trailing_junk.npy", good + b"junk")
w("bad_magic.npy", b"\x93NUMPZ" + good[6:])
w("bad_version.npy", good[:6] + b"\x09\x00" + good[8:])
w("garbage.bin", np.random.default_rng(7).integers(0, 256, 300, dtype=np.uint8).tobytes())
w("huge_shape.npy", header("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1000000000000, 1000000000000), }".replace("\"", "\x27")))
w("huge_fits.npy", header("{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (1000000, 1000000), }") + b"\0" * 64)
w("overflow_shape.npy", header("{\x27descr\x27: \x27<f8\x27, \x27fortran_order\x27: False, \x27shape\x27: (1099511627776, 1099511627776, 1099511627776), }"))
w("huge_header_len.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{")
w("neg_shape.npy", header("{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (-1, 3), }") + b"\0" * 64)
w("bad_dtype_complex.npy", header("{\x27descr\x27: \x27<c8\x27, \x27fortran_order\x27: False, \x27shape\x27: (2,), }") + b"\0" * 16)
w("bad_dtype_word.npy", header("{\x27descr\x27: \x27<zz\x27, \x27fortran_order\x27: False, \x27shape\x27: (2,), }") + b"\0" * 16)
w("bad_dtype_object.npy", header("{\x27descr\x27: \x27|O\x27, \x27fortran_order\x27: False, \x27shape\x27: (2,), }") + b"\0" * 16)
w("bad_header_syntax.npy", header("{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (2, 3") + b"\0" * 24)
w("bad_header_nodict.npy", header("hello there") + b"\0" * 24)
w("bad_header_noshape.npy", header("{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, }") + b"\0" * 24)

def st(hdr, data, hlen=None):
    h = hdr.encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data
w("st_offsets.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,1000]}}", b"\0" * 16))
w("st_mismatch.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,16]}}", b"\0" * 16))
w("st_reversed.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}}", b"\0" * 16))
w("st_json.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_off", b"\0" * 16))
w("st_dtype.safetensors", st("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", b"\0" * 16))
w("st_hlen_beyond.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", b"\0" * 16, hlen=5000))
w("st_huge_shape.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000000,1000000000000],\"data_offsets\":[0,16]}}", b"\0" * 16))

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
img = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
raw = b"".join(b"\0" + img[r].tobytes() for r in range(16))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
w("good.png", png)
w("png_trunc.png", png[: len(png) // 2])
w("png_sigonly.png", png[:8])
bad = bytearray(png); bad[45] ^= 0xFF; w("png_crc.png", bytes(bad))
w("png_garbage.png", b"\x89PNG\r\n\x1a\n" + np.random.default_rng(3).integers(0, 256, 200, dtype=np.uint8).tobytes())
w("png_huge.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2000000, 2000000, 8, 2, 0, 0, 0))
  + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))

w("npz_garbage.npz", b"PK\x03\x04" + np.random.default_rng(5).integers(0, 256, 200, dtype=np.uint8).tobytes())
import io, zipfile
f = io.BytesIO(); np.savez(f, a=np.arange(100.0), b=np.ones((3, 3))); z = f.getvalue()
w("npz_trunc.npz", z[: len(z) // 2])
f = io.BytesIO()
with zipfile.ZipFile(f, "w") as zf:
    zf.writestr("a.npy", good[:100])
w("npz_badmember.npz", f.getvalue())

# Integer overflow in sizes: products beyond int64 in every container.
w("overflow_bytes.npy", header("{\x27descr\x27: \x27<f8\x27, \x27fortran_order\x27: False, \x27shape\x27: (4611686018427387904,), }"))
w("st_overflow_shape.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,1099511627776],\"data_offsets\":[0,16]}}", b"\0" * 16))
w("st_overflow_bytes.safetensors", st("{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,16]}}", b"\0" * 16))
w("st_overflow_offsets.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[18446744073709551600,18446744073709551615]}}", b"\0" * 16))
w("st_offsets_beyond_u64.safetensors", st("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,18446744073709551616]}}", b"\0" * 16))
w("st_overflow_hlen.safetensors", st("{}", b"", hlen=2**64 - 1))
ov = header("{\x27descr\x27: \x27<f8\x27, \x27fortran_order\x27: False, \x27shape\x27: (1099511627776, 1099511627776, 1099511627776), }")
f = io.BytesIO()
with zipfile.ZipFile(f, "w") as zf:
    zf.writestr("a.npy", ov)
w("npz_overflow_member.npz", f.getvalue())
ov = header("{\x27descr\x27: \x27<f8\x27, \x27fortran_order\x27: False, \x27shape\x27: (9223372036854775807,), }")
f = io.BytesIO()
with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
    zf.writestr("a.npy", ov + b"\0" * 64)
w("npz_overflow_deflated.npz", f.getvalue())
f = io.BytesIO()
with zipfile.ZipFile(f, "w") as zf:
    zf.writestr("a.npy", npy_bytes(np.arange(4.0)))
z = bytearray(f.getvalue())  # the sizes in the zip directory claim 4 GiB
i = z.find(b"PK\x03\x04"); z[i + 22:i + 26] = struct.pack("<I", 0xFFFFFFFE)
i = z.find(b"PK\x01\x02"); z[i + 24:i + 28] = struct.pack("<I", 0xFFFFFFFE)
w("npz_huge_member.npz", bytes(z))

w("text_ragged.txt", b"1 2 3\n4 5\n")
w("text_word.txt", b"1 2\n3 four\n")
w("text_comments_only.txt", b"# nothing here\n# at all\n")
w("text_blank.txt", b"\n\n   \n")

# Committed corrupt fixtures (when present): each must be refused with 65.
fx = sys.argv[2] if len(sys.argv) > 2 else ""
cases = []
def add(path):
    if os.path.isfile(path):
        cases.append("%s 65 %s" % (path, os.path.basename(path)))
if fx and os.path.isdir(fx):
    man = os.path.join(fx, "npy", "manifest.json")
    if os.path.isfile(man):
        for e in json.load(open(man)).get("invalid", []):
            add(os.path.join(fx, "npy", e["file"]))
    pd = os.path.join(fx, "png")
    if os.path.isdir(pd):
        for f in sorted(os.listdir(pd)):
            stem = f[:-4]
            if f.endswith(".png") and not os.path.exists(os.path.join(pd, stem + ".npy")) and \
                    stem.split("_")[0] in ("bad", "truncated", "missing", "absurd", "bomb"):
                add(os.path.join(pd, f))
    td = os.path.join(fx, "text")
    if os.path.isdir(td):
        for f in sorted(os.listdir(td)):
            stem, ext = os.path.splitext(f)
            if ext in (".txt", ".csv") and not any(g.startswith(stem + ".") and g.endswith(".npy") for g in os.listdir(td)):
                add(os.path.join(td, f))
    cd = os.path.join(fx, "containers")
    if os.path.isdir(cd):
        for f in sorted(os.listdir(cd)):
            if (f.startswith("bad_") and f.endswith((".safetensors", ".npz"))) or f in ("truncated.npz", "bomb.npz"):
                add(os.path.join(cd, f))
with open(os.path.join(d, "fixture_cases"), "w") as f:
    f.write("".join(c + "\n" for c in cases))
' "$BAD" "$NNKIT_FIXTURES"
}

# The matrix: FILE CODE WORDS... (WORDS all must appear in the message).
_bad_cases() {
  cat <<EOF
missing.npy 66 missing.npy
adir 66 adir
empty.npy 65 empty.npy
trunc_magic.npy 65 trunc_magic.npy
trunc_version.npy 65 truncat trunc_version.npy
trunc_hlen.npy 65 truncat trunc_hlen.npy
trunc_header.npy 65 truncat trunc_header.npy
trunc_header_end.npy 65 truncat trunc_header_end.npy
trunc_data_first.npy 65 truncat trunc_data_first.npy
trunc_data_half.npy 65 truncat trunc_data_half.npy
trunc_data_last.npy 65 truncat trunc_data_last.npy
trunc_second.npy 65 truncat trunc_second.npy
trailing_junk.npy 65 trailing_junk.npy
bad_magic.npy 65 bad_magic.npy
bad_version.npy 65 version bad_version.npy
garbage.bin 65 garbage.bin
huge_shape.npy 65 huge_shape.npy
huge_fits.npy 65 huge_fits.npy
overflow_shape.npy 65 overflow_shape.npy
huge_header_len.npy 65 huge_header_len.npy
neg_shape.npy 65 neg_shape.npy
bad_dtype_complex.npy 65 bad_dtype_complex.npy
bad_dtype_word.npy 65 bad_dtype_word.npy
bad_dtype_object.npy 65 bad_dtype_object.npy
bad_header_syntax.npy 65 bad_header_syntax.npy
bad_header_nodict.npy 65 bad_header_nodict.npy
bad_header_noshape.npy 65 bad_header_noshape.npy
st_offsets.safetensors 65 st_offsets.safetensors
st_mismatch.safetensors 65 st_mismatch.safetensors
st_reversed.safetensors 65 st_reversed.safetensors
st_json.safetensors 65 st_json.safetensors
st_dtype.safetensors 65 st_dtype.safetensors
st_hlen_beyond.safetensors 65 st_hlen_beyond.safetensors
st_huge_shape.safetensors 65 st_huge_shape.safetensors
png_trunc.png 65 png_trunc.png
png_sigonly.png 65 png_sigonly.png
png_crc.png 65 png_crc.png
png_garbage.png 65 png_garbage.png
png_huge.png 65 png_huge.png
npz_garbage.npz 65 npz_garbage.npz
npz_trunc.npz 65 npz_trunc.npz
npz_badmember.npz 65 npz_badmember.npz
overflow_bytes.npy 65 overflow_bytes.npy
st_overflow_shape.safetensors 65 st_overflow_shape.safetensors
st_overflow_bytes.safetensors 65 st_overflow_bytes.safetensors
st_overflow_offsets.safetensors 65 st_overflow_offsets.safetensors
st_offsets_beyond_u64.safetensors 65 st_offsets_beyond_u64.safetensors
st_overflow_hlen.safetensors 65 st_overflow_hlen.safetensors
npz_overflow_member.npz 65 npz_overflow_member.npz
npz_overflow_deflated.npz 65 npz_overflow_deflated.npz
npz_huge_member.npz 65 npz_huge_member.npz
text_ragged.txt 65 text_ragged.txt
text_word.txt 65 text_word.txt
text_comments_only.txt 65 text_comments_only.txt
text_blank.txt 65 text_blank.txt
EOF
  # Committed corrupt fixtures, when they are there.
  cat "$BAD/fixture_cases"
}

# Inputs read from a pipe (no size known): FILE CODE WORDS...
_bad_pipe_cases() {
  cat <<EOF
empty.npy 65 empty stdin
garbage.bin 65 stdin
trunc_hlen.npy 65 truncat stdin
trunc_header.npy 65 truncat stdin
trunc_data_half.npy 65 truncat stdin
trunc_data_last.npy 65 truncat stdin
trunc_second.npy 65 truncat stdin
huge_shape.npy 65 stdin
overflow_shape.npy 65 stdin
overflow_bytes.npy 65 stdin
st_overflow_shape.safetensors 65 stdin
st_overflow_offsets.safetensors 65 stdin
npz_overflow_member.npz 65 stdin
huge_header_len.npy 65 stdin
bad_dtype_complex.npy 65 stdin
st_offsets.safetensors 65 stdin
png_trunc.png 65 stdin
npz_garbage.npz 65 stdin
text_ragged.txt 65 stdin
EOF
}

# bad_input_matrix NAME OUTNAME [ARGS...]
# _expect_quick_refusal CODE WORDS DESC NAME OUTDIR CMD...: CMD fails with
# CODE and one line naming WORDS, leaves OUTDIR empty, and is refused before
# reading or allocating anything large or looping over a size: quickly.
_expect_quick_refusal() {
  local code=$1 words=$2 desc=$3 name=$4 out=$5 t0 t1 ms
  shift 5
  t0=${EPOCHREALTIME/./}
  run "$@"
  t1=${EPOCHREALTIME/./}
  expect_error "$code" "$words" "$desc" "$name"
  expect_empty_dir "$out" "$desc"
  ms=$(((t1 - t0) / 1000))
  [ "$ms" -lt 2000 ] && pass || fail "$desc: took $ms ms"
  _empty_dir_now "$out"
}

bad_input_matrix() {
  local name=$1 outname=$2
  shift 2
  make_bad_inputs
  local tb file code words path out t0 t1 ms
  tb=$NNKIT_BIN/$name
  out=$(freshdir badout)
  while read -r file code words; do
    [ -n "${BAD_ONLY:-}" ] && ! [[ $file =~ $BAD_ONLY ]] && continue
    case $file in /*) path=$file ;; *) path=$BAD/$file ;; esac
    _expect_quick_refusal "$code" "$words" "$name ${*:+$* }$file" "$name" "$out" "$tb" "$@" "$path" -o "$out/$outname"
  done < <(_bad_cases)
  # The same from a pipe (stdin is not a regular file, its size is unknown).
  while read -r file code words; do
    [ -n "${BAD_ONLY:-}" ] && ! [[ $file =~ $BAD_ONLY ]] && continue
    LAST_CMD="cat $file | $name ${*:+$* }- -o $out/$outname"
    cat "$BAD/$file" | timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" - -o "$out/$outname" >"$T/out" 2>"$T/err"
    RC=${PIPESTATUS[1]}
    expect_error "$code" "$words" "$LAST_CMD" "$name"
    expect_empty_dir "$out" "$LAST_CMD"
    _empty_dir_now "$out"
  done < <(_bad_pipe_cases)
  # Redirected from a file (stdin is a regular file).
  LAST_CMD="$name ${*:+$* }- < trunc_data_half.npy"
  timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" - -o "$out/$outname" <"$BAD/trunc_data_half.npy" >"$T/out" 2>"$T/err"
  RC=$?
  expect_error 65 "truncat stdin" "$LAST_CMD" "$name"
  expect_empty_dir "$out" "$LAST_CMD"
  _empty_dir_now "$out"
  # A closed stdin is an input that cannot be read: an error, not a crash.
  LAST_CMD="$name ${*:+$* }- <&-"
  timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" - -o "$out/$outname" <&- >"$T/out" 2>"$T/err"
  RC=$?
  expect_no_signal "$LAST_CMD"
  { [ "$RC" -eq 66 ] || [ "$RC" -eq 74 ]; } && pass || fail "$LAST_CMD: want exit 66 or 74, got $RC"
  expect_empty_dir "$out" "$LAST_CMD"
  _empty_dir_now "$out"
}

# bad_option NAME CODE WORDS ARGS...: a usage error with no output left behind.
bad_option() {
  local name=$1 code=$2 words=$3
  shift 3
  local out
  out=$(freshdir optout)
  run "$NNKIT_BIN/$name" "$@" -o "$out/out.npy"
  expect_error "$code" "$words" "$name $*" "$name"
  expect_empty_dir "$out" "$name $*"
}

# ------------------------------------------------------------ size overflow

# Small valid inputs for the option cases, and model files whose sizes overflow.
_make_overflow_inputs() {
  [ -d "$BAD/ov" ] && return 0
  mkdir -p "$BAD/ov"
  py '
import struct
d = sys.argv[1]
rng = np.random.default_rng(1)
np.save(d + "/x.npy", rng.standard_normal((2, 3, 8)).astype(np.float32))
np.save(d + "/pts.npy", rng.standard_normal((6, 2)).astype(np.float32))
np.save(d + "/img.npy", np.zeros((4, 4, 3), np.uint8))
np.save(d + "/cb.npy", rng.standard_normal((4, 8)).astype(np.float32))
np.save(d + "/v.npy", rng.standard_normal((10, 8)).astype(np.float32))
np.save(d + "/idx.npy", np.zeros((2, 2), np.int64))
np.save(d + "/emb.npy", rng.standard_normal((3, 8)).astype(np.float32))
def model(name, meta):
    k = 2
    ts = {"means": np.zeros((k, 2), np.float32), "stds": np.ones(k, np.float32), "weights": np.ones(k, np.float32)}
    hdr, off, data = {"__metadata__": dict(kind="gmm", **meta)}, 0, b""
    for n, a in ts.items():
        b = a.tobytes()
        hdr[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); data += b
    h = json.dumps(hdr).encode()
    open(d + "/" + name, "wb").write(struct.pack("<Q", len(h)) + h + data)
model("model_sample_shape.safetensors", {"sample_shape": "999999999,999999999,999999999"})
model("model_train_steps.safetensors", {"train_steps": "1e30"})
model("model_big_train_steps.safetensors", {"train_steps": "1000000000000"})
open(d + "/deep.net", "w").write("".join("c%d: conv k=3 s=1000000000\n" % i for i in range(30)))
open(d + "/up.net", "w").write("".join("u%d: upsample factor=1000000000\n" % i for i in range(3)))
' "$BAD/ov"
}

# CODE ARGS...: what NAME must answer for each (inputs last, as the tools take them).
_overflow_cases() {
  local M=9223372036854775807 H=4611686018427387904 G=1099511627776 O=$BAD/ov
  case $1 in
    tensor-convert) cat <<EOF
64 --reshape $M,$M $O/x.npy
64 --reshape $H,4 $O/x.npy
64 --precision $M $O/x.npy
EOF
      ;;
    tensor-cat) echo "64 --axis $M $O/x.npy $O/x.npy" ;;
    tensor-split) cat <<EOF
64 --parts $M $O/x.npy
64 --parts 2 --axis -$M $O/x.npy
EOF
      ;;
    rf-calc) cat <<EOF
64 --input-size $M -m resnet18
64 --input-size ${M}x$M -m resnet18
64 --input-size 99999999999999999999 -m resnet18
64 --unit $M,$M --input-size 224 -m resnet18
65 $O/deep.net
65 --input-size 1000 $O/up.net
EOF
      ;;
    rope-embed) cat <<EOF
65 --emit cos-sin --rotary-dim 8 --seq-len $M
65 --emit cos-sin --rotary-dim 8 --seq-len $H
65 --emit cos-sin --rotary-dim 8 --grid ${G}x$G
65 --emit cos-sin --rotary-dim 8 --grid 4194304x4194304
65 --emit inv-freq --rotary-dim 9223372036854775806
64 --emit cos-sin --rotary-dim 8 --seq-len 10 --offset $M
64 --offset $M $O/x.npy
64 --seq-axis -$M $O/x.npy
64 --grid 2x2 --mrope-section $G,$G $O/x.npy
65 --convert-layout half-to-interleaved --heads $M $O/x.npy
65 --positions $BAD/overflow_shape.npy $O/x.npy
65 --positions $BAD/st_overflow_shape.safetensors $O/x.npy
EOF
      ;;
    clip-score) cat <<EOF
64 --bootstrap $M $O/emb.npy $O/emb.npy
64 -m matrix --block $M $O/emb.npy $O/emb.npy
64 -m retrieval --k 99999999999999999999 $O/emb.npy $O/emb.npy
65 -m zero-shot --labels $BAD/overflow_shape.npy $O/emb.npy $O/emb.npy
65 -m retrieval --text-image $BAD/st_overflow_shape.safetensors $O/emb.npy $O/emb.npy
65 --refs $BAD/overflow_shape.npy $O/emb.npy $O/emb.npy
EOF
      ;;
    vq-encode) cat <<EOF
64 -c $O/cb.npy --topk $M $O/v.npy
65 -c $O/cb.npy --pq $M $O/v.npy
65 -c $O/cb.npy --patch $M $O/img.npy
64 --fsq 65536,65536,65536,65536,65536 $O/v.npy
65 -c $BAD/overflow_shape.npy $O/v.npy
65 -c $BAD/st_overflow_shape.safetensors $O/v.npy
EOF
      ;;
    vq-decode) cat <<EOF
65 -c $O/cb.npy --patch $M $O/idx.npy
65 --fsq 8,8 --patch 3037000500 $O/idx.npy
65 -c $BAD/overflow_shape.npy $O/idx.npy
65 -c $BAD/npz_overflow_member.npz $O/idx.npy
EOF
      ;;
    vq-train) cat <<EOF
65 -k $M $O/v.npy
65 -k 2 --residual $M $O/v.npy
65 -k 2 --pq $M $O/v.npy
65 -k 2 --patch $M $O/img.npy
65 --init $BAD/overflow_shape.npy $O/v.npy
EOF
      ;;
    tensor-plot) cat <<EOF
64 -k hist --width $M $O/x.npy
64 -k hist --height $M $O/x.npy
64 -k hist --bins $M $O/x.npy
64 -k hist --width 99999999999999999999 $O/x.npy
64 -k grid --cols $M $O/img.npy
64 -k grid --gap $M $O/img.npy
65 -k scatter --labels $BAD/overflow_shape.npy $O/pts.npy
EOF
      ;;
    ddim-sample) cat <<EOF
65 -n $M -s 2
65 -n $H -s 2
65 -n $M -s 2 --shard 1/2
64 -n 4 -s $M
64 -n 4 --train-steps $M
64 -n 4 --steps-offset $M
64 -n 4 -s 2 --class $M
65 -n 4 -s 2 --model $BAD/st_overflow_shape.safetensors
65 -n 4 -s 2 --model $O/model_sample_shape.safetensors
65 -n 4 -s 2 --model $O/model_train_steps.safetensors
65 -n 4 -s 2 --model $O/model_big_train_steps.safetensors
65 -n 4 -s 2 --labels $BAD/overflow_shape.npy
65 -s 2 --init $BAD/npz_overflow_member.npz
EOF
      ;;
    flow-sample) cat <<EOF
65 -n $M
65 -n $M --shard 1/2
64 -n 4 -s $M
64 -n 4 -s 4000000000
64 --log-prob $O/pts.npy --hutchinson $M
65 -n 4 --model $BAD/st_overflow_shape.safetensors
65 -n 4 --model $O/model_sample_shape.safetensors
65 --init $BAD/st_overflow_bytes.safetensors
EOF
      ;;
  esac
}

overflow_matrix() {
  local name=$1 code args out t0 t1 ms
  make_bad_inputs
  _make_overflow_inputs
  out=$(freshdir ovout)
  while read -r code args; do
    [ -n "$code" ] || continue
    # shellcheck disable=SC2086
    set -- $args
    _expect_quick_refusal "$code" "" "$name $args" "$name" "$out" "$NNKIT_BIN/$name" "$@" -o "$out/out.npy"
  done < <(_overflow_cases "$name")
}

# bad_output_matrix NAME GOOD BIG [ARGS...]: GOOD is a small valid input, BIG
# one whose output is larger than a pipe buffer.
bad_output_matrix() {
  local name=$1 good=$2 big=$3
  shift 3
  local tb out st
  # The size-overflow cases of this tool, once per script.
  if [[ " ${_OVERFLOW_DONE:-} " != *" $name "* ]]; then
    _OVERFLOW_DONE="${_OVERFLOW_DONE:-} $name"
    overflow_matrix "$name"
  fi
  tb=$NNKIT_BIN/$name
  out=$(freshdir outdir)
  run "$tb" "$@" "$good" -o /nonexistent/dir/out.npy
  expect_error 73 "/nonexistent/dir/out.npy" "$name -o /nonexistent/dir/out.npy" "$name"
  run "$tb" "$@" "$good" -o "$out"
  expect_error 73 "$out" "$name -o DIRECTORY" "$name"
  expect_empty_dir "$out" "$name -o DIRECTORY"
  run "$tb" "$@" "$good" -o "$out/"
  expect_error 73 "" "$name -o DIRECTORY/" "$name"
  expect_empty_dir "$out" "$name -o DIRECTORY/"
  if [ "$(id -u)" -ne 0 ]; then  # root writes anywhere
    mkdir -p "$out/ro"
    chmod 555 "$out/ro"
    run "$tb" "$@" "$good" -o "$out/ro/out.npy"
    expect_error 73 "out.npy" "$name -o READONLY/out.npy" "$name"
    expect_empty_dir "$out/ro" "$name -o READONLY/out.npy"
    chmod 755 "$out/ro"
    rmdir "$out/ro"
  fi
  run "$tb" "$@" "$good" -o /dev/full
  expect_error 74 "" "$name -o /dev/full" "$name"
  LAST_CMD="$name $* $good > /dev/full"
  timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" "$good" >/dev/full 2>"$T/err"
  RC=$?
  expect_error 74 "" "$LAST_CMD" "$name"
  LAST_CMD="$name $* BIG > /dev/full"
  timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" "$big" >/dev/full 2>"$T/err"
  RC=$?
  expect_error 74 "" "$LAST_CMD" "$name"
  LAST_CMD="$name $* $good >&-"
  timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" "$good" >&- 2>"$T/err"
  RC=$?
  expect_error 74 "" "$LAST_CMD" "$name"
  # The reader of the pipe goes away: quiet, and not killed by SIGPIPE.
  LAST_CMD="$name $* BIG | head -c 10"
  timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" "$big" 2>"$T/err" | head -c 10 >/dev/null
  st=("${PIPESTATUS[@]}")
  RC=${st[0]}
  expect_no_signal "$LAST_CMD"
  expect_rc 0 "$LAST_CMD"
  expect_stderr_empty "$LAST_CMD"
  # Same, with SIGPIPE ignored by the parent (as some shells and CI runners do).
  LAST_CMD="(trap '' PIPE; $name $* BIG) | head -c 10"
  (trap '' PIPE; timeout -k 2 "$RUN_TIMEOUT" "$tb" "$@" "$big" 2>"$T/err") | head -c 10 >/dev/null
  st=("${PIPESTATUS[@]}")
  RC=${st[0]}
  expect_no_signal "$LAST_CMD"
  expect_rc 0 "$LAST_CMD"
  expect_stderr_empty "$LAST_CMD"
  # An existing file is replaced only on success: a failure keeps the old one.
  printf 'old\n' >"$out/keep.npy"
  run "$tb" "$@" "$BAD/trunc_data_half.npy" -o "$out/keep.npy"
  expect_error 65 "" "$name BAD -o EXISTING" "$name"
  [ "$(cat "$out/keep.npy")" = "old" ] && pass || fail "$name BAD -o EXISTING: the existing file was changed"
  [ "$(ls -A "$out")" = "keep.npy" ] && pass || fail "$name BAD -o EXISTING: files left: $(ls -A "$out")"
  rm -f "$out/keep.npy"
}
