# shellcheck shell=bash
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
#   run_sh TEXT   the same for a shell text (pipes)
#   expect_ok DESC              exit 0, nothing on stderr
#   expect_rc CODE DESC         exit CODE
#   expect_error CODE WORDS DESC [NAME]
#                               exit CODE, stderr exactly one line
#                               "NAME: error: ..." that contains every word of
#                               WORDS (case-insensitive), no crash signal
#   expect_no_signal DESC       exit status below 128 (and no time-out)
#   expect_empty_dir DIR DESC   DIR holds no file at all, hidden ones included
#   expect_stdout_eq TEXT DESC  stdout is exactly TEXT (less final newlines)
#   expect_stdout_has TEXT DESC stdout contains TEXT
#   pycheck DESC CODE [ARGS...] queues a numpy check (numpy as np, json, sys
#                               imported; sys.argv[1:] = ARGS; an argument that
#                               is a file under $T, but not under $T/in or
#                               $T/bad (inputs), is snapshotted now); it
#                               passes when it raises nothing. All queued
#                               checks run in one Python at pyflush/finish.
#   PYPRELUDE                   Python text run before every queued check
#   py CODE [ARGS...]           runs CODE now (making inputs); fatal if it fails
#   expect_file_eq A B DESC     byte-identical files
#   expect_help_version NAME [OPTION...]
#                               --help/-h/--version behave; --help lists
#                               exactly the OPTIONs the test says it covers
#   expect_to_formats NAME INPUT [ARGS...]
#                               every --to format of the help can be written
#   freshdir NAME               makes (or empties) $T/NAME and prints its path
#   finish                      runs queued checks, prints the count, exits
#                               1 if any check failed
#
# Every tool script also sources bad-input.sh (the shared bad-input and
# bad-output matrices).
set -u
export LC_ALL=C
shopt -s extglob

