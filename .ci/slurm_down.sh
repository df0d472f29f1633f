#!/usr/bin/env bash
# Stops what .ci/slurm_up.sh started: slurmd, slurmctld, then munged (unless --keep-munge). Safe to run twice.
set -uo pipefail

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

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
[ "${1:-}" = "--keep-munge" ] || stop munged /run/munge/munged.pid
exit 0
