"""DAG-time helpers of the ``bioreview`` sources (rules/biomed.smk calls them while the rules are read): the snapshot
inputs of the configured sources, the checks the JSON schema cannot express, and a harvest options block as flags."""

from __future__ import annotations

import os
import shlex
from typing import Any, Callable


def snapshot_keys(cfg: dict[str, Any]) -> dict[str, str | None]:
    """Config key -> snapshot directory of every configured source in snapshot mode (None where unset)."""
    bio = cfg["bioreview"]
    return {f"bioreview.{s}.snapshot_dir": bio[s]["snapshot_dir"] for s in bio["sources"]
            if bio[s]["mode"] == "snapshot"}


def problems(cfg: dict[str, Any], produced: Callable[[str], bool]) -> list[str]:
    """Messages naming the key: a snapshot directory unset, or missing and written by no rule."""
    out = []
    for key, path in snapshot_keys(cfg).items():
        if not path:
            out.append(f"config key {key}: required when bioreview.{key.split('.')[1]}.mode is 'snapshot'")
        elif not os.path.exists(path) and not produced(os.path.normpath(path)):
            out.append(f"config key {key}: {path} does not exist, and no rule of this workflow writes it")
    return out


def harvest_flags(options: dict[str, Any]) -> str:
    """A source's harvest options as its command's flags: from_date -> --from-date VALUE; a list repeats the flag."""
    flags = []
    for key, value in sorted(options.items()):
        for item in value if isinstance(value, list) else [value]:
            flags.append(f"--{key.replace('_', '-')} {shlex.quote(str(item))}")
    return " ".join(flags)
