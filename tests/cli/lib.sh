# Shared helpers for the end-to-end CLI tests in tests/cli/*.sh.
#
# Source it from a test script after setting TOOL (the tool under test; may be
# empty for multi-tool scripts):
#
#   TOOL=tensor-info
#   . "$(dirname "$0")/lib.sh"
#
# Environment (set by CTest): NNKIT_BIN (the built bin/ folder), NNKIT_FIXTURES,
# NNKIT_SRC, NNKIT_MAN. Only NNKIT_BIN is required.
#
# What it gives:
#   $T            a private temporary folder, removed on exit
#   $PY           a Python 3 with numpy (for making inputs and checking values)
#   bin NAME      the path of a built tool
#   run CMD...    runs CMD (with a time limit), stdout to $T/out, stderr to
#                 $T/err, exit status in $RC; stdin as given to `run`
#   expect_ok DESC              exit 0, nothing on stderr
#   expect_rc CODE DESC         exit CODE (and no crash signal)
#   expect_error CODE WORD DESC exit CODE, stderr exactly one line
#                               "TOOL: error: ..." that contains WORD
#                               (case-insensitive), no crash signal
#   expect_no_signal DESC       exit status below 128
#   expect_empty_dir DIR DESC   DIR holds no file at all, hidden ones included
#   expect_stdout_eq TEXT DESC  stdout is exactly TEXT (plus a final newline)
#   expect_stdout_has TEXT DESC stdout contains TEXT
#   pycheck DESC CODE [ARGS...] runs CODE with $PY (argv[1:] = ARGS); passes
#                               when it exits 0, prints its output otherwise
#   freshdir NAME               makes (or empties) $T/NAME and prints its path
#   finish                      prints the count and exits 0 or 1
set -u
export LC_ALL=C

