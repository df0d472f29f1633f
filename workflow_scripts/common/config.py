"""Config validation with messages a user can act on, and schema defaults for code running outside Snakemake.

The Snakefile calls :func:`check_config` before ``snakemake.utils.validate`` (which fills the defaults): jsonschema's
own messages bury the key in a path dump, so every error is restated as "config key a.b.c: what is wrong; allowed:".
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

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
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
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
    return filled


def schema_defaults() -> dict:
    """The production defaults: an empty config with every default filled in."""
    return with_defaults({})


def _semantic_problems(cfg: dict[str, Any]):
    for reader in ("oai_pmh", "api"):
        block = cfg["arxiv"][reader]
        if reader in cfg["arxiv"]["readers"] and block["mode"] == "snapshot" and not block["snapshot_dir"]:
            yield f"config key arxiv.{reader}.snapshot_dir: required when arxiv.{reader}.mode is 'snapshot'"
    if cfg["citations"]["mode"] == "snapshot" and not cfg["citations"]["snapshot_dir"]:
        yield "config key citations.snapshot_dir: required when citations.mode is 'snapshot'"
    ood = cfg["scijudge"]["pairs"]["test_ood"]
    if not ood["lo_quantile"] < ood["hi_quantile"]:
        yield "config key scijudge.pairs.test_ood: lo_quantile must be below hi_quantile"
    lo, hi = ood["ds_quantiles"]
    if not lo < hi:
        yield "config key scijudge.pairs.test_ood.ds_quantiles: the first quantile must be below the second"
    yield from _launch_problems("scijudge.grpo", cfg["scijudge"]["grpo"], cfg["cluster"]["gpus_per_node"])


def _launch_problems(key: str, block: dict, node_gpus: int):
    """GPU counts and GRPO batch arithmetic, checked while the DAG is built: before any job is submitted."""
    launch = block["launch"]
    if launch["gpus_per_node"] > node_gpus:
        yield (
            f"config key {key}.launch.gpus_per_node: {launch['gpus_per_node']} GPUs asked per node, but a node has "
            f"{node_gpus} (cluster.gpus_per_node)"
        )
        return
    from workflow_scripts.train.grpo import BATCH_KEYS, validate_launch

    trainer = block["trainer"]
    if not all(k in trainer for k in BATCH_KEYS[:3]):
        return  # TRL's own defaults apply; the launcher checks them when the job starts
    processes = launch["nodes"] * max(launch["gpus_per_node"], 1)
    if launch["vllm_server_gpus"]:  # a vLLM server takes the last K GPUs of one node, or the whole last node
        processes -= launch["vllm_server_gpus"] if launch["nodes"] == 1 else launch["gpus_per_node"]
    try:
        validate_launch({k: trainer.get(k) for k in BATCH_KEYS}, processes)
    except ValueError as exc:
        yield f"config key {key}.trainer: {exc}"
