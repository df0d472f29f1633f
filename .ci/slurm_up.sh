#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for CI and tests/test_slurm.py (`snakemake --profile profiles/ci`).
# Idempotent, run as root: installs slurm-wlm + munge when missing, writes /etc/slurm/slurm.conf from what
# `slurmd -C` sees, starts munged, slurmctld and slurmd as plain daemons (CI containers have no systemd) and waits
# until the node is idle. Stop it with .ci/slurm_down.sh.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
WAIT_S=${SLURM_UP_TIMEOUT:-90}
# memory kept back from the scheduler for the OS, munged, slurmd and the Snakemake main process
HEADROOM_MB=${SLURM_MEM_HEADROOM_MB:-2048}

log() { echo "slurm_up: $*" >&2; }
die() {
    log "ERROR: $*"
    for f in $LOG_DIR/slurmctld.log $LOG_DIR/slurmd.log /var/log/munge/munged.log; do
        [ -f "$f" ] && { echo "----- tail $f" >&2; tail -n 40 "$f" >&2; }
    done
    exit 1
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"

# --- packages -----------------------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sinfo >/dev/null; then
    log "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# --- munge ----------------------------------------------------------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating a munge key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile /etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
if ! alive /run/munge/munged.pid; then
    log "starting munged"
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
fi
for _ in $(seq 20); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
munge -n </dev/null | unmunge >/dev/null 2>&1 || die "munge credentials do not round-trip"

# --- slurm.conf -----------------------------------------------------------------------------------------------------
# The host name is read at run time, never stored in the repository; 127.0.0.1 as address so that nothing depends
# on the container's name resolution.
HOST=$(hostname -s)
HW=$(slurmd -C | head -n 1) || die "'slurmd -C' failed"
CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$HW")
BOARDS=$(sed -n 's/.* Boards=\([0-9]*\).*/\1/p' <<<"$HW")
SOCKETS=$(sed -n 's/.* SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$HW")
CORES=$(sed -n 's/.* CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$HW")
THREADS=$(sed -n 's/.* ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$HW")
REAL_MEM=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
[ -n "$CPUS" ] && [ -n "$REAL_MEM" ] || die "could not parse 'slurmd -C': $HW"
MEM=$((REAL_MEM - HEADROOM_MB))
[ "$MEM" -ge 1024 ] || MEM=$((REAL_MEM * 3 / 4))

TOPOLOGY="CPUs=$CPUS Boards=${BOARDS:-1} SocketsPerBoard=${SOCKETS:-1} CoresPerSocket=${CORES:-$CPUS}"
TOPOLOGY+=" ThreadsPerCore=${THREADS:-1}"

install -d -m 0755 $CONF_DIR $LOG_DIR /var/spool/slurmctld /var/spool/slurmd
NEW=$(mktemp)
cat >"$NEW" <<EOF
# Written by .ci/slurm_up.sh: a one-node CI cluster. Do not edit; rerun the script.
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# no cgroups: they may be unusable inside a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: sacct has nothing to read, so Snakemake polls squeue (profiles/ci: slurm-status-command squeue)
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# finished jobs stay visible to squeue for 10 minutes, long enough for the plugin's status polls
MinJobAge=600
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
NodeName=$HOST NodeAddr=127.0.0.1 $TOPOLOGY RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

if ! cmp -s "$NEW" "$CONF"; then
    if alive /run/slurmctld.pid || alive /run/slurmd.pid; then
        log "slurm.conf changed: restarting the daemons"
        bash "$(dirname "$0")/slurm_down.sh" --keep-munge
    fi
    install -m 0644 "$NEW" "$CONF"
fi
rm -f "$NEW"

# --- daemons ----------------------------------------------------------------------------------------------------------
start=$SECONDS
started=0
if ! alive /run/slurmctld.pid; then
    log "starting slurmctld"
    # -i: start even when the state files of an earlier, differently configured run do not fit
    /usr/sbin/slurmctld -i || die "slurmctld did not start"
    started=1
fi
if ! alive /run/slurmd.pid; then
    log "starting slurmd"
    /usr/sbin/slurmd || die "slurmd did not start"
    started=1
fi

state=""
while [ $((SECONDS - start)) -lt "$WAIT_S" ]; do
    state=$(sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle | mix | alloc) break ;;
        # a node left down/drained by an earlier run comes back on request
        down* | drain* | drng*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case "$state" in
    idle | mix | alloc) ;;
    *) die "node $HOST not ready after ${WAIT_S}s (state: '${state:-no answer from slurmctld}')" ;;
esac
# a fresh slurmctld may report the idle state it saved in an earlier run before slurmd has registered: prove that a
# job step really runs (not when the cluster was already up: its node may be busy with someone's jobs)
if [ "$started" = 1 ]; then
    timeout 60 srun --nodes=1 --ntasks=1 --time=1 --job-name=slurm_up_smoke true \
        || die "node $HOST is $state but a test job step did not run"
fi
log "cluster up in $((SECONDS - start))s"
sinfo