: "${NNKIT_BIN:?NNKIT_BIN must name the folder of the built tools}"
NNKIT_FIXTURES=${NNKIT_FIXTURES:-}
NNKIT_SRC=${NNKIT_SRC:-}
NNKIT_MAN=${NNKIT_MAN:-}
TOOL=${TOOL:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/nnkit-cli.XXXXXX") || exit 1
_nnkit_cleanup() {
  # Stop anything a test left running in the background, then remove files.
  local p
  for p in $(jobs -p); do kill "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap _nnkit_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CHECKS=0
FAILS=0
RC=0
LAST_CMD=""
# Time limit for one command run by `run` (seconds).
RUN_TIMEOUT=${RUN_TIMEOUT:-15}

# A Python with numpy: the first python3 on PATH may lack it.
PY=""
for _p in /usr/bin/python3 python3; do
  if command -v "$_p" >/dev/null 2>&1 && "$_p" -c 'import numpy' >/dev/null 2>&1; then
    PY=$(command -v "$_p")
    break
  fi
done
if [ -z "$PY" ]; then
  echo "SKIP: no python3 with numpy found (tried /usr/bin/python3, python3)" >&2
  exit 77
fi

bin() { printf '%s/%s' "$NNKIT_BIN" "$1"; }

for _t in tensor-info tensor-convert tensor-cat tensor-split; do
  [ -x "$(bin "$_t")" ] || { echo "FATAL: $(bin "$_t") is not built" >&2; exit 1; }
done

pass() {
  CHECKS=$((CHECKS + 1))
}

fail() {
  CHECKS=$((CHECKS + 1))
  FAILS=$((FAILS + 1))
  printf 'FAIL: %s\n' "$*" >&2
  if [ -n "$LAST_CMD" ]; then
    printf '      command: %s\n' "$LAST_CMD" >&2
    printf '      exit %s; stderr: %s\n' "$RC" "$(head -c 600 "$T/err" 2>/dev/null | tr '\n' '|')" >&2
  fi
}

check() {  # check DESC CMD...: passes when CMD succeeds
  local desc=$1
  shift
  if "$@"; then pass; else fail "$desc"; fi
}

# run CMD...: stdout -> $T/out, stderr -> $T/err, status -> $RC.
run() {
  LAST_CMD="$*"
  timeout -k 2 "$RUN_TIMEOUT" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  return 0
}

# run_sh 'SHELL TEXT': like run, for pipes; the status is that of the whole text
# (use `set -o pipefail` inside, or PIPESTATUS, as the test needs).
run_sh() {
  LAST_CMD="$1"
  timeout -k 2 "$RUN_TIMEOUT" bash -c "$1" >"$T/out" 2>"$T/err"
  RC=$?
  return 0
}

_stderr_lines() { awk 'END { print NR }' "$T/err"; }

expect_no_signal() {
  if [ "$RC" -lt 128 ] && [ "$RC" -ne 124 ]; then pass; else fail "$1: killed by a signal or timed out (exit $RC)"; fi
}

expect_ok() {
  if [ "$RC" -eq 0 ] && [ ! -s "$T/err" ]; then pass; else fail "$1: want exit 0 and empty stderr"; fi
}

expect_rc() {
  local want=$1 desc=$2
  if [ "$RC" -eq "$want" ]; then pass; else fail "$desc: want exit $want, got $RC"; fi
}

# expect_error CODE WORD DESC [TOOLNAME]
expect_error() {
  local want=$1 word=$2 desc=$3 name=${4:-$TOOL}
  local ok=1 why=""
  if [ "$RC" -ge 128 ] || [ "$RC" -eq 124 ]; then ok=0; why="killed by a signal or timed out (exit $RC)";
  elif [ "$RC" -ne "$want" ]; then ok=0; why="want exit $want, got $RC"; fi
  if [ $ok -eq 1 ]; then
    local n
    n=$(_stderr_lines)
    if [ "$n" -ne 1 ]; then ok=0; why="stderr has $n lines, want exactly 1";
    elif [ "$(tail -c 1 "$T/err" | od -An -c | tr -d ' ')" != '\n' ]; then ok=0; why="stderr line does not end in a newline";
    elif ! head -n 1 "$T/err" | grep -q "^$name: error: "; then ok=0; why="stderr does not start with '$name: error: '";
    elif [ -n "$word" ] && ! grep -qiF -- "$word" "$T/err"; then ok=0; why="stderr does not mention '$word'"; fi
  fi
  if [ $ok -eq 1 ]; then pass; else fail "$desc: $why"; fi
}

expect_empty_dir() {
  local dir=$1 desc=$2
  local left
  left=$(ls -A "$dir" 2>/dev/null)
  if [ -z "$left" ]; then pass; else fail "$desc: files left in the output folder: $(echo $left)"; fi
}

expect_stdout_eq() {
  local want=$1 desc=$2
  if [ "$(cat "$T/out")" = "$want" ]; then pass; else
    fail "$desc: stdout differs"
    printf '      want: %s\n      got:  %s\n' "$(printf '%s' "$want" | head -c 400 | tr '\n' '|')" \
      "$(head -c 400 "$T/out" | tr '\n' '|')" >&2
  fi
}

expect_stdout_has() {
  local want=$1 desc=$2
  if grep -qF -- "$want" "$T/out"; then pass; else fail "$desc: stdout lacks '$want'"; fi
}

expect_stderr_empty() {
  if [ ! -s "$T/err" ]; then pass; else fail "$1: stderr not empty"; fi
}

# pycheck DESC CODE [ARGS...]: numpy imported as np, sys imported.
pycheck() {
  local desc=$1 code=$2
  shift 2
  local out
  if out=$("$PY" -c "import sys, json, numpy as np
$code" "$@" 2>&1); then pass; else
    fail "$desc"
    printf '      python: %s\n' "$(printf '%s' "$out" | tail -n 5 | tr '\n' '|')" >&2
  fi
}

# py CODE [ARGS...]: runs CODE, aborting the script if it fails (input making).
py() {
  local code=$1
  shift
  "$PY" -c "import sys, json, numpy as np
$code" "$@" || { echo "FATAL: making inputs failed" >&2; exit 1; }
}

freshdir() {
  rm -rf "${T:?}/$1"
  mkdir -p "$T/$1"
  printf '%s' "$T/$1"
}

# expect_help_version NAME: --help and --version on stdout, exit 0.
expect_help_version() {
  local name=$1 tb
  tb=$(bin "$name")
  run "$tb" --help
  expect_ok "$name --help"
  expect_stdout_has "Usage: $name" "$name --help synopsis"
  expect_stdout_has "Examples:" "$name --help examples"
  expect_stdout_has "--output" "$name --help lists -o"
  run "$tb" -h
  expect_ok "$name -h"
  run "$tb" --version
  expect_ok "$name --version"
  if grep -qE "^$name \(nnkit\) [0-9]+\.[0-9]+\.[0-9]+$" "$T/out" && [ "$(wc -l <"$T/out")" -eq 1 ]; then
    pass
  else
    fail "$name --version: want one line '$name (nnkit) X.Y.Z', got '$(head -c 200 "$T/out")'"
  fi
  # --help wins over a bad input, and is not an error.
  run "$tb" --help /nonexistent/x.npy
  expect_ok "$name --help with an input"
  # Help to a full device is an I/O error, not a silent success.
  run "$tb" --help
  LAST_CMD="$tb --help >/dev/full"
  "$tb" --help >/dev/full 2>"$T/err"
  RC=$?
  expect_error 74 "" "$name --help >/dev/full" "$name"
  # Every option of the help is shown with its default when it has a value.
  run "$tb" --help
  local opt
  for opt in $(grep -oE '^  (-[a-zA-Z], )?--[a-z0-9-]+' "$T/out" | grep -oE -- '--[a-z0-9-]+'); do
    HELP_OPTIONS="${HELP_OPTIONS:-} $opt"
  done
}

finish() {
  LAST_CMD=""
  if [ "$FAILS" -eq 0 ]; then
    printf '%s: all %d checks passed\n' "${TOOL:-$(basename "$0" .sh)}" "$CHECKS"
    exit 0
  fi
  printf '%s: %d of %d checks failed\n' "${TOOL:-$(basename "$0" .sh)}" "$FAILS" "$CHECKS" >&2
  exit 1
}
