"""One paper under several arXiv ids: duplicate pairs by rule, and the groups they form.

A paper re-submitted under a new id, or its conference and journal versions posted separately, must not be trained
on under one id and tested on under another. Four rules find such pairs, each vectorized so that 2.9 million papers
take seconds:

* ``title-exact``: the same normalized title (case, accents, punctuation and spacing ignored);
* ``title-near``: word-shingle sets of the normalized titles with Jaccard similarity >= ``title_similarity`` (an
  edited title: a word added, dropped or changed), found with MinHash and LSH (:mod:`near_titles`); every reported
  pair has its exact similarity checked, so no pair below the threshold is reported;
* ``doi``: the same DOI (case-insensitive, resolver prefixes removed; arXiv lists several DOIs separated by spaces);
* ``journal-ref``: the same journal reference up to case, spacing and punctuation ("Phys. Rev. D 80, 012345 (2009)"
  and "Phys.Rev.D80:012345,2009"), when it holds a number.

A DOI or journal reference that more than ``max_papers_per_key`` papers share names a volume or a series rather than
one paper, and is not used (counted). Exact rules link each paper to the smallest id sharing its key (a star: a key
shared by k papers gives k - 1 pairs); near pairs link the smallest ids of their two titles. Groups are the connected
components, named by their smallest id. Everything is deterministic and independent of row order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.datasets.near_titles import near_pairs, repeated
from workflow_scripts.sources.titles import normalize_titles

RULES = ("title-exact", "title-near", "doi", "journal-ref")
PAIR_SCHEMA = {"id_a": pl.String, "id_b": pl.String, "rule": pl.String}
_DOI_PREFIX = r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)"


@dataclass(frozen=True)
class DedupeConfig:
    """The ``scijudge.pairs.dedupe`` config block (its schema holds the defaults and what each key means) and the
    pipeline's seed."""

    title_similarity: float
    shingle_words: int
    bands: int
    rows_per_band: int
    common_shingle_share: float
    max_bucket: int
    max_papers_per_key: int
    seed: int

    @classmethod
    def from_block(cls, block: dict, seed: int) -> "DedupeConfig":
        """The block over the schema's defaults (an empty block: the defaults)."""
        defaults = schema_defaults()["scijudge"]["pairs"]["dedupe"]
        unknown = sorted(set(block) - set(defaults))
        if unknown:
            raise KeyError(f"dedupe config: unknown key(s) {unknown}; allowed: {sorted(defaults)}")
        return cls(**(defaults | block), seed=seed)


# ---------------------------------------------------------------------------------------------------- exact keys


def _doi_keys(papers: pl.DataFrame) -> pl.DataFrame:
    """(arxiv_id, doi_key): one row per DOI of a paper."""
    keys = papers.select("arxiv_id", pl.col("doi").str.to_lowercase().str.strip_chars().alias("doi_key"))
    keys = keys.filter(pl.col("doi_key").is_not_null() & (pl.col("doi_key") != ""))
    several = pl.col("doi_key").str.contains(" ", literal=True)
    split = keys.filter(several).with_columns(pl.col("doi_key").str.split(" ")).explode("doi_key")
    keys = pl.concat([keys.filter(~several), split]).with_columns(pl.col("doi_key").str.replace(_DOI_PREFIX, ""))
    return keys.unique(maintain_order=True)


def _ref_keys(papers: pl.DataFrame) -> pl.DataFrame:
    """(arxiv_id, ref_key): the journal reference without case, spacing or punctuation, when it holds a number."""
    refs = papers.select("arxiv_id", "journal_ref").filter(pl.col("journal_ref").is_not_null())
    key = normalize_titles(refs["journal_ref"]).str.replace_all(" ", "", literal=True)
    return refs.select("arxiv_id", key.alias("ref_key")).filter(pl.col("ref_key").str.contains(r"[0-9]"))


def _star(keyed: pl.DataFrame, key: str, rule: str, max_papers: int | None) -> tuple[pl.DataFrame, int]:
    """Each paper to the smallest id sharing its key (``keyed``: one row per paper and key); (pairs, keys shared
    by more than ``max_papers`` papers)."""
    keyed = keyed.filter(pl.col(key).is_not_null() & (pl.col(key) != ""))
    shared = keyed.filter(keyed[key].is_duplicated()).with_columns(
        pl.len().over(key).alias("_n"), pl.col("arxiv_id").min().over(key).alias("id_a"))
    too_common = 0
    if max_papers is not None:
        too_common = shared.filter(pl.col("_n") > max_papers).select(pl.col(key).n_unique()).item()
        shared = shared.filter(pl.col("_n") <= max_papers)
    pairs = shared.filter(pl.col("arxiv_id") != pl.col("id_a")).select(
        "id_a", pl.col("arxiv_id").alias("id_b"), pl.lit(rule).alias("rule"))
    return pairs, too_common


