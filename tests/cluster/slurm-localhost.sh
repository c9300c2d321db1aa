#!/usr/bin/env bash
# A real SLURM run of examples/cluster/slurm on this one machine: installs
# Debian's slurm-wlm and munge when missing, writes a minimal single-node
# slurm.conf (no cgroups, no systemd, no accounting), starts munged,
# slurmctld and slurmd in the background, submits the recipe, waits for its
# merge job, compares every merged result with the unsharded run (cmp), and
# stops the daemons it started. Repeatable: each run starts from a clean
# state folder and cleans up after itself, also when it fails.
#
#   NNKIT_BIN  the built tools (default: build/bin of this checkout)
#   SLURM_DIR  state, logs and slurm.conf (default: /tmp/nnkit-slurm)
#   WORK       the recipe's run folder (default: $SLURM_DIR/work)
#   TIMEOUT    seconds to wait for the jobs (default: 600)
#   SLURMCTLD_PORT, SLURMD_PORT  the daemons' ports (default: 16817, 16818)
#   SHARDS, SAMPLES, STEPS, ITERS, ...  passed to the recipe (small defaults)
#
# Needs root (apt-get, munged, slurmd). Usage: bash tests/cluster/slurm-localhost.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
me=slurm-localhost
say() { echo "$me: $*"; }
die() { echo "$me: error: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (it installs packages and runs slurmd)"

export NNKIT_BIN=$(cd "${NNKIT_BIN:-$root/build/bin}" && pwd)
[ -x "$NNKIT_BIN/ddim-sample" ] || die "no built tools in $NNKIT_BIN"
D=${SLURM_DIR:-/tmp/nnkit-slurm}
export WORK=${WORK:-$D/work}
export SHARDS=${SHARDS:-3} SAMPLES=${SAMPLES:-3000} STEPS=${STEPS:-20} ITERS=${ITERS:-6}
TIMEOUT=${TIMEOUT:-600}
t0=$SECONDS

# --- packages (Debian) ---
need=()
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

# --- stop whatever a previous run left, start clean ---
stop_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}
stop_all() {
  stop_pidfile "$D/slurmd.pid"
  stop_pidfile "$D/slurmctld.pid"
  stop_pidfile "$D/munge/munged.pid"
}
stop_all
rm -rf "$D"
mkdir -p "$D/state" "$D/spool" "$D/munge"
chown munge:munge "$D/munge"
chmod 755 "$D/munge"
trap 'rc=$?; stop_all; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- munge: a private daemon on a private socket ---
[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile /etc/munge/munge.key && chown munge:munge /etc/munge/munge.key; }
sock=$D/munge/munge.socket
runuser -u munge -- /usr/sbin/munged --socket="$sock" --pid-file="$D/munge/munged.pid" \
  --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed" ||
  die "munged did not start: $(tail -n 3 "$D/munge/munged.log" 2>/dev/null)"
munge --socket="$sock" -n </dev/null | unmunge --socket="$sock" >/dev/null || die "munge does not work"

# --- slurm.conf: this host, its real CPUs and memory, no cgroups ---
host=$(hostname -s)
node=$(slurmd -C | head -n 1)  # NodeName=... CPUs=... RealMemory=...
export SLURM_CONF=$D/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=nnkit
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
[[ $node == NodeName=$host\ * ]] || sed -i "s/^NodeName=[^ ]*/NodeName=$host/" "$SLURM_CONF"

say "starting slurmctld and slurmd ($(sed -n 's/^NodeName=[^ ]* \(CPUs=[0-9]*\).*\(RealMemory=[0-9]*\).*/\1 \2/p' "$SLURM_CONF"))"
slurmctld -i || die "slurmctld did not start: $(tail -n 5 "$D/slurmctld.log" 2>/dev/null)"
slurmd || die "slurmd did not start: $(tail -n 5 "$D/slurmd.log" 2>/dev/null)"
state=""
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1)
  [ "$state" = idle ] && break
  sleep 1
done
[ "$state" = idle ] || die "the node is '${state:-unknown}', not idle, after 60 s; slurmd.log: $(tail -n 5 "$D/slurmd.log")"
say "node $host idle after $((SECONDS - t0)) s"

# --- the recipe, and the same pipeline unsharded ---
rm -rf "$WORK"
bash "$root/examples/cluster/slurm/submit.sh"
merge=$(awk '{ print $NF }' "$WORK/logs/jobs")
jobstate() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n 1 | cut -d= -f2; }
bash "$root/examples/cluster/steps.sh" reference  # meanwhile, on this machine
deadline=$((SECONDS + TIMEOUT))
while :; do
  st=$(jobstate "$merge" || true)  # a busy controller is asked again
  case $st in
    COMPLETED) break ;;
    FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
      for j in $(cat "$WORK/logs/jobs"); do
        scontrol show job -o "$j" 2>/dev/null | tr ' ' '\n' | grep -E '^(JobId|ArrayTaskId|JobName|JobState|ExitCode)=' |
          tr '\n' ' ' | sed 's/ JobId=/\nJobId=/g'
        echo
      done >&2
      for f in $(grep -l . "$WORK"/logs/*.out | head -n 5); do echo "== $f"; tail -n 3 "$f"; done >&2
      die "the merge job $merge ended $st"
      ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || { squeue >&2; die "the jobs did not finish within $TIMEOUT s"; }
  sleep 1
done
say "all $(wc -w <"$WORK/logs/jobs") jobs completed after $((SECONDS - t0)) s"
bash "$root/examples/cluster/steps.sh" compare || die "the SLURM run differs from the unsharded run"
say "PASS: the SLURM job arrays ($SHARDS shards) give the unsharded results, byte for byte ($((SECONDS - t0)) s)"
