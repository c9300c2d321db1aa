#!/bin/bash
# nnkit <-> numpy interoperability (CTest: interop.numpy). See interop.py for
# what is checked. Needs NNKIT_BIN (the built tools), NNKIT_FIXTURES
# (tests/fixtures) and a Python with numpy: /usr/bin/python3 when it has numpy,
# else the first python3 on PATH that has it (or $NNKIT_PYTHON).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${NNKIT_BIN:?set NNKIT_BIN to the directory of the built tools}"
: "${NNKIT_FIXTURES:=$here/../fixtures}"
export NNKIT_BIN NNKIT_FIXTURES

py=""
for cand in ${NNKIT_PYTHON:-} /usr/bin/python3 python3 python; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import numpy' >/dev/null 2>&1; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  echo "interop: no Python with numpy found (tried \$NNKIT_PYTHON, /usr/bin/python3, python3, python)" >&2
  exit 1
fi
if [ ! -f "$NNKIT_FIXTURES/npy/manifest.json" ]; then
  echo "interop: $NNKIT_FIXTURES/npy/manifest.json is missing (run tests/fixtures/make_npy_fixtures.py)" >&2
  exit 1
fi
exec "$py" "$here/interop.py"
