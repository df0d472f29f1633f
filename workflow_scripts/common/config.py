"""Config validation with messages a user can act on, and schema defaults for code running outside Snakemake.

The Snakefile calls :func:`check_config` before ``snakemake.utils.validate`` (which fills the defaults): jsonschema's
own messages bury the key in a path dump, so every error is restated as "config key a.b.c: what is wrong; allowed:".
Whether a snapshot path exists depends on the rules (the demo writes its own snapshots), so that check,
:func:`snapshot_problems`, runs once the rules are known (rules/common.smk).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml

from workflow_scripts.datasets.scijudge_prompt import fill_prompt_texts

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        ref = schema["$ref"]
        node = root
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _describe(err: jsonschema.ValidationError, root: dict) -> str:
    key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    schema = _resolve(err.schema, root) if isinstance(err.schema, dict) else {}
    if err.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed))
        return f"config key {key}: unknown key(s) {extra}; allowed keys: {allowed}"
    if err.validator == "enum":
        return f"config key {key}: {err.instance!r} is not allowed; allowed values: {err.validator_value}"
    if err.validator == "type":
        return f"config key {key}: {err.instance!r} has the wrong type; expected {err.validator_value}"
    if err.validator == "format" and err.validator_value == "date":
        return f"config key {key}: {err.instance!r} is not a calendar date (YYYY-MM-DD)"
    if err.validator == "oneOf":
        return f"config key {key}: {err.instance!r} must match exactly one of the documented forms: {err.message}"
    return f"config key {key}: {err.message}"


def _filling_validator(root: dict):
    """The jsonschema recipe for filling defaults; ``$ref`` resolved against ``root`` so referenced defaults count."""
    cls = jsonschema.Draft202012Validator
    validate_props = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                sub = _resolve(sub, root)
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})(root)


def check_config(config: dict, schema: dict | None = None) -> None:
    """Raise ConfigError listing every schema violation by key, then the cross-key rules the schema cannot say."""
    schema = schema or load_schema()
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_describe(e, schema) for e in errors))
    filled = with_defaults(config, schema)
    problems = list(_semantic_problems(filled))
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def with_defaults(config: dict, schema: dict | None = None) -> dict:
    schema = schema or load_schema()
    filled = copy.deepcopy(config)
    _filling_validator(schema).validate(filled)
    # a default that depends on another key (the prompt variant), which a schema default cannot express
    fill_prompt_texts(filled["scijudge"])
    return filled


def schema_defaults() -> dict:
    """The production defaults: an empty config with every default filled in."""
    return with_defaults({})


def _snapshot_keys(cfg: dict[str, Any]) -> dict[str, str | None]:
    """The snapshot inputs the configured readers use: config key -> path (None where unset)."""
    arxiv, cit = cfg["arxiv"], cfg["citations"]
    keys = {}
    for reader in arxiv["readers"]:
        if arxiv[reader]["mode"] == "snapshot":
            name = "path" if reader == "dump" else "snapshot_dir"
            keys[f"arxiv.{reader}.{name}"] = arxiv[reader][name]
    if cit["mode"] == "snapshot":
        keys["citations.snapshot_dir"] = cit["snapshot_dir"]
    return keys


def snapshot_paths(cfg: dict[str, Any]) -> dict[str, str]:
    """Config key -> path of every snapshot file or directory the configured readers read."""
    return {key: path for key, path in _snapshot_keys(cfg).items() if path}


def snapshot_problems(cfg: dict[str, Any], produced: Callable[[str], bool]) -> list[str]:
    """Snapshot paths that do not exist and that no rule of the workflow writes (``produced(path)``)."""
    return [
        f"config key {key}: {path} does not exist, and no rule of this workflow writes it"
        for key, path in snapshot_paths(cfg).items()
        if not os.path.exists(path) and not produced(path)
    ]


def _semantic_problems(cfg: dict[str, Any]):
    for key, path in _snapshot_keys(cfg).items():
        if not path:
            yield f"config key {key}: required when {key.rsplit('.', 1)[0]}.mode is 'snapshot'"
    yield from _date_order_problems(cfg)
    yield from _cutoff_problems(cfg)
    ood = cfg["scijudge"]["pairs"]["test_ood"]
    if not ood["lo_quantile"] < ood["hi_quantile"]:
        yield "config key scijudge.pairs.test_ood: lo_quantile must be below hi_quantile"
    lo, hi = ood["ds_quantiles"]
    if not lo < hi:
        yield "config key scijudge.pairs.test_ood.ds_quantiles: the first quantile must be below the second"
    unknown = sorted(set(cfg["scijudge"]["pairs"]["train_fields"] or ()) - set(cfg["fields"]))
    if unknown:
        yield (f"config key scijudge.pairs.train_fields: {unknown} not among the configured fields "
               f"{sorted(cfg['fields'])}")
    yield from _job_size_problems(cfg)
    yield from _trainer_problems(cfg)


def _date_order_problems(cfg: dict[str, Any]):
    """Every date window ends on or after its start (the schema has already checked each date is a real one)."""
    demo, oai = cfg["demo"], cfg["arxiv"]["oai_pmh"]
    windows = [("demo.start_date", demo["start_date"], "demo.end_date", demo["end_date"]),
               ("arxiv.oai_pmh.from_date", oai["from_date"], "arxiv.oai_pmh.until_date", oai["until_date"])]
    for i, query in enumerate(cfg["arxiv"]["api"]["queries"]):
        key = f"arxiv.api.queries.{i}"
        windows.append((f"{key}.from_date", query.get("from_date"), f"{key}.until_date", query.get("until_date")))
    for start_key, start, end_key, end in windows:
        if start and end and end < start:  # ISO dates order as strings
            yield f"config key {end_key}: {end} is before {start_key} {start}"


def _published_range(cfg: dict[str, Any]) -> tuple[tuple[str, str] | None, tuple[str, str]]:
    """The first-version dates papers can have, as (date, where the bound comes from); None where unbounded."""
    last = (dt.date.today().isoformat(), "today's date")
    if cfg["demo"]["enabled"]:
        return (cfg["demo"]["start_date"], "demo.start_date"), min((cfg["demo"]["end_date"], "demo.end_date"), last)
    oai = cfg["arxiv"]["oai_pmh"]
    # an OAI-PMH datestamp is a record's last change, never before its first version: until_date bounds first
    # versions from above, while from_date bounds nothing (a 2010 paper revised last week is harvested)
    if cfg["arxiv"]["readers"] == ["oai_pmh"] and oai["mode"] == "harvest" and oai["until_date"]:
        last = min((oai["until_date"], "arxiv.oai_pmh.until_date"), last)
    return None, last


def _cutoff_problems(cfg: dict[str, Any]):
    """Train pairs and the in-domain test come from papers first published up to the cutoff year, the temporal OOD
    test from papers after it and up to until_date (and the prompt's "today"): both periods must hold papers, or a
    split is empty and training or evaluation fails hours later."""
    pairs = cfg["scijudge"]["pairs"]
    cutoff = pairs["cutoff_year"]
    first, last = _published_range(cfg)
    last = min(last, (pairs["until_date"], "scijudge.pairs.until_date"), (cfg["scijudge"]["today"], "scijudge.today"))
    key = f"config key scijudge.pairs.cutoff_year: {cutoff} leaves"
    if first and cutoff < int(first[0][:4]):
        yield (f"{key} the train and in-domain test splits (train, test_id) empty: they come from papers first "
               f"published up to {cutoff}, and the papers start on {first[0]} ({first[1]})")
    if cutoff >= int(last[0][:4]):
        yield (f"{key} the temporal OOD test split (test_ood) empty: it comes from papers first published after "
               f"{cutoff}, and the papers end by {last[0]} ({last[1]})")


# every training block of every line -> its entry point (workflow_scripts.train.<entry>)
TRAINER_BLOCKS = {"scijudge.sft_warmup": "sft", "scijudge.grpo": "grpo", "reviewer.sft": "sft", "bioreview.sft": "sft",
                  "refiner.sft": "sft", "refiner.grpo": "grpo"}


def _trainer_problems(cfg: dict[str, Any]):
    """Trainer keys against TRL's dataclasses, with their full key path, before any job is submitted."""
    try:
        from workflow_scripts.train.config import block_problems

        for key, entry in TRAINER_BLOCKS.items():
            line, _, stage = key.partition(".")
            if line in cfg:
                yield from block_problems(f"{key}.trainer", cfg[line][stage]["trainer"], entry)
    except ImportError as exc:  # Snakemake may run where the training environment is not installed
        log.warning("trainer keys not checked before submission (%s): each training job checks them at its start", exc)


def _job_size_problems(cfg: dict[str, Any]):
    """Every GPU job against the cluster, and each training launch's own arithmetic."""
    sj, cluster = cfg["scijudge"], cfg["cluster"]
    base = None if sj["base_model"] == "tiny" else sj["base_model"]  # the warm-up keeps the base's architecture
    if sj["sft_warmup"]["enabled"]:
        yield from _launch_problems("scijudge.sft_warmup", sj["sft_warmup"], cluster, None, grpo=False)
    yield from _launch_problems("scijudge.grpo", sj["grpo"], cluster, base, grpo=True,
                                hub_cache=configured_hub_cache(cfg))
    gpus = sj["eval"]["resources"].get("gpus", 0)
    if gpus > cluster["gpus_per_node"]:
        yield (f"config key scijudge.eval.resources.gpus: {gpus} GPUs asked, but a node has {cluster['gpus_per_node']} "
               "(cluster.gpus_per_node)")
    yield from _refiner_problems(cfg)


def served_llm_gpus(block: dict) -> int:
    """GPUs a job sets aside for an LLM endpoint it serves itself (a vllm endpoint's server)."""
    return block["vllm"]["gpus"] if block["kind"] == "vllm" else 0


def _refiner_problems(cfg: dict[str, Any]):
    """The Refiner's training jobs (the GRPO job's judge GPUs counted) and the keys its rules set themselves."""
    ref, cluster = cfg["refiner"], cfg["cluster"]
    policy = None if ref["policy_model"] == "tiny" else ref["policy_model"]
    judge_gpus = served_llm_gpus(cfg["llm"]["endpoints"]["judge"])
    if ref["sft"]["enabled"]:
        yield from _launch_problems("refiner.sft", ref["sft"], cluster, None, grpo=False)
        if "max_length" in ref["sft"]["trainer"]:
            yield ("config key refiner.sft.trainer.max_length: set refiner.sft_data.max_length instead (the SFT rows "
                   "are built to it, and the trainer gets the same)")
        tasks = ref["tasks"]
        dataset = tasks["dataset"]
        if tasks["source"] == "dataset" and dataset["columns"]["reference"] is None and not dataset["ask_references"]:
            yield ("config key refiner.sft.enabled: the SFT stage needs reference refinements, but the dataset's are "
                   "not mapped (refiner.tasks.dataset.columns.reference) nor asked of the writer "
                   "(refiner.tasks.dataset.ask_references): map or ask them, or set refiner.sft.enabled: false (GRPO "
                   "then starts from refiner.policy_model)")
    if "reward_options" in ref["grpo"]["trainer"]:
        yield ("config key refiner.grpo.trainer.reward_options: set by the rule from llm.endpoints.judge, "
               "llm.cache_dir and refiner.reward / judge / static_rubrics; configure those instead")
    yield from _launch_problems("refiner.grpo", ref["grpo"], cluster, policy, grpo=True,
                                hub_cache=configured_hub_cache(cfg), llm_gpus=judge_gpus)
    for key, served in (("resources", 0), ("score_resources", judge_gpus)):  # the scoring job serves the judge
        gpus = ref["eval"][key].get("gpus", 0) + served
        if gpus > cluster["gpus_per_node"]:
            yield (f"config key refiner.eval.{key}: {gpus} GPUs asked (the judge's included), but a node has "
                   f"{cluster['gpus_per_node']} (cluster.gpus_per_node)")


def configured_hub_cache(cfg: dict[str, Any]) -> str | None:
    """The hub cache under the configured HF_HOME (models.hf_home, with $VARS and ~ expanded); None = the default."""
    home = cfg["models"]["hf_home"]
    return os.path.join(expand_path(home), "hub") if home else None


def expand_path(path: str) -> str:
    """A configured path with $VARS and ~ expanded, absolute (jobs may run in another working directory)."""
    return os.path.abspath(os.path.expanduser(os.path.expandvars(path)))


def _launch_problems(key: str, block: dict, cluster: dict, model: str | None, grpo: bool,
                     hub_cache: str | None = None, llm_gpus: int = 0):
    """GPU counts, the wall-time margin, the vLLM layout and the GRPO batch arithmetic of one training job, checked
    while the DAG is built: before any job is submitted. Each message shows the arithmetic that failed.
    ``llm_gpus``: GPUs the job adds for an LLM endpoint its launcher serves (the Refiner's judge)."""
    from workflow_scripts.train import vllm_config

    launch, trainer, runtime = block["launch"], block["trainer"], block["resources"]["runtime"]
    nodes, gpus, server_gpus = launch["nodes"], launch["gpus_per_node"], launch["vllm_server_gpus"]
    if gpus + llm_gpus > cluster["gpus_per_node"]:
        served = f" + {llm_gpus} for the served LLM endpoint" if llm_gpus else ""
        yield (f"config key {key}.launch.gpus_per_node: {gpus}{served} GPUs asked per node, but a node has "
               f"{cluster['gpus_per_node']} (cluster.gpus_per_node)")
        return
    if llm_gpus and nodes > 1:
        yield (f"config key {key}.launch.nodes: {nodes} nodes, but the launcher serves an LLM endpoint ({llm_gpus} "
               "GPUs) only beside a one-node trainer: use one node, or run the server yourself as an external endpoint")
        return
    margin = cluster["wall_time_margin_s"]
    if margin >= runtime * 60:
        yield (f"config key cluster.wall_time_margin_s: {margin} s before the time limit leaves no training time in "
               f"{key}.resources.runtime {runtime} min = {runtime * 60} s")
    processes, server_tp = nodes * max(gpus, 1), None
    layout = f"{nodes} node(s) x {max(gpus, 1)} process(es) = {processes} training processes"
    server_mode = bool(trainer.get("use_vllm")) and trainer.get("vllm_mode") == "server"
    if server_gpus:
        if not server_mode:
            yield (f"config key {key}.launch.vllm_server_gpus: {server_gpus} GPUs for a vLLM server, but the trainer "
                   "is not in vLLM server mode (use_vllm: true, vllm_mode: server)")
            return
        try:
            _, processes, server_tp = vllm_config.server_layout(nodes, gpus, server_gpus)
        except ValueError as exc:
            yield f"config key {key}.launch.vllm_server_gpus: {exc}"
            return
        layout = f"{nodes} node(s) x {gpus} GPUs less the vLLM server's {server_gpus} = {processes} training processes"
    elif server_mode and not trainer.get("vllm_server_base_url"):
        yield (f"config key {key}.launch.vllm_server_gpus: the trainer asks for vllm_mode server, but no server is "
               "started (vllm_server_gpus 0) and none is named (vllm_server_base_url)")
    if trainer.get("use_vllm") and trainer.get("vllm_max_model_length") is None:
        yield (f"config key {key}.trainer.vllm_max_model_length: use_vllm needs it (the prompt budget + "
               "max_completion_length): without it vLLM sizes its cache for the model's whole context")
    for problem in vllm_config.problems(trainer, processes=processes, gpus_per_node=gpus, server_tp=server_tp,
                                        model_config=vllm_config.model_config(model, hub_cache)):
        yield f"config key {key}.trainer: {problem} ({layout})"
    if grpo:
        yield from _batch_problems(key, trainer, processes, layout)


def _batch_problems(key: str, trainer: dict, processes: int, layout: str):
    from workflow_scripts.train.grpo import BATCH_KEYS, validate_launch

    if not all(k in trainer for k in BATCH_KEYS[:3]):
        return  # TRL's own defaults apply; the launcher checks them when the job starts
    try:
        validate_launch({k: trainer.get(k) for k in BATCH_KEYS}, processes)
    except ValueError as exc:
        yield f"config key {key}.trainer: {exc} ({layout})"
