# Config validation, paths, and the helpers every rule file uses.

import json
import os
import re
import shlex
import sys

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from workflow_scripts.common.config import check_config, with_defaults

# friendly messages naming the key and the allowed values first, then Snakemake's own validation filling defaults
check_config(config)
validate(config, "../workflow_scripts/config.schema.yaml", set_default=True)
# snakemake's default filling does not follow $ref; ours does, so the two together leave no key unset
config.update(with_defaults(config))

# `python -m workflow_scripts...` must import the package whatever the working directory of a job is, and, unless
# conda envs are in use, `python` is the interpreter that runs Snakemake (a virtualenv need not be activated)
_conda = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
_path = "" if _conda else f'export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"; '
shell.prefix(f"set -euo pipefail; {_path}export PYTHONPATH={shlex.quote(workflow.basedir)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

# ---- paths: one place for every artifact the rules share
RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
RAW = f"{RESULTS}/raw"  # harvested native-format files (kept across failed jobs: never a declared output)
INTERIM = f"{RESULTS}/interim/arxiv"
PAPERS = f"{RESULTS}/arxiv/papers.parquet"
CITATIONS = f"{RESULTS}/arxiv/citations.parquet"
DEMO = config["demo"]["out_dir"]
PAIRS_DIR = f"{RESULTS}/scijudge/pairs"
PAIRS = {s: f"{PAIRS_DIR}/{s}.parquet" for s in ("train", "test_id", "test_ood")}
PAIRS_CARD = f"{PAIRS_DIR}/README.md"
PAIRS_AUDIT = f"{PAIRS_DIR}/leakage_audit.json"
TINY_MODEL = f"{RESULTS}/models/tiny-base"
SFTW_DIR = f"{RESULTS}/scijudge/sft_warmup"
SFTW_DATA = f"{RESULTS}/scijudge/sft_warmup_data/train.parquet"
GRPO_DIR = f"{RESULTS}/scijudge/grpo"
SJ_EVAL_DIR = f"{RESULTS}/scijudge/eval"
SJ_METRICS = f"{SJ_EVAL_DIR}/metrics.json"
SJ_TEST = [PAIRS["test_id"], PAIRS["test_ood"]]

ARXIV = config["arxiv"]
CIT = config["citations"]
SJ = config["scijudge"]


def arg(value):
    """A config value as one shell-quoted JSON argument (params keep the structure, so edits trigger reruns)."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def http_args(block):
    """The polite-HTTP settings of a source as command-line flags."""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(block.items()))


def opt(flag, value):
    """`--flag value` when value is set, else nothing."""
    return "" if value is None else f"{flag} {shlex.quote(str(value))}"


def slug(name):
    """OAI set names contain ':' (physics:hep-th); paths and wildcards use '+' instead."""
    return name.replace(":", "+")


def harvested(done_or_dir):
    """The directory of native files behind a harvest's `.done.json` (a snapshot directory is itself)."""
    return done_or_dir.removesuffix(".done.json")


def reader_output(reader):
    return f"{INTERIM}/{reader}.parquet"


def reader_input(reader):
    """What a reader parses: the snapshot directory, or the harvest's `.done.json` marker(s)."""
    block = ARXIV[reader]
    if block["mode"] == "snapshot":
        return [block["snapshot_dir"]]
    if reader == "oai_pmh":
        return [f"{RAW}/oai_pmh/{s}.done.json" for s in OAI_SETS]
    return [f"{RAW}/arxiv_api.done.json"]


def citation_responses():
    return CIT["snapshot_dir"] if CIT["mode"] == "snapshot" else f"{RAW}/citations/{CIT['source']}.done.json"


def model_path(name):
    """A configured base model: "tiny" is the from-scratch demo model this workflow builds."""
    return TINY_MODEL if name == "tiny" else name


def model_input(path):
    """A model this workflow builds is a rule input; a hub id or an external directory is used as given."""
    return {"model": path} if path.startswith(f"{RESULTS}/") else {}


def launch_args(launch):
    return (
        f"--accelerate-config {launch['accelerate_config']} --nodes {launch['nodes']}"
        f" --gpus-per-node {launch['gpus_per_node']} --main-port {launch['main_port']}"
        f" --vllm-server-gpus {launch['vllm_server_gpus']}"
    )


def slurm_resources(res, nodes=1, gpus_per_node=0):
    """SLURM-facing resources of a job. GPUs go as a per-node `gres` (the plugin's `gpu` resource becomes
    `--gpus`, a job-wide total); no `tasks`: `sbatch --nodes N` gives the one task per node the launcher expects."""
    out = {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "cpus_per_task": res["cpus_per_task"]}
    if nodes > 1:
        out["nodes"] = nodes
    if gpus_per_node:
        model = res.get("gpu_model")
        out["gres"] = f"gpu:{model}:{gpus_per_node}" if model else f"gpu:{gpus_per_node}"
    return out


OAI_SETS = {slug(s): s for s in ARXIV["oai_pmh"]["sets"]}


wildcard_constraints:
    oai_set="|".join(map(re.escape, OAI_SETS)) or "NONE",
    split="train|test_id|test_ood",
