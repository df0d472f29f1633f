"""Which OpenReview venues feed the SciJudge ICLR test (config ``scijudge.ood.iclr``), and the checks of that block
that its schema cannot express (rules/scijudge_iclr.smk runs them).

A year comes from one venue: of ``reviewer.openreview.venues`` (read from the Reviewer line's OpenReview notes) when
``reviewer_venues`` is on and the Reviewer line reads OpenReview, else of ``scijudge.ood.iclr.venues`` (harvested or
read from this block's snapshot).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, Callable

from workflow_scripts.common.config import ConfigError

KEY = "scijudge.ood.iclr"
DEMO_SUBDIR = "openreview_iclr"  # where the demo writes this block's snapshot, under demo.out_dir


def block(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["scijudge"]["ood"]["iclr"]


def reviewer_venues(cfg: dict[str, Any]) -> list[dict]:
    """The selected years' venues read from the Reviewer line's OpenReview notes."""
    b = block(cfg)
    if not b["reviewer_venues"] or "openreview" not in cfg["reviewer"]["sources"]:
        return []
    return [v for v in cfg["reviewer"]["openreview"]["venues"] if v["year"] in b["years"]]


def own_venues(cfg: dict[str, Any]) -> list[dict]:
    """The selected years' venues this block harvests (or reads from its snapshot)."""
    b = block(cfg)
    return [v for v in b["venues"] if v["year"] in b["years"]]


def snapshot_keys(cfg: dict[str, Any]) -> dict[str, str | None]:
    """Config key -> snapshot directory, when this block reads a snapshot (None where unset)."""
    b = block(cfg)
    return {f"{KEY}.snapshot_dir": b["snapshot_dir"]} if b["mode"] == "snapshot" and own_venues(cfg) else {}


def coverage_problems(cfg: dict[str, Any]) -> list[str]:
    """Messages naming the key for a selected year without a venue or with two. They depend on the Reviewer line's
    venues too, so they are checked when the ICLR test is built (an input function), not for every target."""
    b, own, rev = block(cfg), own_venues(cfg), reviewer_venues(cfg)
    out = []
    years = Counter(v["year"] for v in own + rev)
    missing = sorted(set(b["years"]) - set(years))
    if missing:
        out.append(f"config key {KEY}.years: no venue for {missing}; add them to {KEY}.venues"
                   + ("" if b["reviewer_venues"] else f" or read the Reviewer line's ({KEY}.reviewer_venues: true)"))
    twice = sorted(y for y, n in years.items() if n > 1)
    if twice:
        where = f"{KEY}.venues" + (" and reviewer.openreview.venues" if rev else "")
        out.append(f"config key {KEY}.venues: {twice} given more than once ({where}); keep one venue a year")
    return out


def checked_inputs(cfg: dict[str, Any], inputs: dict[str, str]) -> dict[str, str]:
    """``inputs`` (the scores step's), once every selected year has one venue; else ConfigError naming the keys."""
    found = coverage_problems(cfg)
    if found:
        raise ConfigError("invalid config:\n  " + "\n  ".join(found))
    return inputs


def problems(cfg: dict[str, Any], produced: Callable[[str], bool]) -> list[str]:
    """Messages naming the key, checked while the rules are read: a snapshot directory unset or missing and written
    by no rule, the demo's snapshot lacking a venue this block reads."""
    out = []
    for key, path in snapshot_keys(cfg).items():
        if not path:
            out.append(f"config key {key}: required when {KEY}.mode is 'snapshot'")
        elif not os.path.exists(path) and not produced(path):
            out.append(f"config key {key}: {path} does not exist, and no rule of this workflow writes it")
    return out + _demo_problems(cfg, own_venues(cfg))


def _demo_problems(cfg: dict[str, Any], own: list[dict]) -> list[str]:
    b = block(cfg)
    if not cfg["demo"]["enabled"]:
        return []
    made = set(b["demo"]["submissions"])
    out = []
    unknown = sorted(made - {v["venue"] for v in b["venues"]})
    if unknown:
        out.append(f"config key {KEY}.demo.submissions: no venue {unknown} in {KEY}.venues, whose invitations the demo "
                   "writes")
    reads_demo = b["mode"] == "snapshot" and b["snapshot_dir"] and (
        os.path.normpath(b["snapshot_dir"]) == os.path.join(os.path.normpath(cfg["demo"]["out_dir"]), DEMO_SUBDIR))
    lacking = sorted({v["venue"] for v in own} - made)
    if reads_demo and lacking:
        out.append(f"config key {KEY}.demo.submissions: the demo writes no {lacking}, which {KEY} reads; add them or "
                   f"select fewer {KEY}.years")
    return out
