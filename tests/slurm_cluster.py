"""The SLURM cluster the SLURM tests submit to (the one of .ci/slurm_up.sh): whether it answers, and its jobs."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

UP = "`sudo bash .ci/slurm_up.sh` starts a two-node cluster on this machine"


def nodes() -> dict[str, str]:
    """{node: state} as sinfo reports them; ValueError with the reason when no cluster answers."""
    if shutil.which("sinfo") is None:
        raise ValueError(f"no SLURM client (sinfo) on PATH; {UP}")
    try:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        raise ValueError(f"sinfo did not answer within 15 s (slurmctld down?); {UP}") from None
    if proc.returncode != 0:
        raise ValueError(f"sinfo failed ({proc.stderr.strip() or proc.returncode}); {UP}")
    return dict(line.split() for line in proc.stdout.splitlines())


def require(min_nodes: int = 1) -> list[str]:
    """The names of the cluster's nodes, when at least ``min_nodes`` of them are up; else skip the test, or fail it
    where CI has brought the cluster up first and says so (SCITASTE_REQUIRE_SLURM=1)."""
    try:
        states = nodes()
        up = sorted(node for node, state in states.items() if state.rstrip("*~#") in ("idle", "mix", "alloc", "comp"))
        reason = None if len(up) >= min_nodes else (
            f"{len(up)} SLURM node(s) up ({states or 'none'}), {min_nodes} needed; {UP}")
    except ValueError as exc:
        up, reason = [], str(exc)
    if reason:
        if os.environ.get("SCITASTE_REQUIRE_SLURM") == "1":
            pytest.fail(f"SCITASTE_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    return up


# squeue -o letters of the job fields the tests read (-o prints each value whole)
JOB_FIELDS = {"id": "%i", "comment": "%k", "workdir": "%Z", "nodes": "%D", "nodelist": "%N", "state": "%T"}


def jobs() -> list[dict[str, str]]:
    """squeue's jobs, finished ones too (the CI cluster keeps them for MinJobAge=600 s), as JOB_FIELDS dicts; the
    slurm executor puts "rule_<name>" in each job's comment and the workflow's directory in its working directory."""
    fmt = "|".join(JOB_FIELDS.values())  # "|" occurs in none of the values
    proc = subprocess.run(["squeue", "--states=all", "-h", "-o", fmt], capture_output=True, text=True, timeout=30,
                          check=True)
    return [dict(zip(JOB_FIELDS, line.split("|"))) for line in proc.stdout.splitlines()]