def near_title_pairs(distinct: pl.DataFrame, cfg: DedupeConfig) -> tuple[pl.DataFrame, dict]:
    """Near-duplicate pairs among distinct normalized titles (``title_key``, ``rep``: the smallest id bearing it),
    named by their ``rep`` ids; and the counts of :func:`near_titles.near_pairs`."""
    scored, counts = near_pairs(distinct["title_key"], cfg, pl.thread_pool_size())
    reps = distinct["rep"]
    pairs = pl.DataFrame({"x": reps.gather(scored["ta"]), "y": reps.gather(scored["tb"])}).select(
        pl.min_horizontal("x", "y").alias("id_a"), pl.max_horizontal("x", "y").alias("id_b"),
        pl.lit("title-near").alias("rule"))
    return pairs, counts


# ---------------------------------------------------------------------------------------------------- all rules


def _key_rules(papers: pl.DataFrame, cfg: DedupeConfig) -> tuple[list[pl.DataFrame], list[str], dict]:
    """The DOI and journal-ref rules, for the columns ``papers`` has: their pairs, names, and keys too common."""
    found, checked, counts = [], [], {}
    if "doi" in papers.columns:
        pairs, counts["doi_keys_too_common"] = _star(_doi_keys(papers), "doi_key", "doi", cfg.max_papers_per_key)
        found.append(pairs)
        checked.append("doi")
    if "journal_ref" in papers.columns:
        pairs, counts["journal_ref_keys_too_common"] = _star(
            _ref_keys(papers), "ref_key", "journal-ref", cfg.max_papers_per_key)
        found.append(pairs)
        checked.append("journal-ref")
    return found, checked, counts


def duplicate_pairs(papers: pl.DataFrame, cfg: DedupeConfig) -> tuple[pl.DataFrame, dict]:
    """All duplicate pairs (id_a < id_b, rule), sorted, and what was checked and found.

    ``papers`` has arxiv_id and title; doi and journal_ref are used when present (a table without them is checked
    by its titles only, and the counts say so).
    """
    # the DOI and journal-ref rules (polars, mostly outside the GIL) run beside the title rules: beside the title
    # normalization, which holds one core, and then beside the near-title search, which takes both
    with ThreadPoolExecutor(1) as pool:
        keyed = pool.submit(_key_rules, papers, cfg)
        titled = papers.select("arxiv_id", normalize_titles(papers["title"]).alias("title_key"))
        titled = titled.filter(pl.col("title_key").is_not_null() & (pl.col("title_key") != ""))
        # titles are compared as hashes first (any hash: equal titles have equal hashes), as strings only when they
        # share one
        shared = repeated(titled["title_key"].hash())
        exact, _ = _star(titled.filter(shared), "title_key", "title-exact", None)
        distinct = pl.concat([
            titled.filter(~shared).select("title_key", pl.col("arxiv_id").alias("rep")),
            titled.filter(shared).group_by("title_key").agg(pl.col("arxiv_id").min().alias("rep")),
        ])
        near, near_counts = near_title_pairs(distinct, cfg)
        key_pairs, key_rules, counts = keyed.result()
    found, checked = [exact, *key_pairs, near], ["title-exact", "title-near", *key_rules]
    counts.update(near_counts)
    out = pl.concat(found).cast(PAIR_SCHEMA).unique().sort("rule", "id_a", "id_b")
    by_rule = dict(out.group_by("rule").len().iter_rows())
    return out, {"rules_checked": checked, "pairs_by_rule": {r: by_rule.get(r, 0) for r in checked}, **counts}


def duplicate_groups(pairs: pl.DataFrame) -> pl.DataFrame:
    """(arxiv_id, group) for every paper in a pair: connected components, ``group`` the component's smallest id."""
    edges = pairs.select("id_a", "id_b").unique()
    both_ways = pl.concat([edges, edges.select(pl.col("id_b").alias("id_a"), pl.col("id_a").alias("id_b"))])
    labels = both_ways.select(pl.col("id_a").alias("arxiv_id")).unique().with_columns(pl.col("arxiv_id").alias("group"))
    while True:  # min-label propagation: as many rounds as the longest chain of pairs, a handful in practice
        updated = (
            both_ways.join(labels, left_on="id_b", right_on="arxiv_id")
            .group_by("id_a").agg(pl.col("group").min().alias("nb"))
            .join(labels, left_on="id_a", right_on="arxiv_id")
            .select(pl.col("id_a").alias("arxiv_id"), pl.min_horizontal("group", "nb").alias("group"))
        )
        if updated.join(labels, on=["arxiv_id", "group"], how="anti").height == 0:
            return updated.sort("arxiv_id")
        labels = updated
