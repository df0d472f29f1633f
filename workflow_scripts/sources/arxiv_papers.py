"""Merge the per-reader paper tables into papers.parquet: one row per versionless arxiv_id.

The same paper often arrives from several readers (the dump is an older snapshot, OAI-PMH the full record, the API
the newest versions). The one duplicate rule decides (duplicates.py): the most recently updated row wins; on a tie
the reader listed first wins (its table is read last).
"""

from __future__ import annotations

import logging

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.duplicates import latest_papers
from workflow_scripts.sources.records import PAPER_SCHEMA

log = logging.getLogger(__name__)


def merge(paths: list[str]) -> tuple[pl.DataFrame, dict]:
    frames = [pl.read_parquet(p).select(list(PAPER_SCHEMA)).cast(PAPER_SCHEMA) for p in paths]
    per_reader = {p: f.height for p, f in zip(paths, frames)}
    # on a tie the row read later wins, so the reader listed first is read last
    merged, duplicates = latest_papers(pl.concat(frames[::-1]))
    summary = {
        "inputs": per_reader,
        "papers": merged.height,
        "duplicates_across_readers": duplicates.dropped,
        "duplicates_conflicting": duplicates.conflicting,
        "per_field": dict(sorted(merged.group_by("field").len().iter_rows())),
        "per_source": dict(sorted(merged.group_by("source").len().iter_rows())),
        "per_year": {str(k): v for k, v in sorted(merged.group_by(pl.col("published").dt.year()).len().iter_rows())},
    }
    log.info("%d papers from %s; %d duplicate rows resolved, %d with conflicting values (the latest update wins, on a "
             "tie the reader listed first)", merged.height, per_reader, duplicates.dropped, duplicates.conflicting)
    return merged, summary


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--inputs", nargs="+", required=True, help="reader tables, in priority order for ties")
    p.add_argument("--out", required=True)
    p.add_argument("--summary", required=True)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    merged, summary = merge(args.inputs)
    write_parquet_atomic(merged, args.out)
    write_json_atomic(args.summary, summary)


if __name__ == "__main__":
    main()
