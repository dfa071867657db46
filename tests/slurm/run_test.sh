#!/bin/bash
# npm run test:slurm — a real single-node Slurm on this machine runs a sharded sweep as a job array and merges it.
#
# Starts munged, slurmctld and slurmd from Debian's packages (munge, slurmctld, slurmd, slurm-client; installed when
# run as root, named otherwise) with a configuration of its own in a temporary directory (its own munge key and
# socket, free ports, state and logs there: nothing in /etc is used or changed), submits a 3-task array of
# tests/slurm/sweep-array.sbatch and tests/slurm/merge.sbatch with --dependency=afterok on it, checks that the merged
# JSON and CSV have the bytes of the unsharded sweep and the merge's table its text, and stops every daemon it
# started, on failure too. Needs root (slurmd starts the jobs). Not part of `npm test`.
#
# Environment: BITLENS_CLI (default build/native/bitlens, built when missing), KEEP=1 keeps the temporary directory.
# On this machine: ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no cgroups needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
say() { echo "test:slurm: $*"; }
fail() { echo "test:slurm: FAIL: $*" >&2; exit 1; }

# 1. Packages and the CLI.
export PATH=$PATH:/usr/sbin:/sbin  # the daemons live in sbin
need_pkgs=""
for pair in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_pkgs="$need_pkgs ${pair#*:}"
done
if [ "$(id -u)" != 0 ]; then
  [ -z "$need_pkgs" ] || echo "test:slurm: missing Debian packages:$need_pkgs (as root: apt-get install$need_pkgs)" >&2
  fail "needs root (slurmd runs the jobs as their user); run: sudo npm run test:slurm"
fi
if [ -n "$need_pkgs" ]; then
  say "installing$need_pkgs"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_pkgs >/dev/null ||
    fail "could not install$need_pkgs (apt-get install$need_pkgs)"
fi
cli=${BITLENS_CLI:-$root/build/native/bitlens}
case $cli in /*) ;; *) cli=$root/$cli ;; esac
if [ ! -x "$cli" ]; then
  if [ -z "${BITLENS_CLI:-}" ]; then npm run --silent build:native; fi
  [ -x "$cli" ] || fail "no bitlens CLI at $cli (npm run build:native, or set BITLENS_CLI)"
fi

# 2. A cluster of one node, all of it in $work.
work=$(mktemp -d /tmp/bitlens-slurm.XXXXXX)
chmod 755 "$work"
pids=()
jobs_submitted=""
export SLURM_CONF=$work/slurm.conf
cleanup() {
  local rc=$?
  set +e
  if [ -n "$jobs_submitted" ]; then
    scancel $jobs_submitted >/dev/null 2>&1
    for _ in $(seq 1 30); do  # let slurmd end the job steps before it is stopped
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [ $rc -ne 0 ] || [ "${KEEP:-}" = 1 ]; then
    say "logs and outputs kept in $work"
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # a TCP port nobody listens on, and the next one
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! ss -Hltn "( sport = :$p or sport = :$((p + 1)) )" 2>/dev/null | grep -q .; then echo "$p"; return; fi
  done
  fail "no free port pair found"
}
port=$(free_port)
host=$(hostname -s)

dd if=/dev/urandom of="$work/munge.key" bs=1024 count=1 status=none
chmod 600 "$work/munge.key"
munged --foreground --force --key-file="$work/munge.key" --socket="$work/munge.socket" --pid-file="$work/munged.pid" \
  --log-file="$work/munged.log" --seed-file="$work/munged.seed" 2>>"$work/munged.log" &
pids+=($!)

mkdir -p "$work/state" "$work/spool" "$work/parts"
cat >"$SLURM_CONF" <<EOF
ClusterName=bitlens-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge.socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1024 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
for _ in $(seq 1 50); do [ -S "$work/munge.socket" ] && break; sleep 0.1; done
[ -S "$work/munge.socket" ] || fail "munged did not start (see $work/munged.log)"

slurmctld -D -c -f "$SLURM_CONF" >>"$work/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N "$host" >>"$work/slurmd.log" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 1 120); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
  case $state in idle*) break ;; esac
  sleep 0.5
done
case $state in idle*) ;; *) fail "the node did not come up idle (state '$state'; see $work/slurmctld.log and $work/slurmd.log)" ;; esac
say "Slurm $(sinfo -V | awk '{print $2}') up on $host (ports $port, $((port + 1))), munge and both daemons in $work"

# 3. The sweep: 2 configurations x 3 seeds = 6 runs on 200 of the shipped images, in 3 parts.
args=(--model "$root/models/vit-fmnist-hf" --data "$root/models/data" --calib "$root/models/data"
  --configs w8a8,w4a4 --seeds 3 --calib-size 16 --limit 200)
export BITLENS=$cli
t0=$(date +%s.%N)
array=$(sbatch --parsable --array=1-3 --chdir="$work" --output="$work/sweep-%a.out" \
  tests/slurm/sweep-array.sbatch "$work/parts" "${args[@]}")
jobs_submitted="$array"
merge=$(sbatch --parsable --dependency=afterok:"$array" --kill-on-invalid-dep=yes --chdir="$work" \
  --output="$work/merge.out" --error="$work/merge.err" \
  tests/slurm/merge.sbatch "$work/parts" "$work/merged.json" "$work/merged.csv")
jobs_submitted="$array $merge"
say "submitted array job $array (tasks 1-3) and merge job $merge (afterok:$array)"
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1; }
merge_state=""
for _ in $(seq 1 600); do
  merge_state=$(job_state "$merge")
  case $merge_state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
  sleep 0.5
done
t1=$(date +%s.%N)
for i in 1 2 3; do
  say "array task $i: $(scontrol show job "${array}_$i" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1)," \
    "$(sed -n 's/^sweep part \([0-9]*\/[0-9]*\): \([0-9]* of [0-9]* runs\).*/part \1, \2/p' "$work/sweep-$i.out" 2>/dev/null)"
done
say "merge job: $merge_state"
[ "$merge_state" = COMPLETED ] || {
  for f in "$work"/sweep-*.out "$work/merge.err"; do [ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
  fail "the merge job ended $merge_state"
}
cat "$work/merge.err"

# 4. The unsharded sweep, here, and the comparison.
"$cli" sweep "${args[@]}" --jobs 1 --json "$work/whole.json" --csv "$work/whole.csv" >"$work/whole.txt" 2>"$work/whole.err"
cmp "$work/whole.json" "$work/merged.json" || fail "merged JSON differs from the unsharded sweep's ($work/merged.json vs whole.json)"
cmp "$work/whole.csv" "$work/merged.csv" || fail "merged CSV differs from the unsharded sweep's"
cmp "$work/whole.txt" "$work/merge.out" || fail "the merge job's table differs from the unsharded sweep's"
sed -n '3,6p' "$work/merge.out"
say "OK: merged JSON ($(wc -c <"$work/merged.json") bytes), CSV and table = the unsharded sweep's;" \
  "array + merge took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s from submission"
echo "1 passed, 0 failed"
