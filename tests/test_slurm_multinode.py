"""Training across two SLURM nodes (the cluster of .ci/slurm_up.sh: each node its own network namespace and host
name). `snakemake --profile ci`, with the executor plugin and its jobstep as users get them, submits the LoRA SFT
warm-up and GRPO with `nodes: 2`; the launcher starts one `accelerate launch` per node and the processes train as
one gloo group. A GRPO job killed after a checkpoint resumes on both nodes when resubmitted. A node that cannot reach
the rendezvous host fails its job within the configured timeout, naming itself and the address."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import slurm_cluster
from tests.workflow_runner import ROOT, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow
PROFILE = str(ROOT / "profiles/ci")
ACCELERATE = "workflow_scripts/train/accelerate/cpu_multinode.yaml"
TWO_NODES = {"accelerate_config": ACCELERATE, "nodes": 2, "gpus_per_node": 0, "rendezvous_timeout_s": 120}
# per node: both of its (shared) CPUs, 3 GB
PER_NODE = {"mem_mb": 3000, "runtime": 20, "cpus_per_task": 2}
GRPO_STEPS, GRPO_SAVE = 8, 2  # the kill comes after the first checkpoint: six steps (~10 s) before the run ends
OVERRIDES = {
    "scijudge": {
        "sft_warmup": {
            "max_pairs": 64, "launch": TWO_NODES, "resources": PER_NODE,
            # LoRA, merged into final/, which GRPO then starts from
            "trainer": {"max_steps": 3, "use_peft": True, "lora_r": 8, "lora_alpha": 16,
                        "lora_target_modules": ["q_proj", "v_proj"], "merge_and_save": True, "merge_dtype": "float32"},
        },
        "grpo": {
            "launch": TWO_NODES, "resources": PER_NODE,
            "trainer": {"max_steps": GRPO_STEPS, "save_steps": GRPO_SAVE, "gradient_accumulation_steps": 1,
                        "max_completion_length": 16},
        },
    },
}
RUNS = {"sft": "results/scijudge/sft_warmup", "grpo": "results/scijudge/grpo"}


def rank_events(run_dir: Path) -> list[dict]:
    """Every rank's events (workflow_scripts.train.common.log_rank_event), in the order each rank wrote them."""
    return [json.loads(line) for log in sorted((run_dir / "ranks").glob("rank-*.log"))
            for line in log.read_text().splitlines()]


def slurm_jobs_of(workdir: Path) -> dict[str, dict]:
    """This workflow's started SLURM jobs still in squeue, by job id, with their rule: the executor has each write
    its output to .snakemake/slurm_logs/rule_<name>/<job id>.log of the workflow's directory."""
    by_id = {job["id"]: job for job in slurm_cluster.jobs()}
    return {log.stem: {**by_id[log.stem], "rule": log.parent.name.removeprefix("rule_")}
            for log in (workdir / ".snakemake/slurm_logs").glob("rule_*/*.log") if log.stem in by_id}


