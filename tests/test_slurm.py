"""The SLURM profiles. The demo DAG through sbatch (profiles/ci against the cluster of .ci/slurm_up.sh),
GRPO training job included, gives byte-identical datasets to a local run, and a job SLURM refuses has the sbatch
error in its rule log; profiles/slurm parses and dry-runs without any SLURM."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import slurm_cluster
from tests.workflow_runner import ROOT, planned_jobs, snakemake, write_config

DATA_TARGETS = ("audit", "pairs", "papers", "citations")
# run through SLURM only: the comparison with the local run is of the datasets
TRAINING = ("tiny_base_model", "scijudge_sft_data", "scijudge_sft_warmup", "scijudge_grpo")
# deterministic datasets, compared byte for byte
COMPARED = ("results/arxiv/*.parquet", "results/scijudge/pairs/*.parquet")
# the training jobs prove the submission path (launcher, allocation), not learning: a few steps each
GRPO_STEPS = 2
SHORT_TRAINING = {"sft_warmup": {"trainer": {"max_steps": 5}},
                  "grpo": {"trainer": {"max_steps": GRPO_STEPS, "save_steps": GRPO_STEPS}}}


@pytest.mark.slow
def test_demo_through_slurm_is_byte_identical_to_a_local_run(tmp_path_factory):
    # one test, not a module fixture shared by several: pytest -n 2 could run such a fixture once per worker
    slurm_cluster.require()
    slurm_dir, local_dir = tmp_path_factory.mktemp("slurm"), tmp_path_factory.mktemp("local")
    for d in (slurm_dir, local_dir):
        write_config(d, scijudge=SHORT_TRAINING)
    # side by side: the SLURM run mostly waits for status polls, so the local run costs it little
    with ThreadPoolExecutor(2) as pool:
        slurm_run = pool.submit(snakemake, slurm_dir, "--profile", str(ROOT / "profiles/ci"), *DATA_TARGETS,
                                "scijudge_model", timeout=900)
        local_run = pool.submit(snakemake, local_dir, "--cores", "2", *DATA_TARGETS, timeout=600)
        via_slurm, local = slurm_run.result(), local_run.result()

    # every job went through sbatch: Snakemake logged a SLURM job id for it, SLURM wrote its per-job log
    log = via_slurm.stdout + via_slurm.stderr
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log))
    assert submitted, f"no 'SLURM jobid' in the Snakemake log:\n{log[-3000:]}"
    # every rule that ran a command locally was an sbatch job under the ci profile (target rules run nothing)
    ran_locally = set(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", local.stdout + local.stderr))
    per_rule = {p.parent.name.removeprefix("rule_"): p.stem
                for p in (slurm_dir / ".snakemake/slurm_logs").glob("rule_*/*.log")}
    assert set(per_rule) == ran_locally - set(DATA_TARGETS) | set(TRAINING), (sorted(per_rule), sorted(ran_locally))
    assert set(per_rule.values()) <= set(submitted.values()), (per_rule, submitted)
    # and SLURM itself ran them (the CI cluster keeps finished jobs in squeue for MinJobAge=600 s)
    proc = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%T", "-j", ",".join(submitted.values())],
                          capture_output=True, text=True, timeout=30)
    states = dict(line.split("|") for line in proc.stdout.split())
    assert states and set(states.values()) == {"COMPLETED"}, (proc.stdout, proc.stderr)

    # the deterministic datasets, byte for byte
    def digests(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for pattern in COMPARED for p in sorted(root.glob(pattern))}

    from_slurm = digests(slurm_dir)
    assert len(from_slurm) >= 5, sorted(from_slurm)
    assert from_slurm == digests(local_dir)
    # the training job ran its steps inside the SLURM allocation, through the launcher
    state = json.loads((slurm_dir / "results/scijudge/grpo/trainer_state.json").read_text())
    assert state["global_step"] == GRPO_STEPS

    # a GPU job on a partition without GPUs: SLURM refuses it, and the reason lands in the rule's own log
    cfg = write_config(slurm_dir, "gpu.yaml", scijudge={**SHORT_TRAINING, "eval": {"resources": {"mem_mb": 1000, "runtime": 10,
                                                                               "cpus_per_task": 1, "gpus": 1}}})
    refused = snakemake(slurm_dir, "--profile", str(ROOT / "profiles/ci"), "results/scijudge/eval/predictions/base.parquet",
                        config=cfg, check=False, timeout=300)
    assert refused.returncode != 0
    rule_log = (slurm_dir / "results/logs/scijudge_eval_model/base.log").read_text()
    assert "sbatch: error" in rule_log and "gres" in rule_log, rule_log


# ----------------------------------------------------------------------------- profiles/slurm, no SLURM needed
def _dry_run_from_repo_root(tmp_path, *args, **env):
    """`snakemake -n --profile slurm` typed in the repository root (the `slurm` link), on a scratch directory."""
    write_config(tmp_path)
    # targets first: --configfile takes several values
    cmd = [sys.executable, "-m", "snakemake", "-n", *args, "--profile", "slurm", "--directory", str(tmp_path),
           "--configfile", str(tmp_path / "config.yaml")]
    # no conda on CI machines; a dry run with conda would need it to hash the envs
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), SCITASTE_SOFTWARE_DEPLOYMENT="none")
    for name in ("SCITASTE_SLURM_PARTITION", "SCITASTE_SLURM_ACCOUNT"):
        full_env.pop(name, None)
    full_env.update(env)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=full_env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def test_slurm_profile_dry_run_from_repo_root(tmp_path):
    proc = _dry_run_from_repo_root(tmp_path, "papers")
    assert re.search(r"Using profiles? slurm", proc.stdout + proc.stderr)
    assert {"demo_snapshots", "arxiv_papers"} <= set(planned_jobs(proc))
    # unset: no partition or account, so the plugin takes the cluster's default partition and guesses the account
    assert "slurm_partition=" not in proc.stdout and "slurm_account=" not in proc.stdout


def test_slurm_profile_reads_partition_and_account_from_the_environment(tmp_path):
    # `all` would evaluate to Python's builtin if the profile did not quote it
    proc = _dry_run_from_repo_root(tmp_path, "papers", SCITASTE_SLURM_PARTITION="all", SCITASTE_SLURM_ACCOUNT="p123")
    resources = [line for line in proc.stdout.splitlines() if line.strip().startswith("resources:")]
    assert resources and all("slurm_partition=all" in r and "slurm_account=p123" in r for r in resources), resources


def test_slurm_profile_values(monkeypatch):
    from snakemake.profiles import ProfileConfigFileParser

    def parse(**env):
        for name in ("SCITASTE_SOFTWARE_DEPLOYMENT", "SCITASTE_GPU_PARTITION", "SCITASTE_SLURM_STATUS_COMMAND"):
            monkeypatch.delenv(name, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with open(ROOT / "profiles/slurm/config.yaml") as f:
            return ProfileConfigFileParser().parse(f)

    default = parse()
    assert default["executor"] == "slurm"
    # conda envs where conda exists; without it (it is needed even for a dry run) the jobs use this python
    assert default.get("software-deployment-method") == ("conda" if shutil.which("conda") else None)
    assert default["slurm-requeue"] == "True" and default["retries"] == "2"
    assert "slurm-status-command" not in default  # the plugin's own choice unless asked
    assert "mem_mb=attempt * 4000" in default["default-resources"]
    assert {"oai_pmh_connection=1", "citation_api_connection=1"} <= set(default["resources"])
    assert {"scijudge_grpo:slurm_partition='gpu'", "scijudge_eval_model:slurm_partition='gpu'"} <= set(
        default["set-resources"])
    custom = parse(SCITASTE_SOFTWARE_DEPLOYMENT="none", SCITASTE_GPU_PARTITION="a100",
                   SCITASTE_SLURM_STATUS_COMMAND="squeue")
    assert "software-deployment-method" not in custom and custom["slurm-status-command"] == "squeue"
    assert "scijudge_grpo:slurm_partition='a100'" in custom["set-resources"]


def test_profile_link_in_repo_root():
    # `snakemake --profile slurm` looks for a directory named slurm in the working directory
    assert (ROOT / "slurm").is_symlink() and (ROOT / "slurm").resolve() == (ROOT / "profiles/slurm").resolve()
