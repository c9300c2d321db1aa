#!/usr/bin/env bash
# Regenerates completions/bash/TOOL and completions/zsh/_TOOL from each tool's
# own option declarations (TOOL --completion bash|zsh).
# Usage: NNKIT_BIN=build/bin scripts/gen-completions.sh COMPLETIONS_DIR TOOL...
set -euo pipefail
dir=$1; shift
mkdir -p "$dir/bash" "$dir/zsh"
for t in "$@"; do
  "$NNKIT_BIN/$t" --completion bash > "$dir/bash/$t"
  "$NNKIT_BIN/$t" --completion zsh > "$dir/zsh/_$t"
done
