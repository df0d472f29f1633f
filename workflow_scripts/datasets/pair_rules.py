"""Pair selection rules for citation preference pairs, in polars, independent of I/O and prompts.

Two matchers:
* :func:`split_half_pairs` pairs papers inside one group (same subcategory, same time window): sort by citations,
  pair the i-th paper of the lower half with the i-th of the upper half, keep a pair when the gap passes the
  thresholds, and repeat on the papers left over. Sorting once per pass keeps it O(n log n) on millions of papers.
* :func:`ood_pairs` builds the temporal out-of-distribution test: a top-quantile paper against a bottom-quantile
  paper of the same subcategory published within a few days, with a gap threshold scaled by the subcategory spread.

Every result is deterministic: ties are broken by arxiv_id, never by input order or hashing.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

PAIR_COLUMNS = ["hi_id", "lo_id"]


@dataclass(frozen=True)
class Thresholds:
    min_diff: int
    min_rel_diff: float

    def expr(self, hi: str = "c_hi", lo: str = "c_lo") -> pl.Expr:
        diff = pl.col(hi) - pl.col(lo)
        # c_hi > 0 keeps the ratio defined; with min_diff >= 1 it is implied anyway
        return (pl.col(hi) > 0) & (diff >= self.min_diff) & (diff >= self.min_rel_diff * pl.col(hi))


def split_half_pairs(
    papers: pl.DataFrame,
    group_cols: list[str],
    thresholds: Thresholds,
    max_pairs_per_paper: int = 1,
    max_passes: int = 4,
) -> pl.DataFrame:
    """Pairs (hi_id, lo_id, c_hi, c_lo, *group_cols) from ``papers`` (arxiv_id, citations, *group_cols).

    Each paper joins at most ``max_pairs_per_paper`` pairs. Pass p pairs low rank r with high rank
    (n - m) + ((r + p) mod m), m = n // 2, so that a later pass over left-over papers tries new partners.
    """
    # integer sort keys (group id, then arxiv_id order) make every pass's sort several times cheaper than strings
    base = papers.select(["arxiv_id", "citations", *group_cols]).with_columns(
        pl.struct(group_cols).rank("dense").cast(pl.UInt32).alias("_group"),
        pl.col("arxiv_id").rank("ordinal").cast(pl.UInt32).alias("_tie"),
    )
    pool = base
    uses = base.select("arxiv_id", pl.lit(0, pl.Int32).alias("uses"))
    found: list[pl.DataFrame] = []
    seen = pl.DataFrame(schema={"hi_id": pl.String, "lo_id": pl.String})
    for p in range(max_passes * max_pairs_per_paper):
        ranked = (
            pool.sort(["_group", "citations", "_tie"])
            .with_columns(
                pl.int_range(pl.len()).over("_group").alias("rank"),
                pl.len().over("_group").alias("n"),
            )
            .with_columns((pl.col("n") // 2).alias("m"))
            .filter(pl.col("m") > 0)
        )
        low = ranked.filter(pl.col("rank") < pl.col("m")).with_columns(
            (pl.col("n") - pl.col("m") + (pl.col("rank") + p) % pl.col("m")).alias("partner")
        )
        high = ranked.filter(pl.col("rank") >= pl.col("n") - pl.col("m"))
        cand = (
            low.join(high, left_on=["_group", "partner"], right_on=["_group", "rank"], suffix="_h")
            .select(
                pl.col("arxiv_id_h").alias("hi_id"),
                pl.col("arxiv_id").alias("lo_id"),
                pl.col("citations_h").alias("c_hi"),
                pl.col("citations").alias("c_lo"),
                *group_cols,
            )
            .filter(thresholds.expr())
        )
        if max_pairs_per_paper > 1:  # with one pair per paper both papers leave the pool, so no pair can repeat
            cand = cand.join(seen, on=PAIR_COLUMNS, how="anti")
        if cand.height == 0:
            break
        found.append(cand)
        used_now = pl.concat([cand.select(pl.col("hi_id").alias("arxiv_id")), cand.select(pl.col("lo_id").alias("arxiv_id"))])
        if max_pairs_per_paper == 1:
            pool = pool.join(used_now, on="arxiv_id", how="anti")
            continue
        seen = pl.concat([seen, cand.select(PAIR_COLUMNS)])
        uses = uses.join(used_now.group_by("arxiv_id").len(), on="arxiv_id", how="left").select(
            "arxiv_id", (pl.col("uses") + pl.col("len").fill_null(0)).cast(pl.Int32).alias("uses")
        )
        pool = base.join(uses.filter(pl.col("uses") < max_pairs_per_paper), on="arxiv_id", how="semi")
    if not found:
        return pl.DataFrame(
            schema={"hi_id": pl.String, "lo_id": pl.String, "c_hi": base.schema["citations"], "c_lo": base.schema["citations"],
                    **{c: base.schema[c] for c in group_cols}}
        )
    return pl.concat(found).sort([*group_cols, "hi_id", "lo_id"])


@dataclass(frozen=True)
class OodRule:
    hi_quantile: float = 0.75
    lo_quantile: float = 0.25
    max_days_apart: int = 5
    rel_diff: float = 0.5
    ds_floor: float = 12.0
    ds_scale: float = 0.7
    ds_quantiles: tuple[float, float] = (0.01, 0.99)


def ood_pairs(papers: pl.DataFrame, eligible: pl.DataFrame, rule: OodRule, max_rounds: int = 20) -> pl.DataFrame:
    """One-to-one pairs (hi_id, lo_id, c_hi, c_lo, subcategory) for the temporal OOD test.

    ``papers`` (arxiv_id, citations, subcategory, published) defines the subcategory quantiles; only the
    ``eligible`` arxiv_ids are paired. A pair needs c_hi >= q_hi, c_lo <= q_lo of the subcategory, first-version
    dates at most ``max_days_apart`` apart and c_hi - c_lo >= max(rel_diff * c_hi, d_s), where
    d_s = max(ds_floor, ds_scale * (q99 - q1)). Matching is greedy in rounds: each high paper proposes its
    closest-in-time candidate, each low paper accepts the first proposal (by arxiv_id).
    """
    q_lo_ds, q_hi_ds = rule.ds_quantiles
    stats = papers.group_by("subcategory").agg(
        pl.col("citations").quantile(rule.hi_quantile, "linear").alias("q_hi"),
        pl.col("citations").quantile(rule.lo_quantile, "linear").alias("q_lo"),
        pl.col("citations").quantile(q_hi_ds, "linear").alias("q99"),
        pl.col("citations").quantile(q_lo_ds, "linear").alias("q1"),
    ).with_columns(pl.max_horizontal(pl.lit(rule.ds_floor), rule.ds_scale * (pl.col("q99") - pl.col("q1"))).alias("d_s"))
    pool = (
        papers.join(eligible.select("arxiv_id"), on="arxiv_id", how="semi")
        .join(stats, on="subcategory")
        .with_columns(pl.col("published").cast(pl.Int32).alias("day"))
    )
    hi = pool.filter(pl.col("citations") >= pl.col("q_hi")).select(
        pl.col("arxiv_id").alias("hi_id"), pl.col("citations").alias("c_hi"), "subcategory", pl.col("day").alias("day_hi"), "d_s"
    )
    offsets = pl.DataFrame({"offset": list(range(-rule.max_days_apart, rule.max_days_apart + 1))}, schema={"offset": pl.Int32})
    # a paper sitting on both quantiles (degenerate subcategory) is only a high candidate, so no paper is used twice
    lo = (
        pool.filter((pl.col("citations") <= pl.col("q_lo")) & (pl.col("citations") < pl.col("q_hi")))
        .select(pl.col("arxiv_id").alias("lo_id"), pl.col("citations").alias("c_lo"), "subcategory", pl.col("day").alias("day_lo"))
        .join(offsets, how="cross")
        .with_columns((pl.col("day_lo") + pl.col("offset")).alias("day_hi"))
    )
    cand = (
        hi.join(lo, on=["subcategory", "day_hi"])
        .filter(
            (pl.col("hi_id") != pl.col("lo_id"))
            & ((pl.col("c_hi") - pl.col("c_lo")) >= pl.max_horizontal(rule.rel_diff * pl.col("c_hi"), pl.col("d_s")))
        )
        .with_columns(pl.col("offset").abs().alias("gap"))
        .select("hi_id", "lo_id", "c_hi", "c_lo", "subcategory", "gap")
    )
    matched: list[pl.DataFrame] = []
    for _ in range(max_rounds):
        if cand.height == 0:
            break
        proposals = cand.sort(["hi_id", "gap", "lo_id"]).unique("hi_id", keep="first", maintain_order=True)
        accepted = proposals.sort(["lo_id", "hi_id"]).unique("lo_id", keep="first", maintain_order=True)
        matched.append(accepted)
        cand = cand.join(accepted.select("hi_id"), on="hi_id", how="anti").join(accepted.select("lo_id"), on="lo_id", how="anti")
    if not matched:
        return cand.drop("gap").clear()
    return pl.concat(matched).drop("gap").sort(["subcategory", "hi_id", "lo_id"])
