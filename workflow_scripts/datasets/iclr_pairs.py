"""SciJudge's metric-OOD test: pairs of ICLR submissions by their review ratings (arXiv 2603.14473, appendix A.3,
"ICLR Test Set (Metric OOD)": 611 pairs from ICLR 2017-2026).

    python -m workflow_scripts.datasets.iclr_pairs --scores scores.parquet --scores-summary S.json --config-json JSON
        --prompt-json JSON --seed N --out pairs.parquet --stats stats.json --card card.md

Per year, as the paper does and with its values as the config defaults (``scijudge.ood.iclr``):

1. papers with at least ``filters.min_reviews`` rated official reviews and at least one confidence take part (a
   variance needs two ratings; the paper does not say, this is our choice);
2. the two quality filters, both thresholds taken over those papers: a paper goes when its mean reviewer confidence
   is below the ``filters.confidence_quantile`` quantile (the paper's "bottom 50%") or its rating variance (population,
   over its reviews) above the ``1 - filters.variance_quantile`` quantile (the paper's "top 50%"); a paper on a
   threshold stays, so ties at the median are never split arbitrarily;
3. the top and the bottom ``top_share`` of the rest by mean rating, ``floor(top_share * n)`` papers a side, at most
   ``max_per_side``; papers tied on the mean rating at a cut are ordered by a seeded hash of their key;
4. the paper sorts the kept papers by rating and splits them at the median, which gives these two sides; each side is
   shuffled (seeded, per year) and the i-th paper of one is paired with the i-th of the other; the upper paper is the
   preferred one (a pair whose two means are equal has none: dropped and counted).

Across all years the pairs, ordered by a seeded hash of their two papers, alternate the side that shows the preferred
paper as A, so ``correct_answer`` is A for half of them (one more A for an odd count). Rows follow the SciJudge pair
schema (eval/scijudge.py PAIR_COLUMNS): split ``test_iclr``, category and subcategory from config (every ICLR paper
is CS; ``cs.LG``), date = the submission date; ``messages`` hold the prompt of this set (:func:`iclr_prompt`: the
configured SciJudge prompt asking the paper's "which paper is more likely to be accepted"). Extra columns give each
paper's OpenReview id, venue, mean rating, mean confidence, rating std and review count, and the pair's year and
rating difference.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic, write_text_atomic
from workflow_scripts.datasets.scijudge_prompt import PROMPT_KEYS, prompt_settings, render_messages
from workflow_scripts.datasets.stable_hash import hash_strings

log = logging.getLogger(__name__)

REFERENCE_PAIRS = 611  # the paper's count over ICLR 2017-2026
REFERENCE_MEDIAN_DIFF = 6.1  # its median rating difference of a pair
CITATION_QUESTION = "which paper has a higher citation count"  # the question of the SciJudge templates
# per paper of a pair: output suffix -> column of paper_stats
PAPER_ATTRS = {"openreview_id": "paper_id", "venue": "venue", "title": "title", "abstract": "abstract", "date": "date",
               "mean_rating": "mean_rating", "mean_confidence": "mean_confidence", "rating_std": "rating_std",
               "n_reviews": "n_reviews"}
MESSAGE = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
SCHEMA_ATTRS = ("title", "abstract", "date", "category", "subcategory")  # the pair schema's, first in a row
BLOCK_KEYS = ("years", "filters", "top_share", "max_per_side", "split", "category", "subcategory")  # read of the block


class EmptyTestSetError(ValueError):
    """No year gives a pair: an evaluation on it would mean nothing."""


def iclr_prompt(scijudge: Mapping) -> dict[str, str]:
    """This set's prompt settings (scijudge_prompt.PROMPT_KEYS) from the resolved ``scijudge`` config block: its
    variant, system prompt and today, with ``ood.iclr.user_template``, or else ``scijudge.user_template`` asking
    ``ood.iclr.question`` in place of the citation question."""
    block = scijudge["ood"]["iclr"]
    template = block["user_template"]
    if template is None:
        if CITATION_QUESTION not in scijudge["user_template"]:
            raise ValueError(f"config key scijudge.ood.iclr.user_template: scijudge.user_template does not ask "
                             f"{CITATION_QUESTION!r}, whose place the question of this set takes; set this template")
        template = scijudge["user_template"].replace(CITATION_QUESTION, block["question"])
    return {**{k: scijudge[k] for k in PROMPT_KEYS}, "user_template": template}


@dataclass(frozen=True)
class IclrConfig:
    """What the builder reads of config ``scijudge.ood.iclr``, and the prompt settings of :func:`iclr_prompt`."""

    years: tuple[int, ...]
    min_reviews: int
    confidence_quantile: float
    variance_quantile: float
    top_share: float
    max_per_side: int | None
    split: str
    category: str
    subcategory: str
    prompt: dict[str, str]

    @classmethod
    def from_block(cls, block: dict, prompt: dict[str, str]) -> "IclrConfig":
        f = block["filters"]
        return cls(tuple(sorted(block["years"])), f["min_reviews"], f["confidence_quantile"], f["variance_quantile"],
                   block["top_share"], block["max_per_side"], block["split"], block["category"], block["subcategory"],
                   prompt)


def paper_stats(scores: pl.DataFrame) -> pl.DataFrame:
    """Per submission (openreview_scores rows): review count, mean rating, population variance and std of the
    ratings, mean confidence (null where no review gives one)."""
    ratings = pl.col("ratings")
    return scores.with_columns(
        ratings.list.len().cast(pl.Int32).alias("n_reviews"),
        ratings.list.mean().alias("mean_rating"),
        ratings.list.eval(pl.element().var(ddof=0)).list.first().alias("rating_var"),
        ratings.list.eval(pl.element().std(ddof=0)).list.first().alias("rating_std"),
        pl.col("confidences").list.drop_nulls().list.mean().alias("mean_confidence"),
    )


def quality_filter(papers: pl.DataFrame, cfg: IclrConfig) -> tuple[pl.DataFrame, dict]:
    """One year's papers that pass steps 1 and 2, and the count of each reason a paper went."""
    rated = papers.filter(pl.col("n_reviews") >= cfg.min_reviews)
    base = rated.filter(pl.col("mean_confidence").is_not_null())
    counts = {"submissions": papers.height, "too_few_reviews": papers.height - rated.height,
              "no_confidence": rated.height - base.height, "rated": base.height}
    if base.is_empty():
        return base, {**counts, "confidence_threshold": None, "variance_threshold": None, "low_confidence": 0,
                      "high_variance": 0, "low_confidence_and_high_variance": 0, "kept": 0}
    conf_min = float(np.quantile(base["mean_confidence"].to_numpy(), cfg.confidence_quantile))
    var_max = float(np.quantile(base["rating_var"].to_numpy(), 1 - cfg.variance_quantile))
    low, high = base["mean_confidence"] < conf_min, base["rating_var"] > var_max
    kept = base.filter(~low & ~high)
    return kept, {**counts, "confidence_threshold": round(conf_min, 6), "variance_threshold": round(var_max, 6),
                  "low_confidence": int(low.sum()), "high_variance": int(high.sum()),
                  "low_confidence_and_high_variance": int((low & high).sum()), "kept": kept.height}