: "${NNKIT_BIN:?NNKIT_BIN must name the folder of the built tools}"
NNKIT_BIN=$(cd "$NNKIT_BIN" && pwd) || exit 1
NNKIT_FIXTURES=${NNKIT_FIXTURES:-}
NNKIT_SRC=${NNKIT_SRC:-}
NNKIT_MAN=${NNKIT_MAN:-}
TOOL=${TOOL:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/nnkit-cli.XXXXXX") || exit 1
_nnkit_cleanup() {
  # Stop anything a test left running in the background, then remove files.
  local p
  for p in $(jobs -p); do kill "$p" 2>/dev/null; done
  chmod -R u+w "$T" 2>/dev/null
  rm -rf "$T"
}
trap _nnkit_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CHECKS=0
FAILS=0
RC=0
LAST_CMD=""
ERRTXT=""
# Time limit for one command run by `run` (seconds).
RUN_TIMEOUT=${RUN_TIMEOUT:-15}
_T0=$EPOCHREALTIME

# A Python with numpy: the first python3 on PATH may lack it.
PY=""
for _p in /usr/bin/python3 python3; do
  if command -v "$_p" >/dev/null 2>&1 && "$_p" -c 'import numpy' >/dev/null 2>&1; then
    PY=$(command -v "$_p")
    break
  fi
done
if [ -z "$PY" ]; then
  echo "FATAL: no python3 with numpy found (tried /usr/bin/python3, python3)" >&2
  exit 1
fi

bin() { printf '%s/%s' "$NNKIT_BIN" "$1"; }

for _t in tensor-info tensor-convert tensor-cat tensor-split; do
  [ -x "$NNKIT_BIN/$_t" ] || { echo "FATAL: $NNKIT_BIN/$_t is not built" >&2; exit 1; }
done

pass() { CHECKS=$((CHECKS + 1)); }

fail() {
  CHECKS=$((CHECKS + 1))
  FAILS=$((FAILS + 1))
  printf 'FAIL: %s\n' "$*" >&2
  if [ -n "$LAST_CMD" ]; then
    printf '      command: %s\n' "$LAST_CMD" >&2
    _read_err
    printf '      exit %s; stderr: %s\n' "$RC" "${ERRTXT:0:600}" >&2
  fi
}

# The stderr of the last run, in ERRTXT (no fork).
_read_err() {
  ERRTXT=""
  [ -f "$T/err" ] && IFS= read -r -d '' ERRTXT <"$T/err"
  return 0
}

# run CMD...: stdout -> $T/out, stderr -> $T/err, status -> $RC.
run() {
  LAST_CMD="$*"
  timeout -k 2 "$RUN_TIMEOUT" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  return 0
}

# run_sh 'SHELL TEXT': like run, for pipes; the status is that of the text.
run_sh() {
  LAST_CMD="$1"
  timeout -k 2 "$RUN_TIMEOUT" bash -c "$1" >"$T/out" 2>"$T/err"
  RC=$?
  return 0
}

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

# expect_error CODE WORDS DESC [TOOLNAME]
expect_error() {
  local want=$1 words=$2 desc=$3 name=${4:-$TOOL}
  local why="" w
  _read_err
  if [ "$RC" -ge 128 ] || [ "$RC" -eq 124 ]; then why="killed by a signal or timed out (exit $RC)"
  elif [ "$RC" -ne "$want" ]; then why="want exit $want, got $RC"
  elif [ -z "$ERRTXT" ]; then why="nothing on stderr, want one line '$name: error: ...'"
  elif [[ $ERRTXT != *$'\n' ]]; then why="stderr does not end in a newline"
  elif [[ ${ERRTXT%$'\n'} == *$'\n'* ]]; then why="stderr has more than one line"
  elif [[ $ERRTXT != "$name: error: "* ]]; then why="stderr does not start with '$name: error: '"
  else
    shopt -s nocasematch
    for w in $words; do
      [[ $ERRTXT == *"$w"* ]] || { why="the message does not mention '$w'"; break; }
    done
    shopt -u nocasematch
  fi
  if [ -z "$why" ]; then pass; else fail "$desc: $why"; fi
}

expect_stderr_empty() {
  if [ ! -s "$T/err" ]; then pass; else fail "$1: stderr not empty"; fi
}

expect_empty_dir() {
  local dir=$1 desc=$2 f=() had_n had_d
  had_n=$(shopt -p nullglob) had_d=$(shopt -p dotglob)
  shopt -s nullglob dotglob
  f=("$dir"/*)
  eval "$had_n; $had_d"
  if [ ${#f[@]} -eq 0 ]; then pass; else fail "$desc: files left in the output folder: ${f[*]##*/}"; fi
}

_empty_dir_now() {  # empties a folder, hidden files included
  local f=() had_n had_d
  had_n=$(shopt -p nullglob) had_d=$(shopt -p dotglob)
  shopt -s nullglob dotglob
  f=("$1"/*)
  eval "$had_n; $had_d"
  [ ${#f[@]} -eq 0 ] || rm -rf -- "${f[@]}"
}

expect_stdout_eq() {
  local want=$1 desc=$2 got=""
  IFS= read -r -d '' got <"$T/out"
  while [[ $got == *$'\n' ]]; do got=${got%$'\n'}; done
  while [[ $want == *$'\n' ]]; do want=${want%$'\n'}; done
  if [ "$got" = "$want" ]; then pass; else
    fail "$desc: stdout differs"
    printf '      want: %s\n      got:  %s\n' "${want:0:400}" "${got:0:400}" >&2
  fi
}

expect_stdout_has() {
  local want=$1 desc=$2 got=""
  IFS= read -r -d '' got <"$T/out"
  if [[ $got == *"$want"* ]]; then pass; else fail "$desc: stdout lacks '$want'"; fi
}

expect_file_eq() {  # expect_file_eq A B DESC: byte-identical files
  if cmp -s "$1" "$2"; then pass; else fail "$3: $1 and $2 differ"; fi
}

# ------------------------------------------------------------ numpy checks
PYQ=$T/.pyq
mkdir -p "$PYQ"
PYN=0
PYPRELUDE=""

pycheck() {
  local desc=$1 code=$2
  shift 2
  local a args=() i=0
  PYN=$((PYN + 1))
  for a in "$@"; do
    i=$((i + 1))
    # Files of this test may change before the check runs: snapshot them.
    if [[ $a == "$T/"* ]] && [[ $a != "$T/in/"* ]] && [[ $a != "$T/bad/"* ]] && [ -f "$a" ]; then
      cp "$a" "$PYQ/$PYN.arg$i"
      a=$PYQ/$PYN.arg$i
    fi
    args+=("$a")
  done
  [ "$PYN" -eq 1 ] && printf '%s' "$PYPRELUDE" >"$PYQ/prelude"
  printf '%s\0' "$desc" "$LAST_CMD" "$code" "${args[@]}" >"$PYQ/$PYN"
}

pyflush() {
  [ "$PYN" -eq 0 ] && return 0
  local line
  while IFS= read -r line; do
    case $line in
      P) pass ;;
      F*) CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); printf 'FAIL: %s\n' "${line#F }" >&2 ;;
      *) printf '%s\n' "$line" >&2 ;;
    esac
  done < <("$PY" - "$PYQ" "$PYN" <<'EOF'
import sys, os, json, traceback, warnings
import numpy as np
warnings.simplefilter("ignore")
np.seterr(all="ignore")
q, n = sys.argv[1], int(sys.argv[2])
prelude = open(os.path.join(q, "prelude")).read()
for i in range(1, n + 1):
    parts = open(os.path.join(q, str(i)), "rb").read().split(b"\0")[:-1]
    desc, cmd, code = (p.decode() for p in parts[:3])
    args = [p.decode() for p in parts[3:]]
    sys.argv = ["check"] + args
    g = {"np": np, "json": json, "sys": sys, "os": os, "__name__": "__main__"}
    try:
        exec(compile(prelude + "\n" + code, desc, "exec"), g)
        print("P")
    except SystemExit as e:
        print("P" if not e.code else "F %s: exit %s" % (desc, e.code))
    except BaseException as e:
        tb = traceback.format_exception_only(type(e), e)[-1].strip()
        print("F %s\n      command: %s\n      python: %s" % (desc, cmd, tb[:800]))
    sys.stdout.flush()
EOF
)
  rm -rf "$PYQ"
  mkdir -p "$PYQ"
  PYN=0
}

# py CODE [ARGS...]: runs CODE now, aborting the script if it fails.
py() {
  local code=$1
  shift
  "$PY" -c "import sys, os, json, numpy as np
$code" "$@" || { echo "FATAL: making inputs failed" >&2; exit 1; }
}

freshdir() {
  rm -rf "${T:?}/$1"
  mkdir -p "$T/$1"
  printf '%s' "$T/$1"
}

# expect_help_version NAME [OPTION...]: --help and --version on stdout, exit 0,
# and every option of --help is one the calling test says it covers.
expect_help_version() {
  local name=$1 tb got opt
  shift
  tb=$NNKIT_BIN/$name
  run "$tb" --help
  expect_ok "$name --help"
  expect_stdout_has "Usage: $name" "$name --help synopsis"
  expect_stdout_has "Examples:" "$name --help examples"
  IFS= read -r -d '' got <"$T/out"
  if [ "$#" -gt 0 ]; then
    local covered=" $* " listed
    listed=$(grep -oE '^ {2,6}(-[a-zA-Z], )?--[a-z0-9-]+' "$T/out" | grep -oE -- '--[a-z0-9-]+')
    for opt in $listed; do
      case $covered in *" $opt "*) pass ;; *) fail "$name --help lists $opt, which this test does not cover" ;; esac
    done
    for opt in "$@"; do
      case " $(echo $listed) " in *" $opt "*) pass ;; *) fail "$name --help does not list $opt" ;; esac
    done
  fi
  run "$tb" -h
  expect_ok "$name -h"
  expect_file_eq "$T/out" <(printf '%s' "$got") "$name -h is --help"
  run "$tb" --version
  expect_ok "$name --version"
  IFS= read -r -d '' got <"$T/out"
  if [[ $got =~ ^$name\ \(nnkit\)\ [0-9]+\.[0-9]+\.[0-9]+$'\n'$ ]]; then pass; else
    fail "$name --version: want one line '$name (nnkit) X.Y.Z', got '${got:0:200}'"
  fi
  # --help and --version win over inputs and other options, and are not errors.
  run "$tb" --help /nonexistent/x.npy
  expect_ok "$name --help with a missing input"
  run "$tb" /nonexistent/x.npy --version
  expect_ok "$name --version with a missing input"
  # Help to a full device is an I/O error (74) with its one line, not a success.
  LAST_CMD="$name --help >/dev/full"
  "$tb" --help >/dev/full 2>"$T/err"
  RC=$?
  expect_error 74 "" "$LAST_CMD" "$name"
}

# expect_to_formats NAME INPUT [ARGS...]: every format that NAME's --help lists
# for --to is one that `NAME ARGS... INPUT --to FORMAT` writes (INPUT should
# suit them all, e.g. a small uint8 [H,W,3] image).
expect_to_formats() {
  local name=$1 input=$2 help="" list f
  shift 2
  run "$NNKIT_BIN/$name" --help
  help=$(tr -s ' \n' '  ' <"$T/out")
  if [[ $help =~ --to\ FORMAT\ output\ format:\ ([a-z0-9, ]+)\ \( ]]; then
    list=${BASH_REMATCH[1]//,/ }
    list=${list// or / }
    pass
  else
    fail "$name --help: no 'output format: ...' list for --to"
    return
  fi
  for f in $list; do
    run "$NNKIT_BIN/$name" "$@" "$input" --to "$f" -o "$T/to-$f.out"
    if [ "$RC" -eq 0 ] && [ -s "$T/to-$f.out" ]; then pass; else
      fail "$name --help lists --to $f, but '$name ${*:+$* }INPUT --to $f' fails (exit $RC)"
    fi
    rm -f "$T/to-$f.out"
  done
}

finish() {
  pyflush
  LAST_CMD=""
  local secs
  secs=$(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $_T0 }")
  if [ "$FAILS" -eq 0 ]; then
    printf '%s: all %d checks passed (%s s)\n' "${TOOL:-$(basename "$0" .sh)}" "$CHECKS" "$secs"
    exit 0
  fi
  printf '%s: %d of %d checks failed (%s s)\n' "${TOOL:-$(basename "$0" .sh)}" "$FAILS" "$CHECKS" "$secs" >&2
  exit 1
}
