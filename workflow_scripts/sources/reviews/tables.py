"""The two normalized tables every review source writes, and the step plumbing they share.

``papers``: one row per paper. ``key`` = ``{source}:{venue}:{paper_id}`` is unique across sources.

| column | meaning |
|---|---|
| key, source, venue, year, split | ``peerread`` / ``openreview``; ``iclr_2017``, ``acl_2017``, ``conll_2016``, ``iclr_2019`` ...; PeerRead's ``train`` / ``dev`` / ``test``, null for OpenReview |
| paper_id | PeerRead's id (the file name where the id is empty), OpenReview's forum id |
| title, abstract, authors | authors empty where the copy is anonymous |
| sections | ``[{heading, text}]`` of the body: PeerRead's parsed PDF, or the submitted OpenReview PDF through pypdf; null when there is none |
| text_source | ``science-parse`` (PeerRead's parsed_pdfs) or ``pypdf``; null without sections |
| decision, decision_raw | ``accept`` / ``reject``, null where the source has none (PeerRead ACL and CoNLL); the source's own value |
| reviews, n_reviews | the official reviews: ``[{review_id, reviewer, title, text, rating, confidence, scores}]``, scores as numbers |
| pdf_field | OpenReview: the note field the PDF came from (``original_pdf`` when the note has it, else ``pdf``) |
| file | the file the row was read from, relative to the snapshot |

``reviews``: one row per review-like entry of a paper, official or not, ``kind`` telling which: ``official``,
``meta_review``, ``decision``, ``comment`` (public comments, author replies), ``question`` (a reviewer's entry
without a recommendation, e.g. PeerRead's empty pre-review questions), ``other``. Columns: key (the paper's),
source, venue, paper_id, review_id, kind, reviewer, title, text, rating, confidence, scores, date.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import polars as pl

from workflow_scripts.common.cli import json_arg
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.bad_input import BadInput, add_bad_input_args

log = logging.getLogger(__name__)

SECTION = pl.Struct({"heading": pl.String, "text": pl.String})
SCORE = pl.Struct({"name": pl.String, "value": pl.Float64})
OFFICIAL_REVIEW = pl.Struct({
    "review_id": pl.String, "reviewer": pl.String, "title": pl.String, "text": pl.String,
    "rating": pl.Float64, "confidence": pl.Float64, "scores": pl.List(SCORE),
})
PAPER_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String,
    "source": pl.String,
    "venue": pl.String,
    "year": pl.Int32,
    "split": pl.String,
    "paper_id": pl.String,
    "title": pl.String,
    "abstract": pl.String,
    "authors": pl.List(pl.String),
    "sections": pl.List(SECTION),
    "text_source": pl.String,
    "decision": pl.String,
    "decision_raw": pl.String,
    "reviews": pl.List(OFFICIAL_REVIEW),
    "n_reviews": pl.Int32,
    "pdf_field": pl.String,
    "file": pl.String,
}
REVIEW_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String,
    "source": pl.String,
    "venue": pl.String,
    "paper_id": pl.String,
    "review_id": pl.String,
    "kind": pl.String,
    "reviewer": pl.String,
    "title": pl.String,
    "text": pl.String,
    "rating": pl.Float64,
    "confidence": pl.Float64,
    "scores": pl.List(SCORE),
    "date": pl.Date,
}
KINDS = ("official", "meta_review", "decision", "comment", "question", "other")
OFFICIAL_FIELDS = tuple(OFFICIAL_REVIEW.to_schema())


def paper_key(source: str, venue: str, paper_id: str) -> str:
    return f"{source}:{venue}:{paper_id}"


def official_reviews(reviews: list[dict]) -> list[dict]:
    """The nested ``reviews`` of a paper row: its official reviews in the order the source lists them."""
    return [{k: r[k] for k in OFFICIAL_FIELDS} for r in reviews if r["kind"] == "official"]


def papers_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PAPER_SCHEMA, orient="row").sort("key")


def reviews_frame(rows: list[dict]) -> pl.DataFrame:
    # review_id alone does not sort in source order (PeerRead's "12#10" < "12#2"); the read order does
    frame = pl.DataFrame(rows, schema=REVIEW_SCHEMA, orient="row").with_row_index("_order")
    return frame.sort("key", "_order").drop("_order")


def add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-papers", required=True, type=Path, help="papers parquet (tables.PAPER_SCHEMA)")
    p.add_argument("--out-reviews", required=True, type=Path, help="reviews parquet (tables.REVIEW_SCHEMA)")
    p.add_argument("--rejects", required=True, type=Path, help="rejected files and records, JSON lines")
    p.add_argument("--summary", required=True, type=Path, help="JSON summary (counts)")
    p.add_argument("--drop-lines", type=json_arg, default=[],
                   help="JSON list of regular expressions: text lines matching one are removed (venue headers)")
    add_bad_input_args(p)


def write_tables(step: str, papers: pl.DataFrame, reviews: pl.DataFrame, bad: BadInput, summary: dict,
                 args: argparse.Namespace, lost: int | None, expected: int) -> dict:
    """Both tables, the rejects and the summary, unless the bad-file policy stops the step (bad_input.py); the log
    ends with the data-quality summary either way."""
    summary = {
        "source": step,
        **summary,
        "papers": papers.height,
        "reviews_by_kind": dict(sorted(reviews["kind"].value_counts().iter_rows())) if reviews.height else {},
        "decisions": _decision_counts(papers),
        "papers_with_text": int(papers["sections"].is_not_null().sum()),
        "rejected": len(bad.rejects),
        "rejects": bad.rejects.counts(),
        **bad.summary(lost, expected),
    }

    def write_outputs() -> None:
        write_parquet_atomic(papers, args.out_papers)
        write_parquet_atomic(reviews, args.out_reviews)
        bad.rejects.write(args.rejects)
        write_json_atomic(args.summary, summary)
        log.info("%s: %d paper(s), %d review entries -> %s, %s; decisions %s", step, papers.height, reviews.height,
                 args.out_papers, args.out_reviews, summary["decisions"])

    bad.conclude(step, summary, write_outputs)
    return summary


def _decision_counts(papers: pl.DataFrame) -> dict[str, int]:
    counts = papers["decision"].fill_null("unknown").value_counts()
    return dict(sorted(counts.iter_rows()))


