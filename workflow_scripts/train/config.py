"""The config block of a training step: loaded from JSON/YAML, each key routed to the dataclass that owns it.

A training step takes all its knobs from one flat block (JSON from Snakemake ``params``, or a file). Each key belongs
to exactly one dataclass: the entry point's script arguments, ModelArgs (model loading, PEFT, quantization) or the TRL
trainer config (GRPOConfig / SFTConfig), as in TRL's example scripts. A key that belongs to none is an error naming
the key, so a typo never trains with a silent default. Kept free of torch/transformers imports: the launcher reads
blocks too, before anything heavy starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from workflow_scripts.common.cli import json_arg, parser

# Set by the command line or derived here: in the block they would be ignored or contradict the CLI.
RESERVED_KEYS = {
    "output_dir": "set by --output-dir",
    "model_name_or_path": "set by --model",
    "resume_from_checkpoint": "resuming from the last checkpoint in --output-dir is automatic",
    "model_init_kwargs": "the model is loaded here: use dtype / attn_implementation / load_in_4bit",
    "logging_dir": "TensorBoard logs go to <output-dir>/tensorboard (or $TENSORBOARD_LOGGING_DIR)",
}

# Names the recipes (model cards) use that this transformers spells differently: key -> (field, convert)
ALIASES = {
    # transformers 5 folded warmup_ratio into warmup_steps: a float in [0, 1) is a ratio of the total steps
    "warmup_ratio": ("warmup_steps", lambda v: _ratio("warmup_ratio", v)),
}


def _ratio(key: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"config key {key!r} must be a number in [0, 1), got {value!r}")
    return float(value)


def base_parser(description: str):
    """The arguments every trainer entry point takes."""
    p = parser(description)
    p.add_argument("--model", required=True, help="base model: save_pretrained directory or hub id org/name")
    p.add_argument("--train", required=True, help="training parquet")
    p.add_argument("--output-dir", required=True, help="the run directory: checkpoints, logs, trainer_state.json, "
                                                       "and curves.png and final/ unless --publish-dir")
    p.add_argument("--publish-dir", default=None, help="where final/, trainer_state.json and curves.png go when the "
                                                       "run directory is elsewhere (a scratch file system)")
    p.add_argument("--config-json", type=json_arg, default=None, help="config block as a JSON object")
    p.add_argument("--config-file", default=None, help="config block as a JSON or YAML file (--config-json wins)")
    return p


def load_block(config_json: Mapping | None = None, config_file: str | os.PathLike | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text)
        else:
            loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError(f"config file {path}: expected a mapping, got {type(loaded).__name__}")
        block.update(loaded)
    if config_json is not None:
        if not isinstance(config_json, dict):
            raise ValueError(f"--config-json: expected a JSON object, got {type(config_json).__name__}")
        block.update(config_json)
    return block


class UnknownKeyError(ValueError):
    """A key of a config block that no dataclass of the step has as a field."""

    def __init__(self, key: str, close: list[str], class_names: list[str]):
        self.key, self.close = key, close
        hint = f"; did you mean {close}?" if close else f" (known keys: fields of {class_names})"
        super().__init__(f"unknown config key {key!r}{hint}")


def split_block(block: Mapping[str, Any], *classes: type) -> list[dict[str, Any]]:
    """Route each key of ``block`` to the first of the dataclasses ``classes`` that has it as a field."""
    fields = [{f.name for f in dataclasses.fields(c) if f.init} for c in classes]
    return _route(block, fields, [c.__name__ for c in classes])


def _route(block: Mapping[str, Any], fields: list[set[str]], class_names: list[str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{} for _ in fields]
    block = dict(block)
    for alias, (target, convert) in ALIASES.items():
        if alias in block and not any(alias in names for names in fields):
            if target in block:
                raise ValueError(f"config keys {alias!r} and {target!r} set the same thing: give one")
            block[target] = convert(block.pop(alias))
    for key, value in block.items():
        if key in RESERVED_KEYS:
            raise ValueError(f"config key {key!r} is not allowed here: {RESERVED_KEYS[key]}")
        for names, part in zip(fields, parts):
            if key in names:
                part[key] = value
                break
        else:
            known = sorted(set().union(*fields) - set(RESERVED_KEYS))
            raise UnknownKeyError(key, [k for k in known if _similar(key, k)], class_names)
    return parts


# ---- the same routing at DAG build, before any job is submitted (workflow_scripts.common.config)

# the dataclasses each entry point routes its block to, in its order ("module:Name")
ENTRY_CLASSES = {
    "grpo": ("workflow_scripts.train.grpo:GRPOScriptArgs", "workflow_scripts.train.common:ModelArgs", "trl:GRPOConfig"),
    "sft": ("workflow_scripts.train.sft:SFTScriptArgs", "workflow_scripts.train.common:ModelArgs", "trl:SFTConfig"),
}


def block_problems(key: str, block: Mapping[str, Any], entry: str) -> list[str]:
    """What the ``entry`` step would refuse in ``block`` when it starts, as "config key <key>.<name>: ..." lines:
    every unknown key (with the close field names), then the first other problem (reserved key, alias clash)."""
    paths = ENTRY_CLASSES[entry]
    fields = [init_fields(path) for path in paths]
    names = [path.split(":")[1] for path in paths]
    block, problems = dict(block), []
    while True:
        try:
            _route(block, fields, names)
            return problems
        except UnknownKeyError as exc:
            hint = f"did you mean {' or '.join(exc.close)}?" if exc.close else f"not a field of {names}"
            problems.append(f"config key {key}.{exc.key}: unknown; {hint}")
            del block[exc.key]
        except ValueError as exc:
            return [*problems, f"config key {key}: {exc}"]


def init_fields(path: str) -> set[str]:
    """The init field names of the dataclass ``module:Name``. TRL's configs take ~10 s to import (transformers and
    torch), so theirs are cached per installed trl and transformers version; ours import in a fraction of a second."""
    module, name = path.split(":")
    if module != "trl":
        import importlib

        return {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name)) if f.init}
    from importlib.metadata import version

    cache = _cache_dir() / f"trl-{version('trl')}-transformers-{version('transformers')}.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    if name not in known:
        import trl

        from workflow_scripts.common.io import write_json_atomic

        known[name] = sorted(f.name for f in dataclasses.fields(getattr(trl, name)) if f.init)
        write_json_atomic(cache, known)
    return set(known[name])


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "scitaste" / "trainer_fields"


def _similar(a: str, b: str) -> bool:
    return difflib.SequenceMatcher(None, a, b).ratio() > 0.8
