#!/usr/bin/env bash
# A SLURM cluster of N nodes on this one machine, for CI and the SLURM tests (`snakemake --profile profiles/ci`):
# slurmctld on the host, one slurmd per node, each node in its own network namespace (a veth into the bridge of
# .ci/cluster.sh, an address this script assigns) with its own host name (UTS namespace); all of them share munge,
# the filesystem and the CPUs. Idempotent, run as root:
#   bash .ci/slurm_up.sh [NODES]       # default 2
# installs slurm-wlm + munge when missing, writes /etc/slurm/slurm.conf, adds the node names to /etc/hosts, starts
# munged, slurmctld and the slurmds as plain daemons (CI containers have no systemd) and waits until every node is
# idle and a job step runs on all of them. .ci/slurm_down.sh stops and removes all of it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster.sh
source "$HERE/cluster.sh"
NODES=${1:-2}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
WAIT_S=${SLURM_UP_TIMEOUT:-90}
# memory kept back from the scheduler for the OS, munged, the daemons and the Snakemake main process
HEADROOM_MB=${SLURM_MEM_HEADROOM_MB:-2048}

log() { echo "slurm_up: $*" >&2; }
die() {
    log "ERROR: $*"
    for f in "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd-*.log /var/log/munge/munged.log; do
        [ -f "$f" ] && { echo "----- tail $f" >&2; tail -n 40 "$f" >&2; }
    done
    exit 1
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages, creates network namespaces, starts daemons)"
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] && [ "$NODES" -le 32 ] || die "node count must be 1..32, got '$NODES'"
NODE_LIST="$NODE_PREFIX[1-$NODES]"
[ "$NODES" -gt 1 ] || NODE_LIST="$(node_name 1)"

# --- packages -----------------------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sinfo >/dev/null; then
    log "installing slurm-wlm and munge"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
for tool in ip nsenter unshare; do command -v $tool >/dev/null || die "$tool not found (iproute2, util-linux)"; done

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
# Every node reports all of this machine's CPUs and memory: they share them (nothing enforces a job's share here,
# the jobs of the tests are small), and each node can take the largest job of the demo (rules sized for production
# ask up to 16 GB). The controller's host name is read at run time, never stored in the repository.
HOST=$(hostname -s)
HW=$(slurmd -C | head -n 1) || die "'slurmd -C' failed"
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS=$(field CPUs)
REAL_MEM=$(field RealMemory)
[ -n "$CPUS" ] && [ -n "$REAL_MEM" ] || die "could not parse 'slurmd -C': $HW"
MEM=$((REAL_MEM - HEADROOM_MB))
[ "$MEM" -ge 1024 ] || MEM=$((REAL_MEM * 3 / 4))
TOPOLOGY="CPUs=$CPUS Boards=$(field Boards) SocketsPerBoard=$(field SocketsPerBoard) CoresPerSocket=$(field CoresPerSocket)"
TOPOLOGY+=" ThreadsPerCore=$(field ThreadsPerCore) RealMemory=$MEM"

install -d -m 0755 $CONF_DIR $LOG_DIR /var/spool/slurmctld
NEW=$(mktemp)
cat >"$NEW" <<EOF
# Written by .ci/slurm_up.sh: a $NODES-node CI cluster on one machine. Do not edit; rerun the script.
ClusterName=ci
SlurmctldHost=$HOST($CONTROLLER_ADDR)
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
# the nodes run on one machine: each slurmd takes the node's sizes from this file, and has its own files (%n)
SlurmdParameters=config_overrides
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd-%n
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
EOF
for i in $(seq "$NODES"); do
    echo "NodeName=$(node_name "$i") NodeAddr=$(node_addr "$i") $TOPOLOGY State=UNKNOWN" >>"$NEW"
done
echo "PartitionName=debug Nodes=$NODE_LIST Default=YES MaxTime=INFINITE State=UP" >>"$NEW"

if ! cmp -s "$NEW" "$CONF"; then
    if alive /run/slurmctld.pid || compgen -G "/run/slurmd*.pid" >/dev/null; then
        log "slurm.conf changed: restarting the cluster"
        bash "$HERE/slurm_down.sh" --keep-munge
    fi
    install -m 0644 "$NEW" "$CONF"
