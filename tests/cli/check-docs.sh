#!/usr/bin/env bash
# docs.TOOL: the generated man page documents every option of TOOL --help, and
# the committed completions are exactly what TOOL's declarations generate now.
# Env: NNKIT_BIN, NNKIT_MAN (generated pages), NNKIT_SRC (repository root).
set -uo pipefail
tool=$1
bin=$NNKIT_BIN/$tool
fail=0
bad() { echo "docs.$tool: $*" >&2; fail=1; }

page=$NNKIT_MAN/$tool.1
[ -s "$page" ] || bad "no generated man page $page"
[ -f "$NNKIT_SRC/man/$tool.1.h2m" ] || bad "no man/$tool.1.h2m (NAME and SEE ALSO sections)"
if [ -s "$page" ]; then
  # roff escapes '-' as '\-'; compare on the unescaped text.
  text=$(sed 's/\\-/-/g' "$page")
  for opt in $("$bin" --help | grep -oE '(^|[ ,])--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z0-9-]+' | sort -u); do
    grep -qF -- "$opt" <<<"$text" || bad "option $opt of --help is missing from the man page"
  done
  grep -q '^\.SH NAME' "$page" || bad "man page has no NAME section"
  grep -qi "manual page for" "$page" && bad "man page NAME is help2man's placeholder (fill [NAME] in man/$tool.1.h2m)"
fi

for shell in bash zsh; do
  want=$NNKIT_SRC/completions/$shell/$([ $shell = zsh ] && echo _)$tool
  if [ ! -f "$want" ]; then
    bad "no completions/$shell file for $tool"
  elif ! diff -u "$want" <("$bin" --completion $shell) >/dev/null; then
    bad "completions/$shell is out of date; run: cmake --build BUILD --target update-completions"
  fi
done

# The bash completion works: it offers the tool's options after a '-'.
bash_file=$NNKIT_SRC/completions/bash/$tool
if [ -f "$bash_file" ]; then
  bash -n "$bash_file" || bad "completions/bash/$tool is not valid bash"
  got=$(bash -c "
    complete() { :; }
    source '$bash_file'
    fn=\$(grep -oE '^_nnkit_[a-z_0-9]+' '$bash_file' | head -n1)
    COMP_WORDS=($tool --he); COMP_CWORD=1; \$fn
    printf '%s ' \"\${COMPREPLY[@]}\"
    COMP_WORDS=($tool --to ''); COMP_CWORD=2; \$fn
    printf '%s ' \"\${COMPREPLY[@]}\"")
  [[ "$got" == *"--help"* ]] || bad "bash completion does not offer --help for '--he' (got: $got)"
  first_format=$("$bin" --help | sed -n 's/.*--to FORMAT *output format: \([a-z]*\).*/\1/p')
  [[ -z "$first_format" || "$got" == *" $first_format"* ]] ||
    bad "bash completion does not offer '$first_format' after --to (got: $got)"
fi
if command -v zsh >/dev/null 2>&1; then
  zsh -n "$NNKIT_SRC/completions/zsh/_$tool" || bad "completions/zsh/_$tool is not valid zsh"
fi
[ $fail -eq 0 ] && echo "docs.$tool: man page and completions match the tool's options"
exit $fail
