"""Synthetic papers + citations tables at any scale, for the pair-building benchmark and property tests.

Not the demo corpus (that one writes native source formats with learnable text, see workflow_scripts.demo); this
one only needs realistic shapes and sizes: ~150 subcategories, dates over several years, heavy-tailed citation
counts with many papers near zero, titles of ~80 and abstracts of ~1,000 characters (arXiv's averages), so memory
and time figures are those of the real 2.9M-paper table.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

ARCHIVES = {"CS": "cs", "Math": "math", "Physics": "physics", "Others": "stat"}
_WORDS = np.array(
    "model data learning quantum field theory graph network spectral bound estimator lattice galaxy protein "
    "operator manifold entropy diffusion kernel sparse convex transformer attention optimal random matrix".split()
)


def _texts(rng: np.random.Generator, n: int, words: int, pool: int = 4096) -> np.ndarray:
    """``n`` strings drawn from a pool of ``pool`` distinct texts of ``words`` words (Arrow stores each row anyway)."""
    texts = np.array([" ".join(rng.choice(_WORDS, words)) for _ in range(pool)])
    return texts[rng.integers(0, pool, n)]


def synthetic_tables(n: int, seed: int = 0, start: str = "2015-01-01", end: str = "2025-12-31", n_sub: int = 150):
    rng = np.random.default_rng(seed)
    fields = np.array(list(ARCHIVES))
    sub_field = fields[np.arange(n_sub) % len(fields)]
    subcats = np.array([f"{ARCHIVES[f]}.S{i:03d}" for i, f in enumerate(sub_field)])
    sub = rng.integers(0, n_sub, n)
    d0, d1 = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    days = rng.integers(0, (d1 - d0).days + 1, n)
    published = np.datetime64(d0) + days.astype("timedelta64[D]")
    age_years = (days.max() - days) / 365.0
    cites = np.floor(rng.lognormal(mean=-0.2 + 0.3 * age_years, sigma=1.4, size=n)).astype(np.int64)
    ids = [f"s{i:08d}" for i in range(n)]
    titles = pl.Series(_texts(rng, n, 10)) + pl.Series([f" {i}" for i in range(n)])
    papers = pl.DataFrame(
        {
            "arxiv_id": ids,
            "title": titles,
            "abstract": _texts(rng, n, 140),
            "primary_category": subcats[sub],
            "field": sub_field[sub],
            "published": published,
        }
    ).with_columns(pl.col("published").cast(pl.Date))
    citations = pl.DataFrame({"arxiv_id": ids, "citation_count": cites})
    return papers, citations
