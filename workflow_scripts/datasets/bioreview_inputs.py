"""Reading the biomedical source tables (articles, reports) of several sources as one table, and the concerns table.

Each source writes its own parquet with the schemas of :mod:`workflow_scripts.sources.biomed.tables`; the BioReview
steps take any number of them. A file that lacks a column, or an id found twice (within or across files), is an
error naming the file(s) and ids: the steps below key everything on those ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import polars as pl

from workflow_scripts.sources.biomed.tables import ARTICLE_SCHEMA, REPORT_SCHEMA

CONCERN_SCHEMA: dict[str, pl.DataType] = {
    "report_id": pl.String, "article_id": pl.String, "source": pl.String, "reviewer": pl.Int32, "round": pl.Int32,
    "text": pl.String, "category": pl.String, "severity": pl.String,
}


def in_schema(frame: pl.DataFrame, schema: dict[str, pl.DataType], path: str | Path) -> pl.DataFrame:
    """The frame's schema columns in the schema's types, or an error naming the file and the missing columns."""
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (expected the columns {list(schema)})")
    return frame.select([pl.col(c).cast(t) for c, t in schema.items()])


def read_tables(paths: Sequence[str | Path], schema: dict[str, pl.DataType], key: str) -> pl.DataFrame:
    """The files' rows in the schema's columns and types, concatenated in file order; ``key`` must be unique."""
    frames = [in_schema(pl.read_parquet(path), schema, path).with_columns(pl.lit(str(path)).alias("_file"))
              for path in paths]
    table = pl.concat(frames) if frames else pl.DataFrame(schema=schema | {"_file": pl.String})
    twice = table.filter(pl.col(key).is_duplicated())
    if twice.height:
        where = twice.group_by(key, maintain_order=True).agg("_file").head(5).rows()
        raise ValueError(f"{twice[key].n_unique()} {key}(s) occur more than once, e.g. "
                         + "; ".join(f"{k} in {sorted(set(files))}" for k, files in where))
    return table.drop("_file")


def read_articles(paths: Sequence[str | Path]) -> pl.DataFrame:
    return read_tables(paths, ARTICLE_SCHEMA, "article_id")


def read_reports(paths: Sequence[str | Path]) -> pl.DataFrame:
    return read_tables(paths, REPORT_SCHEMA, "report_id").sort("article_id", "round", "reviewer", "report_id")


def read_concerns(path: str | Path) -> pl.DataFrame:
    return in_schema(pl.read_parquet(path), CONCERN_SCHEMA, path)