def _by_rating(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Highest mean rating first; ties by a seeded hash of the key, so no id order decides which tied paper is kept."""
    tie = pl.Series("_tie", hash_strings(frame["key"], seed))
    return frame.with_columns(tie).sort(["mean_rating", "_tie"], descending=True).drop("_tie")


def _side(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    return frame.select(pl.col("key"), *PAPER_ATTRS.values()).select(pl.all().name.prefix(f"{name}_"))


def year_pairs(kept: pl.DataFrame, year: int, cfg: IclrConfig, seed: int) -> tuple[pl.DataFrame, dict]:
    """Steps 3 and 4 on one year's kept papers: pairs as ``upper_*`` / ``lower_*`` columns, and their counts."""
    share = math.floor(cfg.top_share * kept.height)
    per_side = min(share, kept.height // 2, cfg.max_per_side if cfg.max_per_side is not None else share)
    ranked = _by_rating(kept, seed)  # one order for both cuts: the sides never share a paper
    upper, lower = ranked.head(per_side).sort("key"), ranked.tail(per_side).sort("key")
    rng = np.random.default_rng([seed, year])
    upper, lower = upper[rng.permutation(per_side).tolist()], lower[rng.permutation(per_side).tolist()]
    pairs = pl.concat([_side(upper, "upper"), _side(lower, "lower")], how="horizontal")
    tied = pairs["upper_mean_rating"] <= pairs["lower_mean_rating"]
    pairs = pairs.filter(~tied).with_columns(pl.lit(year, pl.Int32).alias("year"))
    counts = {"per_side": per_side, "capped": per_side < min(share, kept.height // 2),
              "equal_mean_rating": int(tied.sum()), "pairs": pairs.height}
    return pairs, counts


def assign_sides(pairs: pl.DataFrame, cfg: IclrConfig, seed: int) -> pl.DataFrame:
    """Rows of the pair schema: pairs ordered by a seeded hash of their two papers alternate upper = A / upper = B."""
    order = hash_strings(pairs.select(pl.concat_str("upper_key", "lower_key", separator="|")).to_series(), seed)
    ranked = pairs.with_columns(pl.Series("_order", order)).sort("_order").with_row_index("_rank")
    upper_is_a = pl.col("_rank") % 2 == 0
    side = {}
    for letter, (mine, other) in (("a", ("upper", "lower")), ("b", ("lower", "upper"))):
        for suffix in PAPER_ATTRS:
            side[f"paper_{letter}_{suffix}"] = (pl.when(upper_is_a).then(pl.col(f"{mine}_{PAPER_ATTRS[suffix]}"))
                                                .otherwise(pl.col(f"{other}_{PAPER_ATTRS[suffix]}")))
    rows = ranked.select(
        (pl.lit(f"{cfg.split}-") + pl.col("upper_paper_id") + pl.lit("-") + pl.col("lower_paper_id")).alias("pair_id"),
        pl.lit(cfg.split).alias("split"),
        pl.when(upper_is_a).then(pl.lit("A")).otherwise(pl.lit("B")).alias("correct_answer"),
        "year",
        (pl.col("upper_mean_rating") - pl.col("lower_mean_rating")).alias("rating_diff"),
        *(expr.alias(name) for name, expr in side.items()),
        *(pl.lit(v).alias(f"paper_{s}_{k}") for s in "ab" for k, v in (("category", cfg.category),
                                                                          ("subcategory", cfg.subcategory))),
    ).sort("year", "pair_id")
    texts = {k: cfg.prompt[k] for k in ("system_prompt", "user_template", "today")}
    messages = [render_messages(r, **texts) for r in rows.iter_rows(named=True)]
    extra = [k for k in PAPER_ATTRS if k not in SCHEMA_ATTRS]
    return rows.with_columns(pl.Series("messages", messages, dtype=MESSAGE)).select(
        "pair_id", "split", "correct_answer", *(f"paper_{s}_{k}" for s in "ab" for k in SCHEMA_ATTRS), "year",
        "rating_diff", *(f"paper_{s}_{k}" for s in "ab" for k in extra), "messages")


def build(scores: pl.DataFrame, cfg: IclrConfig, seed: int) -> tuple[pl.DataFrame, dict]:
    papers = paper_stats(scores)
    years, found = {}, []
    for year in cfg.years:
        kept, counts = quality_filter(papers.filter(pl.col("year") == year), cfg)
        pairs, paired = year_pairs(kept, year, cfg, seed)
        years[str(year)] = {**counts, **paired,
                            "median_rating_diff": _median(pairs["upper_mean_rating"] - pairs["lower_mean_rating"])}
        found.append(pairs)
    total = sum(y["pairs"] for y in years.values())
    if not total:
        raise EmptyTestSetError("no year gives a pair: " + "; ".join(
            f"{y}: {c['submissions']} submissions, {c['kept']} after the filters" for y, c in years.items()))
    rows = assign_sides(pl.concat(found, how="vertical"), cfg, seed)
    stats = {"split": cfg.split, "pairs": rows.height, "reference_pairs": REFERENCE_PAIRS,
             "median_rating_diff": _median(rows["rating_diff"]), "reference_median_rating_diff": REFERENCE_MEDIAN_DIFF,
             "correct_answer": dict(sorted(rows["correct_answer"].value_counts().iter_rows())), "years": years}
    return rows, stats


def _median(values: pl.Series) -> float | None:
    return None if values.is_empty() else round(float(values.median()), 4)


def _cell(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def render_card(stats: dict, cfg: IclrConfig, scores_summary: dict) -> str:
    """The test set's card: rules with the config values, counts per year and per filter, what was left out."""
    lines = [
        f"# SciJudge ICLR test set (metric OOD, split `{cfg.split}`)",
        "",
        f"{stats['pairs']} pairs of ICLR submissions from {', '.join(map(str, cfg.years))} (the paper: "
        f"{REFERENCE_PAIRS} pairs from 2017-2026); median rating difference {_cell(stats['median_rating_diff'])} "
        f"(the paper: {REFERENCE_MEDIAN_DIFF}). The preferred paper is the one of the two with the higher mean review "
        "rating; the prompt (at the end) asks the paper's question of this set.",
        "",
        "## Rules (arXiv 2603.14473, appendix A.3; values from config `scijudge.ood.iclr`)",
        "",
        f"- per year, papers with >= {cfg.min_reviews} rated official reviews and a reviewer confidence take part;",
        f"- quality filters over those: mean confidence below its {cfg.confidence_quantile:g} quantile, or rating "
        f"variance above its {1 - cfg.variance_quantile:g} quantile, and the paper goes (a paper on a threshold "
        "stays);",
        f"- the top and bottom {cfg.top_share:.0%} of the rest by mean rating, floor(share x n) a side"
        + (f", at most {cfg.max_per_side}" if cfg.max_per_side is not None else "") + ";",
        "- each side shuffled (seeded), the i-th of one paired with the i-th of the other; pairs with equal means go;",
        f"- A/B alternates over the pairs in a seeded hash order: correct answers {stats['correct_answer']};",
        f"- field `{cfg.category}`, subcategory `{cfg.subcategory}`; date = the submission date.",
        "",
        "## Counts per year",
        "",
        "| year | submissions | < min reviews | no confidence | low confidence | high variance | both | kept "
        "| confidence >= | variance <= | per side | capped | equal means | pairs | median diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for year, c in stats["years"].items():
        cells = [year, c["submissions"], c["too_few_reviews"], c["no_confidence"], c["low_confidence"],
                 c["high_variance"], c["low_confidence_and_high_variance"], c["kept"], c["confidence_threshold"],
                 c["variance_threshold"], c["per_side"], "yes" if c["capped"] else "no", c["equal_mean_rating"],
                 c["pairs"], c["median_rating_diff"]]
        lines.append("| " + " | ".join(_cell(v) for v in cells) + " |")
    lines += ["", "## Left out before the filters (openreview_scores)", "",
              "| venue | submissions | withdrawn | desk-rejected |", "|---|---|---|---|"]
    for venue in scores_summary.get("venues", []):
        lines.append(f"| {venue} | " + " | ".join(str(scores_summary.get(k, {}).get(venue, 0))
                                                  for k in ("submissions", "withdrawn", "desk_rejected")) + " |")
    rejects, reviews = scores_summary.get("rejects") or {}, scores_summary.get("reviews", 0)
    lines += ["", f"Rejected records: {sum(rejects.values())}{f' {rejects}' if rejects else ''}; reviews without a "
              f"confidence: {scores_summary.get('reviews_without_confidence', 0)} of {reviews}; bad files: "
              f"{len(scores_summary.get('bad_files') or [])}.", "",
              f"## Prompt (variant `{cfg.prompt['prompt']}`, today {cfg.prompt['today']})", "", "```text",
              cfg.prompt["user_template"], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--scores", required=True, type=Path, help="parquet of sources.reviews.openreview_scores")
    p.add_argument("--scores-summary", required=True, type=Path, help="its summary JSON (what was left out)")
    p.add_argument("--config-json", required=True, type=json_arg, help="config scijudge.ood.iclr as JSON")
    p.add_argument("--prompt-json", required=True, type=json_arg, help="this set's prompt settings (iclr_prompt)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, type=Path, help="pairs parquet")
    p.add_argument("--stats", required=True, type=Path, help="stats JSON")
    p.add_argument("--card", required=True, type=Path, help="card (markdown)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    try:
        cfg = IclrConfig.from_block(args.config_json, prompt_settings(args.prompt_json, "--prompt-json"))
    except ValueError as exc:
        p.error(str(exc))
    try:
        rows, stats = build(pl.read_parquet(args.scores), cfg, args.seed)
    except EmptyTestSetError as exc:
        raise SystemExit(f"iclr pairs: {exc}") from None
    write_parquet_atomic(rows, args.out)
    write_json_atomic(args.stats, stats)
    write_text_atomic(args.card, render_card(stats, cfg, json.loads(args.scores_summary.read_text())))
    log.info("iclr pairs: %d (%s) -> %s", rows.height, {y: c["pairs"] for y, c in stats["years"].items()}, args.out)


if __name__ == "__main__":
    main()
