#!/usr/bin/env bash
# Ports the Q and K projections of a small Meta-style (interleaved RoPE)
# attention layer to the Hugging Face transformers layout (half RoPE) with
# rope-embed --convert-layout, and checks that the attention scores are the
# same: softmax(QK^T) cannot tell the two checkpoints apart.
#
# Usage: NNKIT_BIN=build/bin bash examples/rope/port_q_weight.sh [WORKDIR]
# Needs rope-embed and tensor-info in $NNKIT_BIN (or on PATH) and a python3
# with numpy (for the matrix products only).
set -euo pipefail
export PATH="${NNKIT_BIN:+$NNKIT_BIN:}$PATH"
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || py=python3
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/rope-example.XXXXXX")}
mkdir -p "$work"
cd "$work"

# A layer with 4 query heads and 2 key-value heads (grouped-query attention)
# of 16 dims each, model width 32, and 10 tokens of hidden states.
"$py" - <<'PY'
import numpy as np
rng = np.random.default_rng(0)
np.save("wq.npy", rng.standard_normal((4 * 16, 32)).astype(np.float32) / 6)
np.save("wk.npy", rng.standard_normal((2 * 16, 32)).astype(np.float32) / 6)
np.save("x.npy", rng.standard_normal((10, 32)).astype(np.float32))
PY

# project: W X^T per head -> [heads, tokens, 16]
project() {
  "$py" -c 'import sys, numpy as np
w, x = np.load(sys.argv[1]), np.load(sys.argv[2])
np.save(sys.argv[3], (x @ w.T).reshape(10, -1, 16).transpose(1, 0, 2).copy())' "$@"
}

# 1. The original model: Meta's interleaved RoPE on its own weights.
project wq.npy x.npy q.npy
project wk.npy x.npy k.npy
rope-embed --layout interleaved q.npy -o q_meta.npy
rope-embed --layout interleaved k.npy -o k_meta.npy

# 2. The port: reorder the rows of each head, then transformers' half RoPE.
rope-embed --convert-layout interleaved-to-half --weights --heads 4 wq.npy -o wq_hf.npy
rope-embed --convert-layout interleaved-to-half --weights --heads 2 wk.npy -o wk_hf.npy
tensor-info wq.npy wq_hf.npy
project wq_hf.npy x.npy q2.npy
project wk_hf.npy x.npy k2.npy
rope-embed --layout half q2.npy -o q_hf.npy
rope-embed --layout half k2.npy -o k_hf.npy

# 3. A port that forgot the permutation: half RoPE on the Meta weights.
rope-embed --layout half q.npy -o q_wrong.npy
rope-embed --layout half k.npy -o k_wrong.npy

"$py" - <<'PY'
import numpy as np
def scores(q, k):
    q, k = np.load(q).astype(np.float64), np.load(k).astype(np.float64)
    k = np.repeat(k, q.shape[0] // k.shape[0], axis=0)  # each KV head serves 2 query heads
    return q @ k.transpose(0, 2, 1) / 4.0
meta, hf, wrong = scores("q_meta.npy", "k_meta.npy"), scores("q_hf.npy", "k_hf.npy"), scores("q_wrong.npy", "k_wrong.npy")
same, off = np.abs(hf - meta).max(), np.abs(wrong - meta).max()
print("attention scores, 4 heads x 10 x 10: largest |score| %.3f" % np.abs(meta).max())
print("  converted weights, half RoPE:   max |difference| %.2e" % same)
print("  unconverted weights, half RoPE: max |difference| %.2e" % off)
assert same < 1e-5, "the port changed the scores"
assert off > 1e-2, "the layouts should differ without the permutation"
print("the ported layer computes the same attention")
PY
