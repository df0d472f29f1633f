"""The Reviewer line's source tables: each source's papers and reviews in one table each, with a data card.

    python -m workflow_scripts.sources.reviews.merge --papers A.parquet B.parquet --reviews A.parquet B.parquet \
        --summaries A.json B.json --out-papers papers.parquet --out-reviews reviews.parquet --card README.md

Keys are ``{source}:{venue}:{paper_id}``, unique by construction; a key seen twice means a source step broke that
rule, and the step fails naming it rather than keep either copy. The card (README.md next to the tables) documents
the columns (tables.py), counts per source, venue and split, and each source step's rejects and bad files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_parquet_atomic, write_text_atomic
from workflow_scripts.sources.reviews import tables

log = logging.getLogger(__name__)


def merge(papers: list[Path], reviews: list[Path]) -> tuple[pl.DataFrame, pl.DataFrame]:
    p = pl.concat([pl.read_parquet(x) for x in papers], how="vertical").sort("key")
    r = pl.concat([pl.read_parquet(x) for x in reviews], how="vertical")
    repeated = p.filter(pl.col("key").is_duplicated())["key"].unique().sort().to_list()
    if repeated:
        raise ValueError(f"paper key(s) in more than one row: {repeated[:10]}")
    return p.select(list(tables.PAPER_SCHEMA)), r.select(list(tables.REVIEW_SCHEMA))


def _table(frame: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def card(papers: pl.DataFrame, reviews: pl.DataFrame, summaries: list[dict]) -> str:
    per_venue = (
        papers.group_by("source", "venue", "split")
        .agg(papers=pl.len(), accept=(pl.col("decision") == "accept").sum(),
             reject=(pl.col("decision") == "reject").sum(), no_decision=pl.col("decision").is_null().sum(),
             with_text=pl.col("sections").is_not_null().sum(), official_reviews=pl.col("n_reviews").sum(),
             mean_rating=pl.col("reviews").list.eval(pl.element().struct.field("rating")).list.mean().mean().round(2))
        .sort("source", "venue", "split", nulls_last=True)
    )
    kinds = reviews.group_by("source", "kind").agg(entries=pl.len()).sort("source", "kind")
    quality = "\n".join(
        f"- {s['source']}: {s.get('rejected', 0)} reject(s) {s.get('rejects', {})}, "
        f"{len(s.get('bad_files', []))} bad file(s){''.join(f'; {k} {v}' for k, v in _notes(s))}"
        for s in summaries
    )
    return f"""# Reviewer sources: papers and reviews

`papers.parquet`: {papers.height} papers; `reviews.parquet`: {reviews.height} review entries.

{_table(per_venue)}

Review entries by kind:

{_table(kinds)}

## Data quality (each source step's summary)
{quality}

## Columns
{tables.__doc__.split(chr(10), 2)[2].strip()}
"""


def _notes(summary: dict) -> list[tuple[str, object]]:
    """The counts of a source summary worth a line: exclusions, copies, missing text."""
    keys = ("withdrawn", "desk_rejected", "meta_review_copies", "repeated_entries", "without_parsed_pdf",
            "sections_null", "without_pdf_text", "duplicates", "outside_config")
    return [(k, summary[k]) for k in keys if summary.get(k)]


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--papers", nargs="+", required=True, type=Path)
    p.add_argument("--reviews", nargs="+", required=True, type=Path)
    p.add_argument("--summaries", nargs="+", required=True, type=Path, help="each source step's summary JSON")
    p.add_argument("--out-papers", required=True, type=Path)
    p.add_argument("--out-reviews", required=True, type=Path)
    p.add_argument("--card", required=True, type=Path, help="README.md describing the tables")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    papers, reviews = merge(args.papers, args.reviews)
    summaries = [json.loads(s.read_text(encoding="utf-8")) for s in args.summaries]
    write_parquet_atomic(papers, args.out_papers)
    write_parquet_atomic(reviews, args.out_reviews)
    write_text_atomic(args.card, card(papers, reviews, summaries))
    log.info("%d papers, %d review entries -> %s, %s", papers.height, reviews.height, args.out_papers, args.out_reviews)


if __name__ == "__main__":
    main()
