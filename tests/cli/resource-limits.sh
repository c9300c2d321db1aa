#!/usr/bin/env bash
# NNKIT_MAX_MEMORY end to end: the size syntax (bytes, K/M/G/T in units of
# 1024), a tensor or buffer over the limit refused by every tool that would
# allocate it (exit 65, one line naming the variable, no output left), bad
# values of the variable (exit 64), and a small file that claims a huge
# tensor refused at once, with or without a limit.
TOOL=""
. "$(dirname "$0")/lib.sh"
CONV=$(bin tensor-convert)
D=$T/in
mkdir -p "$D"
O=$(freshdir res)

py '
d = sys.argv[1]
rng = np.random.default_rng(5)
np.save(d + "/big.npy", rng.random((1024, 1024)).astype(np.float32))         # 4 MiB
np.save(d + "/small.npy", rng.random((16, 8)).astype(np.float32))
np.save(d + "/rows.npy", rng.random((131072, 8)).astype(np.float32))         # 4 MiB
np.save(d + "/cb.npy", rng.random((4, 8)).astype(np.float32))
b = rng.random((1024, 4)).astype(np.float32); b[:, 2:] += b[:, :2]
np.save(d + "/boxes.npy", np.tile(b, (256, 1)))                               # 4 MiB of boxes
d5 = np.concatenate([b, rng.random((1024, 1)).astype(np.float32)], 1)
np.save(d + "/dets.npy", np.tile(d5, (256, 1)))                                # 5 MiB of detections
np.save(d + "/emb.npy", rng.standard_normal((1024, 8)).astype(np.float32))    # a 4 MiB similarity matrix
import struct
h = "{\x27descr\x27:\x27<f4\x27,\x27fortran_order\x27:False,\x27shape\x27:(1000000,1000000)}\n"  # unpadded: short
open(d + "/claims_1tb.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + b"\0" * 16)
' "$D"
[ "$(stat -c %s "$D/claims_1tb.npy")" -le 100 ] && pass || fail "claims_1tb.npy should be at most 100 bytes"

# limited LIMIT CMD...: runs CMD with NNKIT_MAX_MEMORY=LIMIT.
limited() {
  local limit=$1
  shift
  run env NNKIT_MAX_MEMORY="$limit" "$@"
}

# ------------------------------------------------------------ the limit on tensors
limited 1M "$CONV" "$D/big.npy" -o "$O/big.safetensors"
expect_error 65 "NNKIT_MAX_MEMORY=1M 4194304 [1024, 1024] float32" "a 4 MiB tensor under NNKIT_MAX_MEMORY=1M" tensor-convert
expect_empty_dir "$O" "NNKIT_MAX_MEMORY=1M tensor-convert leaves no output"
limited 1M "$CONV" --dtype float64 "$D/small.npy" -o "$O/small.npy"
expect_ok "a small tensor under the limit"
pycheck "a small tensor under the limit converts" 'assert np.array_equal(np.load(sys.argv[1]), np.load(sys.argv[2]).astype(np.float64))' "$O/small.npy" "$D/small.npy"
rm -f "$O/small.npy"
limited 6M "$CONV" --dtype float64 "$D/big.npy" -o "$O/big.npy"
expect_error 65 "NNKIT_MAX_MEMORY=6M 8388608 float64" "its float64 copy is over 6M" tensor-convert
expect_empty_dir "$O" "a conversion over the limit leaves no output"
# Every spelling of the same sizes; the bound is inclusive.
for ok in 4194304 4096K 4096k 4M 4m 4MiB 1G 1g 1T; do
  limited "$ok" "$CONV" "$D/big.npy" -o "$O/big.safetensors"
  expect_ok "NNKIT_MAX_MEMORY=$ok holds a 4 MiB tensor"
  rm -f "$O/big.safetensors"
done
limited 4194303 "$CONV" "$D/big.npy" -o "$O/big.safetensors"
expect_error 65 "NNKIT_MAX_MEMORY=4194303 4194304" "one byte short" tensor-convert
# Empty is unset: no limit.
limited "" "$CONV" "$D/big.npy" -o "$O/big.safetensors"
expect_ok "NNKIT_MAX_MEMORY= (empty) sets no limit"
rm -f "$O/big.safetensors"

# ------------------------------------------------------------ bad values
for bad in abc 1.5G -1 0 0K 4MB "1 G" " 4M" 4P 99999999999999999999 8388608T 0x100; do
  limited "$bad" "$CONV" "$D/small.npy" -o "$O/x.safetensors"
  expect_error 64 "NNKIT_MAX_MEMORY" "NNKIT_MAX_MEMORY='$bad'" tensor-convert
  expect_empty_dir "$O" "NNKIT_MAX_MEMORY='$bad' leaves no output"
done

# ------------------------------------------------------------ every tool that allocates
# TOOL ARGS...: each needs one tensor or buffer of more than 1 MiB.
while read -r tool args; do
  [ -n "$tool" ] || continue
  # shellcheck disable=SC2086
  limited 1M "$(bin "$tool")" $args -o "$O/out.npy"
  expect_error 65 "NNKIT_MAX_MEMORY=1M" "NNKIT_MAX_MEMORY=1M $tool $args" "$tool"
  expect_empty_dir "$O" "NNKIT_MAX_MEMORY=1M $tool $args"
  _empty_dir_now "$O"
done <<EOF
tensor-info $D/big.npy
tensor-cat $D/big.npy $D/big.npy
tensor-split --part 0/2 $D/big.npy
iou $D/boxes.npy $D/boxes.npy
nms -t 0.5 $D/dets.npy
rope-embed --emit cos-sin --rotary-dim 128 --seq-len 10000
rope-embed --emit cos-sin --rotary-dim 8 --grid 1024x1024
clip-score -m matrix $D/emb.npy $D/emb.npy
vq-encode -c $D/cb.npy $D/rows.npy
vq-decode -c $D/cb.npy $D/rows.npy
vq-train --k 2 $D/rows.npy
ddim-sample -n 200000 --steps 2
flow-sample -n 200000 --steps 2
EOF
# vq-train --map: the exact sums are 96 bytes per code and channel, [1024, 64]
# codes need 6 MiB of them, while the inputs are 256 KiB each.
py '
rng = np.random.default_rng(3)
np.save(sys.argv[1], rng.standard_normal((1024, 64)).astype(np.float32))' "$D/cb1024.npy"
limited 1M "$(bin vq-train)" --map --init "$D/cb1024.npy" "$D/cb1024.npy" -o "$O/stats.npy"
expect_error 65 "NNKIT_MAX_MEMORY=1M exact cluster sums [1024, 64]" "NNKIT_MAX_MEMORY=1M vq-train --map with 1024 x 64 sums" vq-train
expect_empty_dir "$O" "vq-train --map over the limit"
limited 8M "$(bin vq-train)" --map --init "$D/cb1024.npy" "$D/cb1024.npy" -o "$O/stats.npy"
expect_ok "the same statistics under 8M"
rm -f "$O/stats.npy"
# tensor-plot writes PNG: a 2048 x 2048 canvas is 12 MiB.
limited 1M "$(bin tensor-plot)" -k hist --width 2048 --height 2048 "$D/small.npy" -o "$O/plot.png"
expect_error 65 "NNKIT_MAX_MEMORY=1M 2048x2048" "NNKIT_MAX_MEMORY=1M tensor-plot of a 2048x2048 picture" tensor-plot
expect_empty_dir "$O" "tensor-plot over the limit"
limited 64M "$(bin tensor-plot)" -k hist --width 2048 --height 2048 "$D/small.npy" -o "$O/plot.png"
expect_ok "the same picture under 64M"
rm -f "$O/plot.png"

# ------------------------------------------------------------ lying headers
# A 100-byte file claiming a 1 TB tensor: refused before anything that large
# is allocated (the file is too short), with or without a limit, at once.
for limit in "" 1G; do
  t0=${EPOCHREALTIME/./}
  limited "$limit" "$CONV" "$D/claims_1tb.npy" -o "$O/x.safetensors"
  t1=${EPOCHREALTIME/./}
  expect_error 65 "claims_1tb.npy" "a 100-byte file claiming 1 TB (NNKIT_MAX_MEMORY='$limit')" tensor-convert
  expect_empty_dir "$O" "a 100-byte file claiming 1 TB leaves no output"
  [ $(((t1 - t0) / 1000)) -lt 2000 ] && pass || fail "a 100-byte file claiming 1 TB took $(((t1 - t0) / 1000)) ms"
done
# From a pipe, whose size nobody knows: the claim is believed only as data arrives.
LAST_CMD="cat claims_1tb.npy | NNKIT_MAX_MEMORY=1G tensor-convert - -o x.safetensors"
cat "$D/claims_1tb.npy" | NNKIT_MAX_MEMORY=1G timeout -k 2 "$RUN_TIMEOUT" "$CONV" - -o "$O/x.safetensors" >"$T/out" 2>"$T/err"
RC=${PIPESTATUS[1]}
expect_error 65 "NNKIT_MAX_MEMORY" "$LAST_CMD (the limit refuses the claim before reading it)" tensor-convert
expect_empty_dir "$O" "$LAST_CMD"
# Without a limit the pipe's data run out first: a truncation error.
LAST_CMD="cat claims_1tb.npy | tensor-convert - -o x.safetensors"
cat "$D/claims_1tb.npy" | env -u NNKIT_MAX_MEMORY timeout -k 2 "$RUN_TIMEOUT" "$CONV" - -o "$O/x.safetensors" >"$T/out" 2>"$T/err"
RC=${PIPESTATUS[1]}
expect_error 65 "" "$LAST_CMD" tensor-convert
expect_empty_dir "$O" "$LAST_CMD"

# ------------------------------------------------------------ checked in every tool, before any work
# npy to npy streams through a fixed buffer and allocates no tensor: a
# malformed limit is still a usage error.
limited 12Q "$CONV" "$D/small.npy" -o "$O/x.npy"
expect_error 64 "NNKIT_MAX_MEMORY" "NNKIT_MAX_MEMORY=12Q on a streaming npy copy" tensor-convert
expect_empty_dir "$O" "NNKIT_MAX_MEMORY=12Q leaves no output"
for bad in 99999999999 4294967297 -1; do
  run "$CONV" --threads "$bad" "$D/small.npy" -o "$O/x.npy"
  expect_error 64 "--threads" "--threads $bad" tensor-convert
  expect_empty_dir "$O" "--threads $bad leaves no output"
done

finish
