"""Synthetic papers + citations tables at any scale, for the pair-building benchmark and property tests.

Not the demo corpus (that one writes native source formats with learnable text, see workflow_scripts.demo); this
one only needs realistic shapes and sizes: ~150 subcategories, dates over several years, heavy-tailed citation
counts with many papers near zero, titles of ~80 characters (8-17 words of a Zipf-distributed vocabulary, so that
distinct papers rarely share most of their words) and abstracts of ~1,000 characters (arXiv's averages), DOIs and
journal references for about 40% of the papers, and a small share of planted duplicates (``dup_share``): a paper
re-submitted under a new id with its title re-cased, its title extended, its DOI or its journal reference written
another way. Memory and time figures are those of the real 2.9M-paper table.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pyarrow as pa

ARCHIVES = {"CS": "cs", "Math": "math", "Physics": "physics", "Others": "stat"}
_WORDS = np.array(
    "model data learning quantum field theory graph network spectral bound estimator lattice galaxy protein "
    "operator manifold entropy diffusion kernel sparse convex transformer attention optimal random matrix".split()
)
_FUNCTION_WORDS = ["of", "the", "for", "a", "on", "with", "in", "and", "via", "to"]
_SYLLABLES = np.array(
    "ka ro mi te lu sa no vi de pa ri go fe lo ta ne si mu ba ze co ra di po le ti va su ge mo fa ni he".split()
)
DUP_KINDS = ("title-exact", "title-near", "doi", "journal-ref")


def _texts(rng: np.random.Generator, n: int, words: int, pool: int = 4096) -> pl.Series:
    """``n`` strings drawn from a pool of ``pool`` distinct texts of ``words`` words (Arrow stores each row anyway;
    a numpy string array would take 4 bytes a character)."""
    texts = pl.Series([" ".join(rng.choice(_WORDS, words)) for _ in range(pool)])
    return texts.gather(rng.integers(0, pool, n))


def _vocabulary(rng: np.random.Generator, size: int) -> np.ndarray:
    """Function words first (the most frequent ranks), then distinct pseudo-words of 2-4 syllables."""
    words = dict.fromkeys(_FUNCTION_WORDS)
    while len(words) < size:
        k = rng.integers(2, 5, size)
        syl = rng.integers(0, len(_SYLLABLES), (size, 4))
        for row, n in zip(syl, k):
            words.setdefault("".join(_SYLLABLES[row[:n]]), None)
    return np.array(list(words)[:size])


def _titles(rng: np.random.Generator, n: int, vocab_size: int = 40_000) -> pl.Series:
    vocab = pl.Series(_vocabulary(rng, vocab_size))
    weights = 1.0 / (np.arange(vocab_size) + 2.0) ** 1.05
    lengths = rng.integers(8, 18, n)
    words = vocab.gather(rng.choice(vocab_size, int(lengths.sum()), p=weights / weights.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), words.to_arrow())
    return pl.Series("title", lists).list.join(" ").str.to_titlecase()


def _plant_duplicates(rng: np.random.Generator, papers: pl.DataFrame, share: float) -> pl.DataFrame:
    """Turn ``share`` of the papers into re-submissions of others, one of DUP_KINDS each in turn; a source paper
    without the DOI or journal reference its copy shares is given one."""
    m = int(papers.height * share) // len(DUP_KINDS) * len(DUP_KINDS)
    if not m:
        return papers
    picked = rng.choice(papers.height, 2 * m, replace=False)
    plan = pl.DataFrame({"src": picked[:m], "dst": picked[m:], "kind": np.arange(m) % len(DUP_KINDS)})
    rows = papers.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    src = plan.join(rows, left_on="src", right_on="_row").with_columns(
        pl.col("doi").fill_null(pl.format("10.5555/planted.{}", "src")),
        pl.col("journal_ref").fill_null(pl.format("J. Planted Res. 7 (2020) {}", "src")),
    )
    kind = pl.col("kind")
    sources = src.select(pl.col("src").alias("_row"), "doi", "journal_ref")
    copies = src.join(rows.select("_row", pl.col("title").alias("own_title"), pl.col("doi").alias("own_doi"),
                                  pl.col("journal_ref").alias("own_ref")), left_on="dst", right_on="_row").select(
        pl.col("dst").alias("_row"),
        pl.when(kind == 0).then(pl.col("title").str.to_uppercase() + ".")
        .when(kind == 1).then(pl.col("title") + ": Extended Version").otherwise("own_title").alias("title"),
        pl.when(kind == 2).then(pl.col("doi").str.to_uppercase()).otherwise("own_doi").alias("doi"),
        pl.when(kind == 3).then(pl.col("journal_ref").str.replace_all(" ", "")).otherwise("own_ref").alias("journal_ref"),
    )
    return rows.update(sources, on="_row").update(copies, on="_row", include_nulls=True).drop("_row")


def synthetic_tables(n: int, seed: int = 0, start: str = "2015-01-01", end: str = "2025-12-31", n_sub: int = 150,
                     dup_share: float = 0.002):
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
    ids = pl.Series([f"s{i:08d}" for i in range(n)])
    papers = pl.DataFrame(
        {
            "arxiv_id": ids,
            "title": _titles(rng, n),
            "abstract": _texts(rng, n, 140),
            "primary_category": subcats[sub],
            "field": sub_field[sub],
            "published": published,
            "_n": np.arange(n),
            "_doi": rng.random(n) < 0.4,
            "_ref": rng.random(n) < 0.4,
        }
    ).with_columns(pl.col("published").cast(pl.Date)).with_columns(
        pl.when("_doi").then(pl.format("10.5555/synth.{}", "_n")).alias("doi"),
        pl.when("_ref").then(pl.format("J. Synth. Res. {} ({}) {}", pl.col("_n") // 1000, pl.col("published").dt.year(),
                                       pl.col("_n") % 1000)).alias("journal_ref"),
    ).drop("_n", "_doi", "_ref")
    papers = _plant_duplicates(rng, papers, dup_share)
    citations = pl.DataFrame({"arxiv_id": ids, "citation_count": cites,
                              "fetched_at": pl.Series([dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)] * n)})
    return papers, citations
