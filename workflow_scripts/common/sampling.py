"""Stable subsamples of keyed rows: the N rows whose key hashes lowest, never the first N rows.

Pair files are written sorted (by subcategory, so by field): their first rows are one field's. A hash of the key is a
sample that is the same on any machine and library version, independent of row order, and nested as N grows (a
larger N keeps the smaller sample).
"""

from __future__ import annotations

import hashlib

import polars as pl


def hash_sample(df: pl.DataFrame, n: int | None, *, key: str = "pair_id", seed: int | None = None,
                over: str | None = None) -> pl.DataFrame:
    """The ``n`` rows of ``df`` (of each ``over`` group) with the smallest SHA-256 of their ``key`` (salted with
    ``seed`` when given); selected rows keep their order. ``n`` None keeps every row."""
    if n is None:
        return df
    salt = "" if seed is None else f"{seed}:"
    digest = pl.Series("_hash", [hashlib.sha256(f"{salt}{k}".encode()).hexdigest() for k in df[key]], pl.String)
    rank = pl.col("_hash").rank("ordinal")
    return df.with_columns(digest).filter((rank if over is None else rank.over(over)) <= n).drop("_hash")
