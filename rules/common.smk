# Config validation, paths, and the helpers every rule file uses.

import functools
import json
import os
import re
import shlex
import sys

from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from workflow_scripts.common import manifest
from workflow_scripts.common.config import ConfigError, check_config, snapshot_paths, snapshot_problems, with_defaults
from workflow_scripts.common.config import expand_path
from workflow_scripts.common.redact import secret_var_names
from workflow_scripts.llm.config import endpoint_problems
from workflow_scripts.train import checkpoint_models, hub_model

# friendly messages naming the key and the allowed values first, then Snakemake's own validation filling defaults
check_config(config)
validate(config, "../workflow_scripts/config.schema.yaml", set_default=True)
# snakemake's default filling does not follow $ref; ours does, so the two together leave no key unset
config.update(with_defaults(config))

# `python -m workflow_scripts...` must import the package whatever the working directory of a job is, and, unless
# conda envs are in use, `python` is the interpreter that runs Snakemake (a virtualenv need not be activated)
_conda = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
_path = "" if _conda else f'export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"; '
# the names (never the values) of the variables holding secrets: every step redacts their values from what it prints
_secret_vars = shlex.quote(",".join(secret_var_names(config)))
# one shared HF_HOME for every job when configured: the download rule fills it, training and evaluation read it
_hf_home = config["models"]["hf_home"]
_hf_home = f"export HF_HOME={shlex.quote(expand_path(_hf_home))}; " if _hf_home else ""
shell.prefix(f"set -euo pipefail; {_path}export PYTHONPATH={shlex.quote(workflow.basedir)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; export SCITASTE_SECRET_VARS={_secret_vars}; {_hf_home}")
# training and evaluation jobs never reach the hub: hub-id base models come from the snapshot rule hub_model_download
# put into HF_HOME (models.smk); a constant, so the rules' code does not change with the configured path
HUB_OFFLINE = "export HF_HUB_OFFLINE=1; "
# The priority of the steps on the way to a training job that ask for two threads: with few cores, Snakemake starts
# one-thread jobs while any are ready, so such a step (and the long training chain behind it) would otherwise wait
# until none is left.
FEEDS_TRAINING = 1

# ---- paths: one place for every artifact the rules share
RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
RAW = f"{RESULTS}/raw"  # harvested native-format files (kept across failed jobs: never a declared output)
MANIFESTS = f"{RESULTS}/manifests"  # one per snapshot input, written as the rules are read (see snapshot_input)
INTERIM = f"{RESULTS}/interim/arxiv"
PAPERS = f"{RESULTS}/arxiv/papers.parquet"
CITATIONS = f"{RESULTS}/arxiv/citations.parquet"
DEMO = config["demo"]["out_dir"]
PAIRS_DIR = f"{RESULTS}/scijudge/pairs"
PAIRS = {s: f"{PAIRS_DIR}/{s}.parquet" for s in ("train", "test_id", "test_ood")}
PAIRS_CARD = f"{PAIRS_DIR}/README.md"
PAIRS_AUDIT = f"{PAIRS_DIR}/leakage_audit.json"
TINY_MODEL = f"{RESULTS}/models/tiny-base"
HUB_MARKERS = f"{RESULTS}/models/hub"  # one JSON per hub-id base model: the snapshot the download rule fetched
# training run directories (checkpoints, logs): results/ unless cluster.scratch_dir; the final model, its trainer
# state and curves are always published to results/
RUNS = expand_path(config["cluster"]["scratch_dir"]) if config["cluster"]["scratch_dir"] else RESULTS
SFTW_DIR = f"{RESULTS}/scijudge/sft_warmup"
SFTW_DATA = f"{RESULTS}/scijudge/sft_warmup_data/train.parquet"
GRPO_DIR = f"{RESULTS}/scijudge/grpo"
SJ_EVAL_DIR = f"{RESULTS}/scijudge/eval"
SJ_METRICS = f"{SJ_EVAL_DIR}/metrics.json"
SJ_TEST = [PAIRS["test_id"], PAIRS["test_ood"]]
GRPO_CHECKPOINT_MODELS = f"{GRPO_DIR}/{checkpoint_models.PUBLISHED_DIR}"  # the model of every saved GRPO checkpoint
SJ_CHECKPOINT_PREDICTIONS = f"{SJ_EVAL_DIR}/predictions/checkpoints"  # step-N.parquet: their evaluation
SJ_OOD_EVAL_DIR = f"{SJ_EVAL_DIR}/ood"  # {set}/predictions/{model}.parquet, {set}/metrics.*: the extra OOD test sets

