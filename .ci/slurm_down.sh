#!/usr/bin/env bash
# Stops and removes what .ci/slurm_up.sh started and created: the slurmds and whatever still runs in the nodes'
# namespaces, slurmctld, munged (unless --keep-munge), the namespaces, the bridge and the node names in /etc/hosts.
# Safe to run twice, and after a half-finished start.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster.sh
source "$HERE/cluster.sh"

stop() { # name pidfile
    local name=$1 pidfile=$2 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm_down: stopping $name ($pid)" >&2
        kill -TERM "$pid"
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm_down: $name did not stop in 15s, killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$pidfile"
}

for pidfile in /run/slurmd-*.pid /run/slurmd.pid; do  # slurmd.pid: the one-node cluster of earlier versions
    [ -e "$pidfile" ] && stop "slurmd $(basename "$pidfile" .pid)" "$pidfile"
done
stop slurmctld /run/slurmctld.pid
[ "${1:-}" = "--keep-munge" ] || stop munged /run/munge/munged.pid

for ns in $(cluster_namespaces); do
    # job steps outlive their slurmd: end them (only processes inside this cluster's namespaces), then the node
    pids=$(ip netns pids "$ns" 2>/dev/null)
    if [ -n "$pids" ]; then
        echo "slurm_down: ending $(wc -w <<<"$pids") process(es) left on $ns" >&2
        kill -KILL $pids 2>/dev/null
    fi
    ip netns delete "$ns" && echo "slurm_down: removed node $ns" >&2
done
# deleting a namespace deletes the veth ends inside it, and with them their host ends
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE" && echo "slurm_down: removed $BRIDGE" >&2
if grep -qxF "$HOSTS_BEGIN" /etc/hosts 2>/dev/null; then
    kept=$(hosts_without_nodes)
    printf '%s\n' "$kept" >/etc/hosts  # in place: see slurm_up.sh
fi
exit 0
