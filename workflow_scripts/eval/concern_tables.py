"""The tables the BioReview evaluation reads, defined once: model predictions and the ground truth of concerns.

``predictions``: one row per (article, model).

| column | meaning |
|---|---|
| article_id | the article's id in the biomedical tables (``{source}:{versioned id}``) |
| model | the label the metrics show |
| concerns | ``[{text, category, severity}]`` in the model's order (postprocessing keeps the first ones) |
| parse_ok | False when the model's output was not a valid JSON array (its concerns are what a fallback parse found) |

``truth``: one row per article: ``article_id``, ``source``, ``concerns`` (the same struct, the reviewers' concerns).
A training table for the baselines has the truth's shape. Other columns are allowed and ignored.

Concerns whose category is ``figure_issue`` need the figure itself; the reference removes them from the ground truth
(:func:`without_figure_concerns`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import polars as pl

CONCERN = pl.Struct({"text": pl.String, "category": pl.String, "severity": pl.String})
PREDICTIONS_SCHEMA: dict[str, pl.DataType] = {
    "article_id": pl.String, "model": pl.String, "concerns": pl.List(CONCERN), "parse_ok": pl.Boolean,
}
TRUTH_SCHEMA: dict[str, pl.DataType] = {"article_id": pl.String, "source": pl.String, "concerns": pl.List(CONCERN)}
CATEGORIES = ("design_flaw", "statistical_methodology", "missing_experiment", "prior_art_novelty", "writing_clarity",
              "reagent_method_specificity", "interpretation", "other")  # the card's eight
FIGURE_CATEGORY = "figure_issue"  # the extractor's ninth, removed from the ground truth
SEVERITIES = ("major", "minor", "optional")


class ConcernInputError(ValueError):
    """A predictions or truth table that cannot be evaluated; the message names the file and the rows."""


def read_table(path: str | Path, what: str) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConcernInputError(f"{path}: the {what} table cannot be read as parquet: "
                                f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def require_columns(frame: pl.DataFrame, columns: list[str], path: str | Path, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConcernInputError(f"{path}: not a {what} table, missing column(s) {missing} (expected {columns})")


def _conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], path: str | Path, what: str) -> pl.DataFrame:
    require_columns(frame, list(schema), path, what)
    try:
        frame = frame.select(pl.col(c).cast(t, strict=True) for c, t in schema.items())
    except pl.exceptions.PolarsError as exc:
        raise ConcernInputError(f"{path}: a column does not have the {what} table's type {dict(schema)}: "
                                f"{str(exc).splitlines()[0]}") from None
    return frame


def _check_texts(frame: pl.DataFrame, keys: list[str], path: str | Path) -> None:
    """Every concern has a non-blank text: a blank one is a bug upstream, not something to score."""
    bad = (frame.select(*keys, pl.col("concerns")).explode("concerns")
           .filter(pl.col("concerns").is_not_null()
                   & pl.col("concerns").struct.field("text").fill_null("").str.strip_chars().eq(""))
           .select(keys).unique(maintain_order=True))
    null_lists = frame.filter(pl.col("concerns").is_null()).select(keys)
    for rows, why in ((bad, "a concern with an empty text"), (null_lists, "concerns is null (use an empty list)")):
        if rows.height:
            raise ConcernInputError(f"{path}: {rows.height} row(s) with {why}, e.g. {rows.row(0, named=True)}")


def _check_unique(frame: pl.DataFrame, keys: list[str], path: str | Path) -> None:
    dup = frame.filter(pl.struct(keys).is_duplicated()).select(keys).unique(maintain_order=True)
    if dup.height:
        raise ConcernInputError(f"{path}: {dup.height} {'/'.join(keys)} value(s) occur more than once, "
                                f"e.g. {dup.row(0, named=True)}")


def read_predictions(path: str | Path) -> pl.DataFrame:
    frame = _conform(read_table(path, "predictions"), PREDICTIONS_SCHEMA, path, "predictions")
    if frame["parse_ok"].null_count() or frame["model"].null_count() or frame["article_id"].null_count():
        raise ConcernInputError(f"{path}: article_id, model and parse_ok must be set on every row")
    _check_unique(frame, ["article_id", "model"], path)
    _check_texts(frame, ["article_id", "model"], path)
    return frame


def read_truth(path: str | Path) -> pl.DataFrame:
    frame = _conform(read_table(path, "truth"), TRUTH_SCHEMA, path, "truth")
    if frame["source"].null_count() or frame["article_id"].null_count():
        raise ConcernInputError(f"{path}: article_id and source must be set on every row")
    _check_unique(frame, ["article_id"], path)
    _check_texts(frame, ["article_id"], path)
    return frame.sort("article_id")


def without_figure_concerns(truth: pl.DataFrame) -> pl.DataFrame:
    """The truth with ``figure_issue`` concerns removed from every list (articles are kept, possibly empty)."""
    not_figure = pl.element().struct.field("category").ne_missing(FIGURE_CATEGORY)  # a null category stays
    return truth.with_columns(pl.col("concerns").list.eval(pl.element().filter(not_figure)))


def normalized_text(text: str) -> str:
    """Lowercased, whitespace collapsed: the reference's key for exact duplicates and concern counts."""
    return " ".join(text.lower().split())