ARXIV = config["arxiv"]
CIT = config["citations"]
SNAPSHOTS = snapshot_paths(config)  # config key -> snapshot file or directory the configured readers read
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


def harvested(path):
    """The native files behind a reader's input: a harvest's `.done.json` stands for its directory, a snapshot's
    manifest for the snapshot (see snapshot_input); any other path is itself."""
    if path.startswith(f"{MANIFESTS}/") and path.endswith(".json"):
        return SNAPSHOTS[path[len(MANIFESTS) + 1 : -len(".json")]]
    return path.removesuffix(".done.json")


def config_value(key):
    """The config value at a dotted key, e.g. arxiv.oai_pmh.snapshot_dir."""
    value = config
    for part in key.split("."):
        value = value[part]
    return value


def produced_here(path):
    """Whether a rule defined so far writes `path` (the demo's rules are included before the readers')."""
    return any(rule.is_producer(path) for rule in workflow.rules)


@functools.cache
def check_snapshots():
    """Every snapshot the readers use exists or is written by a rule. Checked while the rules are read, not in an
    input function: Snakemake drops a failing input function's job where its outputs exist ("Nothing to be done")."""
    problems = snapshot_problems(config, lambda path: produced_here(os.path.normpath(path)))
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def snapshot_input(key):
    """The input standing for the snapshot file or directory at config `key`.

    A snapshot written by a rule of this workflow (the demo's) is used as it is, so that its producer stays in the
    DAG and Snakemake tracks it as that producer's output. Any other snapshot is represented by its manifest
    (workflow_scripts.common.manifest), rewritten here only when a file under the snapshot is added, removed or
    edited: the manifest's mtime, unlike a directory's, moves exactly then, so the rules reading the snapshot rerun
    exactly then. `harvested` maps the manifest back to the snapshot path that the command gets.
    """
    if key not in SNAPSHOTS:  # a reader the config does not use: its rule is not in the DAG
        return config_value(key) or []
    check_snapshots()
    path = os.path.normpath(SNAPSHOTS[key])
    if produced_here(path):
        return path
    manifest_path = f"{MANIFESTS}/{key}.json"
    manifest.update(manifest_path, path)
    return manifest_path


def reader_output(reader):
    return f"{INTERIM}/{reader}.parquet"


def reader_input(reader):
    """What a reader parses: the snapshot directory (see snapshot_input), or the harvest's `.done.json` marker(s)."""
    block = ARXIV[reader]
    if block["mode"] == "snapshot":
        return snapshot_input(f"arxiv.{reader}.snapshot_dir")
    if reader == "oai_pmh":
        return [f"{RAW}/oai_pmh/{s}.done.json" for s in OAI_SETS]
    return [f"{RAW}/arxiv_api.done.json"]


def citation_responses():
    """What the citation table parses: the snapshot directory (see snapshot_input), or the harvest's `.done.json`."""
    if CIT["mode"] == "snapshot":
        return snapshot_input("citations.snapshot_dir")
    return f"{RAW}/citations/{CIT['source']}.done.json"


def dump_input():
    """The metadata dump file: a snapshot (see snapshot_input), or the download rule's output."""
    return snapshot_input("arxiv.dump.path") if ARXIV["dump"]["mode"] == "snapshot" else ARXIV["dump"]["path"]


def model_path(name):
    """A configured base model: "tiny" is the from-scratch demo model this workflow builds."""
    return TINY_MODEL if name == "tiny" else name


def model_input(path):
    """The input standing for a model: one this workflow builds, or the download marker of a hub id (written by
    hub_model_download); an external directory is used as given."""
    if path.startswith(f"{RESULTS}/"):
        return {"model": path}
    if hub_model.is_hub_id(path):
        return {"model": f"{HUB_MARKERS}/{hub_model.slug(path)}.json"}
    return {}


def sj_checkpoint_predictions():
    """Step -> predictions of every GRPO checkpoint model scijudge_grpo published. Until that checkpoint rule has
    run this raises Snakemake's "incomplete checkpoint", and Snakemake asks again once it has."""
    published = checkpoints.scijudge_grpo.get().output.checkpoint_models
    return {s: f"{SJ_CHECKPOINT_PREDICTIONS}/step-{s}.parquet" for s in checkpoint_models.steps(published)}


def ref_judge_input(wildcards):
    """The Refiner judge's block checked, and a vllm judge's model downloaded (its marker records the revision)."""
    return {f"judge_{k}": v for k, v in endpoint_input("judge")(wildcards).items()}