fi
rm -f "$NEW"

# --- network: a bridge on the host, one namespace per node ------------------------------------------------------------
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($CONTROLLER_ADDR/24)"
    ip link add "$BRIDGE" type bridge
fi
ip addr replace "$CONTROLLER_ADDR/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
for i in $(seq "$NODES"); do
    name=$(node_name "$i")
    if [ ! -e "/var/run/netns/$name" ]; then
        log "creating node $name ($(node_addr "$i"))"
        ip netns add "$name"
    fi
    if ! ip link show "$VETH_PREFIX$i" >/dev/null 2>&1; then
        ip link add "$VETH_PREFIX$i" type veth peer name eth0 netns "$name"
    fi
    ip link set "$VETH_PREFIX$i" master "$BRIDGE" up
    ip -n "$name" addr replace "$(node_addr "$i")/24" dev eth0
    ip -n "$name" link set eth0 up
    ip -n "$name" link set lo up  # jobs talk to their own loopback servers
done
# the node names resolve the same everywhere (one /etc/hosts): the rendezvous of a multi-node job needs them
HOSTS_BLOCK=$(
    echo "$HOSTS_BEGIN"
    for i in $(seq "$NODES"); do echo "$(node_addr "$i") $(node_name "$i")"; done
    echo "$HOSTS_END"
)
KEPT=$(hosts_without_nodes)
# written in place: /etc/hosts of a container is often a bind mount that cannot be replaced
printf '%s\n%s\n' "$KEPT" "$HOSTS_BLOCK" >/etc/hosts

# --- daemons ----------------------------------------------------------------------------------------------------------
start=$SECONDS
started=0
if ! alive /run/slurmctld.pid; then
    log "starting slurmctld"
    # -i: start even when the state files of an earlier, differently configured run do not fit
    /usr/sbin/slurmctld -i || die "slurmctld did not start"
    started=1
fi
for i in $(seq "$NODES"); do
    name=$(node_name "$i")
    alive "/run/slurmd-$name.pid" && continue
    log "starting slurmd of $name"
    install -d -m 0755 "/var/spool/slurmd-$name"
    # nsenter keeps this mount namespace (`ip netns exec` would remount /sys and hide the cgroup tree from slurmd);
    # unshare gives the node its own host name
    nsenter --net="/var/run/netns/$name" unshare --uts --fork \
        sh -c "hostname $name && exec /usr/sbin/slurmd -N $name" || die "slurmd of $name did not start"
    started=1
done

states=""
while [ $((SECONDS - start)) -lt "$WAIT_S" ]; do
    states=$(sinfo -h -N -n "$NODE_LIST" -o '%N=%t' 2>/dev/null | sort -u | tr '\n' ' ' || true)
    ready=$(grep -oE '=(idle|mix|alloc)( |$)' <<<"$states" | wc -l)
    [ "$ready" -eq "$NODES" ] && break
    # a node left down/drained by an earlier run comes back on request
    for entry in $states; do
        case "${entry#*=}" in
            down* | drain* | drng*) scontrol update NodeName="${entry%%=*}" State=RESUME >/dev/null 2>&1 || true ;;
        esac
    done
    sleep 1
done
[ "${ready:-0}" -eq "$NODES" ] || die "nodes not ready after ${WAIT_S}s (states: ${states:-no answer from slurmctld})"
# a fresh slurmctld may report the idle state it saved in an earlier run before the slurmds have registered: prove
# that a job step runs on every node, under its own name (not when the cluster was already up: it may be busy)
if [ "$started" = 1 ]; then
    ran=$(timeout 60 srun --nodes="$NODES" --ntasks="$NODES" --ntasks-per-node=1 --time=1 --job-name=slurm_up_smoke \
        hostname | sort | tr '\n' ' ') || die "nodes are ready but a test job step did not run"
    expected=$(for i in $(seq "$NODES"); do node_name "$i"; done | sort | tr '\n' ' ')
    [ "$ran" = "$expected" ] || die "the test job step ran on '$ran', expected '$expected'"
fi
log "$NODES-node cluster up in $((SECONDS - start))s"
sinfo -N