def test_grpo_and_lora_sft_across_two_nodes_resume_after_a_kill(tmp_path):
    hosts = slurm_cluster.require(min_nodes=2)[:2]
    write_config(tmp_path, **OVERRIDES)
    # the data and the tiny base model locally: what goes through SLURM is the two training jobs
    snakemake(tmp_path, "--cores", "2", "pairs", "audit", "scijudge_sft_data", "tiny_base_model")
    plan = snakemake(tmp_path, "-n", "--profile", PROFILE, "scijudge_model")
    assert planned_jobs(plan) == {"scijudge_sft_warmup": 1, "scijudge_grpo": 1, "scijudge_model": 1}, plan.stdout
    grpo_dir = tmp_path / RUNS["grpo"]

    # 1. SFT, then GRPO, which is cancelled once a checkpoint is complete (as a preempted or failed job ends)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(snakemake, tmp_path, "--profile", PROFILE, "scijudge_model", check=False, timeout=1200)
        deadline = time.monotonic() + 900
        while not any(grpo_dir.glob("checkpoint-*/trainer_state.json")):
            assert not first.done(), f"Snakemake ended before GRPO saved a checkpoint:\n{first.result().stderr[-5000:]}"
            assert time.monotonic() < deadline, "no GRPO checkpoint within 15 minutes"
            time.sleep(0.2)
        jobs = slurm_jobs_of(tmp_path)
        running = [j for j in jobs.values() if j["rule"] == "scijudge_grpo" and j["state"] == "RUNNING"]
        assert len(running) == 1, jobs
        subprocess.run(["scancel", running[0]["id"]], check=True, timeout=30)
        interrupted = first.result()
    assert interrupted.returncode != 0
    jobs = slurm_jobs_of(tmp_path)  # read now: squeue forgets finished jobs after MinJobAge=600 s
    assert not (grpo_dir / "final").exists(), "the cancel came after the end of training: no resume to test"

    # 2. resubmitted: GRPO resumes from its last checkpoint, on both nodes
    snakemake(tmp_path, "--profile", PROFILE, "scijudge_model", timeout=1200)
    state = json.loads((grpo_dir / "trainer_state.json").read_text())
    assert state["global_step"] == GRPO_STEPS
    assert [e["step"] for e in state["log_history"] if "loss" in e] == list(range(1, GRPO_STEPS + 1))

    # every training job had two nodes, and both nodes' launches wrote to the rule's log (srun --label: "0: ", "1: ")
    jobs.update(slurm_jobs_of(tmp_path))
    assert sorted((j["rule"], j["state"], j["nodes"]) for j in jobs.values()) == [
        ("scijudge_grpo", "CANCELLED", "2"), ("scijudge_grpo", "COMPLETED", "2"),
        ("scijudge_sft_warmup", "COMPLETED", "2")], jobs
    grpo_log = (tmp_path / "results/logs/scijudge_grpo.log").read_text()
    assert {"0", "1"} <= {line.split(":", 1)[0] for line in grpo_log.splitlines() if line[:1].isdigit()}

    for name, run in RUNS.items():
        events = rank_events(tmp_path / run)
        starts = [e for e in events if e["event"] == "start"]
        trained = [e for e in events if e["event"] == "trained"]
        # one process per node, one process group of two: ranks 0 and 1 on the two hosts
        assert {e["world_size"] for e in events} == {2}, events
        assert sorted((e["rank"], e["local_rank"]) for e in trained) == [(0, 0), (1, 0)], events
        assert sorted(e["host"] for e in trained) == hosts, events
        # both ranks' gradients went into one optimizer: identical weights on every rank
        assert len({e["trainable_sha256"] for e in trained}) == 1, trained
        if name == "sft":
            assert [e["resume_from"] for e in starts] == [None, None]
            continue
        # GRPO started on both nodes, was killed, and both nodes resumed from the same checkpoint
        first_starts, resumed = starts[::2], starts[1::2]  # each rank's log: the first run's start, the second's
        assert [e["resume_from"] for e in first_starts] == [None, None], starts
        assert sorted(e["host"] for e in first_starts) == hosts, starts
        resumed_from = {e["resume_from"] for e in resumed}
        assert len(resumed_from) == 1 and sorted(e["host"] for e in resumed) == hosts, starts
        step = int(resumed_from.pop().removeprefix("checkpoint-"))
        assert step % GRPO_SAVE == 0 and 0 < step < GRPO_STEPS
        assert {e["global_step"] for e in trained} == {GRPO_STEPS}


# ---------------------------------------------------------------------------------------------- bad input
UNREACHABLE_PORT = 29517


def netns(node: str, *command: str) -> subprocess.CompletedProcess:
    """A command in a node's network namespace (.ci/cluster.sh names each after its node)."""
    return subprocess.run(["nsenter", f"--net=/var/run/netns/{node}", *command], capture_output=True, text=True,
                          timeout=30)


def test_node_that_cannot_reach_the_rendezvous_fails_the_job_in_time(tmp_path):
    first, second = slurm_cluster.require(min_nodes=2)[:2]
    if os.geteuid() != 0 or not Path(f"/var/run/netns/{second}").exists():
        pytest.skip(f"cutting {second}'s route needs root and the node namespaces of .ci/slurm_up.sh")
    address = subprocess.run(["getent", "hosts", first], capture_output=True, text=True, check=True).stdout.split()[0]
    # the second node loses its route to the rendezvous port of the first, and to nothing else (SLURM's own traffic
    # between the two still flows), as behind a firewall
    rule = ["to", f"{address}/32", "ipproto", "tcp", "dport", str(UNREACHABLE_PORT), "blackhole"]
    added = netns(second, "ip", "rule", "add", *rule)
    if added.returncode != 0:
        pytest.fail(f"cannot cut {second} off {address}:{UNREACHABLE_PORT}: {added.stderr.strip()}")
    try:
        launch = [sys.executable, "-m", "workflow_scripts.train.launch", "--accelerate-config", ACCELERATE,
                  "--nodes", "2", "--gpus-per-node", "0", "--main-port", str(UNREACHABLE_PORT),
                  "--rendezvous-timeout", "15", "--", str(tmp_path / "never_started.py")]
        output = tmp_path / "job.log"
        job_id = subprocess.run(
            ["sbatch", "--parsable", "--nodes=2", "--ntasks=2", "--cpus-per-task=1", "--mem=1000", "--time=5",
             f"--output={output}", f"--chdir={tmp_path}", f"--export=ALL,PYTHONPATH={ROOT}",
             "--wrap", shlex.join(launch)],
            capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        submitted = time.monotonic()
        # startup (~20 s on 2 shared cores) + the 15 s timeout, far below the 5-minute wall time
        while (job := next(j for j in slurm_cluster.jobs() if j["id"] == job_id))["state"] in ("PENDING", "RUNNING", "COMPLETING"):
            assert time.monotonic() - submitted < 150, f"job {job_id} still {job['state']} after 150 s"
            time.sleep(1)
    finally:
        netns(second, "ip", "rule", "del", *rule)
    log = output.read_text()
    assert job["state"] == "FAILED", (job, log[-3000:])
    named = (f"1: launch: node {second} (machine rank 1 of 2) exited with status 1; rendezvous host "
             f"{first}:{UNREACHABLE_PORT}, timeout 15 s")
    assert named in log.splitlines(), log[-3000:]