def ref_predictions(wildcards):
    """Every Refiner model's answers (REF_MODELS, refiner_model.smk), and those of every checkpoint refiner_grpo
    published (until it has run, Snakemake's "incomplete checkpoint", and it asks again once it has)."""
    paths = [f"{REF_EVAL_DIR}/predictions/{m}.parquet" for m in REF_MODELS]
    if REF_CURVES:
        published = checkpoints.refiner_grpo.get().output.checkpoint_models
        paths += [f"{REF_CHECKPOINT_PREDICTIONS}/step-{s}.parquet" for s in checkpoint_models.steps(published)]
    return paths


def sj_ood_predictions(oodset):
    """The predictions of every model of the SciJudge table (SJ_LABELS, scijudge_model.smk) on one extra OOD set."""
    return [sj_ood_prediction(oodset, m) for m in SJ_LABELS]


def sj_ood_prediction(oodset, model):
    return f"{SJ_OOD_EVAL_DIR}/{oodset}/predictions/{model}.parquet"


def sj_ood_set(oodset, model):
    """One extra OOD set of a predict call (--also-json): its pairs, its prompt (SJ_OOD_SETS, scijudge_model.smk) and
    the model's predictions file."""
    s = SJ_OOD_SETS[oodset]
    return {"pairs": [s["pairs"]], "out": sj_ood_prediction(oodset, model), "prompt": s["prompt"]}


def run_dir(results_dir):
    """Where a training job keeps its checkpoints: ``results_dir`` itself, or its place under cluster.scratch_dir."""
    return results_dir if RUNS == RESULTS else os.path.join(RUNS, os.path.relpath(results_dir, RESULTS))


def train_env(trainer):
    """The conda env of a training job: the one with vLLM when its trainer generates through vLLM."""
    return "../envs/train-vllm.yaml" if trainer.get("use_vllm") else "../envs/train.yaml"


def launch_args(launch):
    return (
        f"--accelerate-config {launch['accelerate_config']} --nodes {launch['nodes']}"
        f" --gpus-per-node {launch['gpus_per_node']} --main-port {launch['main_port']}"
        f" --vllm-server-gpus {launch['vllm_server_gpus']} --rendezvous-timeout {launch['rendezvous_timeout_s']}"
    )


def slurm_resources(res, nodes=1, gpus_per_node=0, training=False):
    """SLURM-facing resources of a job. GPUs go as a per-node `gres` (the plugin's `gpu` resource becomes
    `--gpus`, a job-wide total); `sbatch --nodes N` gives the one task per node the launcher expects, with no `tasks`
    for a GPU job (the plugin makes it --ntasks-per-gpu) and tasks = N for a CPU job.
    A training job also gets its wall-time margin (a resource, not a param: changing it retrains nothing)."""
    out = {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "cpus_per_task": res["cpus_per_task"]}
    if training:
        out["wall_time_margin_s"] = config["cluster"]["wall_time_margin_s"]
    if nodes > 1:
        out["nodes"] = nodes
        if not gpus_per_node:
            # the plugin gives a job without GPUs `--ntasks=<tasks or 1>`, and sbatch shrinks --nodes to --ntasks
            out["tasks"] = nodes
    if gpus_per_node:
        model = res.get("gpu_model")
        out["gres"] = f"gpu:{model}:{gpus_per_node}" if model else f"gpu:{gpus_per_node}"
    return out


def endpoint_resources(block, res):
    """A step calling an LLM endpoint: a `vllm` one runs its server inside the job, on the job's GPUs."""
    return slurm_resources(res, gpus_per_node=block["vllm"]["gpus"] if block["kind"] == "vllm" else 0)


def endpoint_input(use):
    """The input function of a step calling llm.endpoints.<use>. A vllm endpoint's model is served from the shared hub
    cache, downloaded once on the submitting host like the base models. A block the schema accepts can still be
    unusable (no model for vllm, an unknown stand-in): that stops the run when such a step is in the DAG, naming
    the keys, so that a run of other targets needs no endpoint."""
    block = config["llm"]["endpoints"][use]

    def inputs(wildcards):
        problems = endpoint_problems(use, block)
        if problems:
            raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
        return model_input(block["model"]) if block["kind"] == "vllm" else {}

    return inputs


def endpoint_label(block):
    """How cards and metrics name what answered through an endpoint: a demo endpoint says it is a stand-in."""
    if block["kind"] == "demo":
        return f"demo stand-in {block['demo']['policy']} (not a language model)"
    return f"{block['model']} ({block['kind']})"

OAI_SETS = {slug(s): s for s in ARXIV["oai_pmh"]["sets"]}


wildcard_constraints:
    oai_set="|".join(map(re.escape, OAI_SETS)) or "NONE",
    split="train|test_id|test_ood",
