"""Checks of the config block scijudge.ood.biorxiv that the schema cannot say, run while the rules are read (the
demo's snapshot producer must be known): each message names the key."""

from __future__ import annotations

import os
from typing import Any, Callable

KEY = "scijudge.ood.biorxiv"


def block(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["scijudge"]["ood"]["biorxiv"]


def snapshot_keys(cfg: dict[str, Any]) -> dict[str, str | None]:
    """Config key -> snapshot directory of the bioRxiv answers and of the citation responses, where in snapshot mode."""
    b = block(cfg)
    keys = {}
    if b["mode"] == "snapshot":
        keys[f"{KEY}.snapshot_dir"] = b["snapshot_dir"]
    if b["citations"]["mode"] == "snapshot":
        keys[f"{KEY}.citations.snapshot_dir"] = b["citations"]["snapshot_dir"]
    return keys


def problems(cfg: dict[str, Any], produced: Callable[[str], bool]) -> list[str]:
    out = []
    for key, path in snapshot_keys(cfg).items():
        if not path:
            out.append(f"config key {key}: required when {key.rsplit('.', 1)[0]}.mode is 'snapshot'")
        elif not os.path.exists(path) and not produced(path):
            out.append(f"config key {key}: {path} does not exist, and no rule of this workflow writes it")
    for i, window in enumerate(block(cfg)["windows"]):
        if window["until_date"] < window["from_date"]:  # ISO dates order as strings
            out.append(f"config key {KEY}.windows.{i}.until_date: {window['until_date']} is before from_date "
                       f"{window['from_date']}")
    return out
