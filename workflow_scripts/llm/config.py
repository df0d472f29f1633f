"""An endpoint block of config (``llm.endpoints.<use>``), validated against the schema and with its defaults filled.

Snakemake hands a step the block as JSON (names of secret variables only, never values); a step run by hand gets
the same validation and defaults from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import jsonschema

from workflow_scripts.common.config import ConfigError, load_schema, with_defaults
from workflow_scripts.common.redact import SECRET_VARS_ENV, active_var_names
from workflow_scripts.llm.stand_in import StandIn, load, model_id


@dataclass(frozen=True)
class Endpoint:
    use: str
    block: Mapping[str, Any]  # the whole validated block, defaults filled

    def __getattr__(self, name: str) -> Any:  # kind, base_url, limits, budget, vllm, demo, ... as in config
        if name == "block" or name.startswith("__"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        try:
            return self.block[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def stand_in(self) -> StandIn | None:
        return load(self.block["demo"]["policy"]) if self.kind == "demo" else None

    @property
    def model(self) -> str:
        """The model name of every request: a demo endpoint's names its stand-in and the stand-in's version."""
        return model_id(self.stand_in) if self.kind == "demo" else self.block["model"]

    @property
    def label(self) -> str:
        """How errors and logs name the endpoint: never with its key."""
        where = f" {self.base_url}" if self.kind == "external" else ""
        return f"LLM endpoint {self.use} ({self.kind}{where}, model {self.model})"

    def api_key(self) -> str | None:
        """The key of an external endpoint, from its variable; the pipeline's own servers need none."""
        return (os.environ.get(self.api_key_env) or None) if self.kind == "external" else None


def endpoint(use: str, block: Mapping[str, Any] | None) -> Endpoint:
    """The endpoint of ``llm.endpoints.<use>``; ConfigError naming every wrong key."""
    config = {"llm": {"endpoints": {use: dict(block or {})}}}
    schema = load_schema()
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    problems = [f"config key {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    if not problems:
        filled = with_defaults(config, schema)["llm"]["endpoints"][use]
        problems = endpoint_problems(use, filled)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    register_secret_name(filled["api_key_env"])
    return Endpoint(use, filled)


def endpoint_problems(use: str, block: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say about a filled block; for the rules of a line to check at DAG time too."""
    key = f"config key llm.endpoints.{use}"
    kind, problems = block["kind"], []
    if kind in ("external", "vllm") and not block["model"]:
        problems.append(f"{key}.model: required when kind is {kind!r}")
    if kind == "external" and not block["base_url"]:
        problems.append(f"{key}.base_url: required when kind is 'external'")
    vllm = block["vllm"]
    if kind == "vllm" and (vllm["tensor_parallel_size"] or 0) > vllm["gpus"]:
        problems.append(f"{key}.vllm.tensor_parallel_size: {vllm['tensor_parallel_size']} is more than the "
                        f"{vllm['gpus']} GPU(s) of vllm.gpus")
    if kind == "demo":
        try:
            load(block["demo"]["policy"])
        except (ValueError, ImportError, AttributeError) as exc:
            problems.append(f"{key}.demo.policy: {exc}")
    return problems


def register_secret_name(name: str) -> None:
    """Add a key variable's name to those this process redacts: a block given by hand may name a variable that no
    schema default does."""
    names = active_var_names()
    if name not in names:
        os.environ[SECRET_VARS_ENV] = ",".join(sorted({*names, name}))
