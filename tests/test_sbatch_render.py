"""The production DAG as SLURM would receive it: `snakemake -n --profile slurm --configfile config.production.yaml`
from the repository root, each job's sbatch call built by the executor plugin's own code (tests/sbatch_render.py),
without a cluster. Checked per GPU rule against the config: partition, nodes, gres per node, CPUs, memory, time,
requeue; and the wiring around them: hub models downloaded by a localrule, jobs offline, run directories on scratch."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from tests.workflow_runner import ROOT, merge
from workflow_scripts.common.config import with_defaults

GPU_RULES = ("scijudge_sft_warmup", "scijudge_grpo", "scijudge_eval_model", "reviewer_sft", "reviewer_predict",
             "reviewer_teacher", "reviewer_teacher_predict")
MARKER = "results/models/hub/Qwen--Qwen3-4B-Instruct-2507.json"


def render(workdir, config: dict, *targets: str) -> list[dict]:
    """The jobs of a dry run under --profile slurm (typed in the repository root, as the README says)."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    out = workdir / "jobs.jsonl"
    cmd = [sys.executable, "-m", "tests.sbatch_render", str(out), "-n", *targets, "--profile", "slurm",
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")]
    env = dict(os.environ, PYTHONPATH=str(ROOT), SCITASTE_SOFTWARE_DEPLOYMENT="none", SCITASTE_SLURM_PARTITION="cpu",
               SCITASTE_GPU_PARTITION="h100")
    env.pop("SCITASTE_SLURM_ACCOUNT", None)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return [json.loads(line) for line in out.read_text().splitlines()]


def options(sbatch: str) -> dict[str, str | bool]:
    """sbatch's options as {flag: value} ('--nodes=8', '-t 2880' and '--requeue' alike)."""
    words, opts = shlex.split(sbatch)[1:], {}
    i = 0
    while i < len(words):
        flag, eq, value = words[i].partition("=")
        if eq:
            opts[flag] = value
        elif i + 1 < len(words) and not words[i + 1].startswith("-"):
            opts[flag], i = words[i + 1], i + 1
        else:
            opts[flag] = True
        i += 1
    return opts


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """config.production.yaml with the SFT warm-up on (so every GPU rule is in the DAG) and a scratch directory."""
    workdir = tmp_path_factory.mktemp("production")
    config = merge(yaml.safe_load((ROOT / "config.production.yaml").read_text()),
                   {"scijudge": {"sft_warmup": {"enabled": True}},
                    "cluster": {"scratch_dir": str(workdir / "scratch")}})
    return with_defaults(config), render(workdir, config)


def test_every_gpu_job_as_sbatch_gets_it_from_the_config(production):
    config, jobs = production
    sj = config["scijudge"]
    expected = {  # rule -> (nodes, gres per node, cpus, mem_mb, minutes)
        "scijudge_sft_warmup": (1, "gpu:8", 32, 480000, 240),
        "scijudge_grpo": (sj["grpo"]["launch"]["nodes"], f"gpu:{sj['grpo']['launch']['gpus_per_node']}",
                          sj["grpo"]["resources"]["cpus_per_task"], sj["grpo"]["resources"]["mem_mb"],
                          sj["grpo"]["resources"]["runtime"]),
        "scijudge_eval_model": (1, "gpu:1", 8, 64000, 720),  # the main test pairs and the OOD sets
        # the card's LoRA on one GPU; its benchmark on one GPU per model; the teacher's vLLM server on the
        # endpoint's GPUs (llm.endpoints.teacher.vllm.gpus), inside the jobs that ask it
        "reviewer_sft": (1, "gpu:1", 8, 64000, 360),
        "reviewer_predict": (1, "gpu:1", 8, 32000, 120),
        "reviewer_teacher": (1, "gpu:8", 4, 16000, 24 * 60),
        "reviewer_teacher_predict": (1, "gpu:8", 4, 16000, 12 * 60),
    }
    assert expected["scijudge_grpo"] == (8, "gpu:8", 32, 480000, 2880)  # the reference run, 8 x 8 GPUs
    seen = set()
    for job in jobs:
        if job["rule"] not in GPU_RULES:
            continue
        seen.add(job["rule"])
        opts = options(job["sbatch"])
        nodes, gres, cpus, mem, minutes = expected[job["rule"]]
        assert opts["-p"] == "h100", job
        assert int(opts.get("--nodes", 1)) == nodes, job
        assert opts["--gres"] == gres and opts["--cpus-per-task"] == str(cpus), job
        assert opts["--mem"] == str(mem) and opts["-t"] == str(minutes), job
        assert opts["--requeue"] is True, job
        # no sbatch --signal: it would kill the plugin's batch shell; the launcher keeps the deadline itself
        assert "--signal" not in opts and not any(k.startswith("--signal") for k in opts), job
    assert seen == set(GPU_RULES)


def test_gpu_jobs_and_only_those_go_to_the_gpu_partition(production):
    _, jobs = production
    for job in jobs:
        if job["sbatch"] is None:
            continue
        opts = options(job["sbatch"])
        assert opts["-p"] == ("h100" if "--gres" in opts else "cpu"), job


def test_training_jobs_get_the_wall_time_margin_and_a_scratch_run_dir(production):
    config, jobs = production
    scratch = config["cluster"]["scratch_dir"]
    for job in jobs:
        if job["rule"] not in ("scijudge_sft_warmup", "scijudge_grpo"):
            continue
        launcher, trainer = job["shell"].split(" -- ", 1)
        assert "--wall-time-margin 600" in launcher, job["shell"]
        run = job["rule"].removeprefix("scijudge_")
        assert f"--output-dir {scratch}/scijudge/{run} --publish-dir results/scijudge/{run}" in trainer


def test_hub_models_come_from_a_local_download_and_jobs_run_offline(production):
    _, jobs = production
    by_rule = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    downloads = {re.search(r"--repo (\S+)", j["shell"]).group(1): j for j in by_rule["hub_model_download"]}
    # the lines' base models, the Reviewer's teacher (the Refiner's writer too) and the Refiner's judge, which vLLM
    # serves inside the jobs from the same cache
    assert set(downloads) == {"Qwen/Qwen3-4B-Instruct-2507", "google/gemma-4-E4B-it", "Qwen/Qwen3.5-9B",
                              "Qwen/Qwen3-235B-A22B-Instruct-2507", "Qwen/Qwen3.5-35B-A3B"}
    for download in downloads.values():
        assert download["local"] and download["sbatch"] is None  # on the submitting host: compute nodes lack internet
        assert download["shell"].startswith("HF_HUB_OFFLINE=0 python -m workflow_scripts.train.hub_model download")
    base_users = [j for j in jobs if "--model Qwen/Qwen3-4B-Instruct-2507 " in j["shell"]]
    assert {j["rule"] for j in base_users} == {"scijudge_sft_warmup", "scijudge_eval_model", "refiner_sft_data",
                                               "refiner_sft", "refiner_eval_predict"}
    for job in base_users:
        assert MARKER in job["input"], job
    for rule in GPU_RULES:
        assert all(j["shell"].startswith("export HF_HUB_OFFLINE=1; ") for j in by_rule[rule]), rule


def test_the_demo_builds_its_model_and_downloads_nothing(tmp_path):
    jobs = render(tmp_path, yaml.safe_load((ROOT / "config.yaml").read_text()), "scijudge_model")
    rules = {j["rule"] for j in jobs}
    assert "tiny_base_model" in rules and "hub_model_download" not in rules
