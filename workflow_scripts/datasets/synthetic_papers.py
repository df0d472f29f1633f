"""Synthetic papers + citations tables at any scale, for the pair-building benchmark and property tests.

Not the demo corpus (that one writes native source formats with learnable text, see workflow_scripts.demo); this
one only needs realistic shapes: ~150 subcategories, dates over several years, heavy-tailed citation counts.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

ARCHIVES = {"CS": "cs", "Math": "math", "Physics": "physics", "Others": "stat"}


def synthetic_tables(n: int, seed: int = 0, start: str = "2015-01-01", end: str = "2025-12-31", n_sub: int = 150):
    rng = np.random.default_rng(seed)
    fields = np.array(list(ARCHIVES))
    sub_field = fields[np.arange(n_sub) % len(fields)]
    subcats = np.array([f"{ARCHIVES[f]}.S{i:03d}" for i, f in enumerate(sub_field)])
    sub = rng.integers(0, n_sub, n)
    d0, d1 = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    days = rng.integers(0, (d1 - d0).days + 1, n)
    published = np.datetime64(d0) + days.astype("timedelta64[D]")
    cites = np.floor(rng.lognormal(mean=1.5 + (days.max() - days) / 1500, sigma=1.3, size=n)).astype(np.int64)
    ids = [f"s{i:08d}" for i in range(n)]
    papers = pl.DataFrame(
        {
            "arxiv_id": ids,
            "title": [f"Synthetic paper {i}" for i in range(n)],
            "abstract": "An abstract.",
            "primary_category": subcats[sub],
            "field": sub_field[sub],
            "published": published,
        }
    ).with_columns(pl.col("published").cast(pl.Date))
    citations = pl.DataFrame({"arxiv_id": ids, "citation_count": cites})
    return papers, citations
