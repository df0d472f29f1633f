"""The one duplicate rule of every reader (OAI-PMH, dump, API, citations) and of the merge of the reader tables.

A record seen more than once keeps the copy with the most recent timestamp (a paper: its ``updated`` date; a citation
count: the time its response was fetched); on equal timestamps the copy read later wins (file order, then position in
the file). Duplicates are expected (versions of a paper, a paper in two OAI sets, a batch fetched twice), so they are
counted, not rejected; the ones whose values differ from the winner's are counted apart as conflicting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import polars as pl

from workflow_scripts.sources.records import PAPER_SCHEMA

log = logging.getLogger(__name__)

_ORDER = "_read_order"
EXAMPLES = 5


@dataclass
class Duplicates:
    dropped: int  # rows removed
    conflicting: int  # removed rows whose compared values differ from the kept row's
    examples: list[str]  # a few keys with conflicting values

    def summary(self) -> dict:
        return {"duplicates": self.dropped, "duplicates_conflicting": self.conflicting}


def keep_latest(df: pl.DataFrame, key: str, newest: str, compare: Sequence[str]) -> tuple[pl.DataFrame, Duplicates]:
    """One row per ``key``, by the rule above; rows must be in read order. A null ``newest`` counts as the oldest.
    The result is sorted by ``key``."""
    ranked = df.with_row_index(_ORDER).sort([key, newest, _ORDER], nulls_last=False)
    kept = ranked.unique(key, keep="last", maintain_order=True)
    fingerprint = pl.struct(list(compare)).hash()
    conflicts = (
        ranked.select(key, _ORDER, fingerprint.alias("_fp"))
        .join(kept.select(key, fingerprint.alias("_kept_fp")), on=key)
        .filter(pl.col("_fp") != pl.col("_kept_fp"))
    )
    found = Duplicates(
        dropped=df.height - kept.height,
        conflicting=conflicts.height,
        examples=conflicts[key].unique(maintain_order=True).head(EXAMPLES).to_list(),
    )
    if found.conflicting:
        log.info("%d duplicate row(s) with values conflicting with the kept one, e.g. %s (kept: the most recent, on "
                 "a tie the one read later)", found.conflicting, found.examples)
    return kept.drop(_ORDER), found


def latest_papers(df: pl.DataFrame) -> tuple[pl.DataFrame, Duplicates]:
    """Papers by versionless arxiv_id; every column but the reader's name counts for a conflict."""
    return keep_latest(df, "arxiv_id", "updated", [c for c in PAPER_SCHEMA if c != "source"])
