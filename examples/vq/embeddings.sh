#!/usr/bin/env bash
# Quantizing embeddings: 20,000 synthetic 64-dimensional embeddings (a mixture
# of 200 directions, as sentence or image embeddings cluster by topic) stored
# as codes instead of 256 bytes of float32 each:
#   - one code of 1,024 (spherical k-means, cosine): 2 bytes per vector;
#   - product quantization, 8 subspaces of 256 codes: 8 bytes per vector;
#   - residual quantization, 4 stages of 256 codes: 4 bytes per vector.
# Each is trained on a random 10,000 (--sample), encoded with --stats, and
# decoded; the script prints the reconstruction error and the recall at 10: how
# often a query's true nearest embedding is among the 10 nearest
# reconstructions (a search on the codes alone).
#
# Usage: NNKIT_BIN=build/bin bash examples/vq/embeddings.sh [WORKDIR]
# Needs the vq tools in $NNKIT_BIN (or on PATH) and a python3 with numpy (to
# make the embeddings and score the recall).
set -euo pipefail
export PATH="${NNKIT_BIN:+$NNKIT_BIN:}$PATH"
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || py=python3
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/vq-embeddings.XXXXXX")}
mkdir -p "$work"
cd "$work"

"$py" - <<'PY'
import numpy as np
rng = np.random.default_rng(0)
topics = rng.standard_normal((200, 64))
x = topics[rng.integers(0, 200, 20000)] + 0.35 * rng.standard_normal((20000, 64))
x /= np.linalg.norm(x, axis=1, keepdims=True)
np.save("emb.npy", x.astype(np.float32))
np.save("queries.npy", (x[:500] + 0.05 * rng.standard_normal((500, 64))).astype(np.float32))
PY

vq-train --k 1024 --metric cosine --sample 10000 emb.npy -o flat.npy
vq-encode -c flat.npy --metric cosine emb.npy -o flat_ids.npy --stats
vq-decode -c flat.npy flat_ids.npy -o flat_rec.npy

vq-train --k 256 --pq 8 --sample 10000 emb.npy -o pq.npy
vq-encode -c pq.npy --pq 8 emb.npy -o pq_ids.npy --stats
vq-decode -c pq.npy --pq 8 pq_ids.npy -o pq_rec.npy

vq-train --k 256 --residual 4 --sample 10000 emb.npy -o rq.npy
vq-encode -c rq.npy --residual emb.npy -o rq_ids.npy --stats
vq-decode -c rq.npy --residual rq_ids.npy -o rq_rec.npy

# The 5 nearest codes of each query (e.g. to pick which lists to scan).
vq-encode -c flat.npy --metric cosine --topk 5 queries.npy -o query_codes.npy
tensor-info flat_ids.npy pq_ids.npy rq_ids.npy query_codes.npy

"$py" - <<'PY'
import numpy as np
x, q = np.load("emb.npy").astype(np.float64), np.load("queries.npy").astype(np.float64)
truth = (q @ x.T).argmax(1)
for name, codes, nbytes in (("flat 1024, cosine", "flat", 2), ("pq 8 x 256", "pq", 8), ("rq 4 x 256", "rq", 4)):
    r = np.load(codes + "_rec.npy").astype(np.float64)
    mse = ((x - r) ** 2).sum(1).mean()
    top10 = np.argsort(-(q @ r.T), axis=1)[:, :10]
    recall = (top10 == truth[:, None]).any(1).mean()
    print("%-18s %2d bytes/vector (float32: 256): squared error %.4f, recall at 10 %.0f%%"
          % (name, nbytes, mse, 100 * recall))
PY
