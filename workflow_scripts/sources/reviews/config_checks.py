"""DAG-time checks of the ``reviewer`` config block that its JSON schema cannot express (rules/reviews.smk calls them
while the rules are read, before anything runs), and the snapshot inputs of the configured review sources."""

from __future__ import annotations

import os
from typing import Any, Callable


def snapshot_keys(cfg: dict[str, Any]) -> dict[str, str | None]:
    """Config key -> snapshot directory of every configured review source in snapshot mode (None where unset)."""
    reviewer = cfg["reviewer"]
    return {f"reviewer.{s}.snapshot_dir": reviewer[s]["snapshot_dir"] for s in reviewer["sources"]
            if reviewer[s]["mode"] == "snapshot"}


def problems(cfg: dict[str, Any], produced: Callable[[str], bool]) -> list[str]:
    """Messages naming the key: a snapshot directory unset, missing and written by no rule, or the demo's snapshot
    lacking a venue the config reads."""
    out = []
    for key, path in snapshot_keys(cfg).items():
        source = key.split(".")[1]
        if not path:
            out.append(f"config key {key}: required when reviewer.{source}.mode is 'snapshot'")
        elif not os.path.exists(path) and not produced(path):
            out.append(f"config key {key}: {path} does not exist, and no rule of this workflow writes it")
    out.extend(_demo_venue_problems(cfg))
    return out


def _demo_venue_problems(cfg: dict[str, Any]) -> list[str]:
    if not cfg["demo"]["enabled"]:
        return []
    reviewer, demo_dir = cfg["reviewer"], os.path.normpath(cfg["demo"]["out_dir"])
    made = {"peerread": set(reviewer["demo"]["peerread"]), "openreview": set(reviewer["demo"]["openreview"])}
    wanted = {"peerread": set(reviewer["peerread"]["venues"]),
              "openreview": {v["venue"] for v in reviewer["openreview"]["venues"]}}
    out = []
    for source in reviewer["sources"]:
        block = reviewer[source]
        reads_demo = block["mode"] == "snapshot" and block["snapshot_dir"] and (
            os.path.normpath(block["snapshot_dir"]) == os.path.join(demo_dir, source))
        missing = sorted(wanted[source] - made[source])
        if reads_demo and missing:
            out.append(f"config key reviewer.demo.{source}: the demo writes no {missing}, which "
                       f"reviewer.{source} reads; add them or configure fewer venues")
    return out
