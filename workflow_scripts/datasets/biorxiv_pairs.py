"""The SciJudge bioRxiv biology test (field OOD): citation preference pairs of bioRxiv preprints, with card and stats.

The paper's rule (arXiv 2603.14473, appendix A.5): 160 pairs of bioRxiv papers built by the same citation-based
pairing as the training pairs, within one subdiscipline (the bioRxiv category) and time window, keeping a pair when
c_hi - c_lo >= 24 and (c_hi - c_lo) / c_hi >= 0.75 (median gap 134). The paper names neither the months nor how the
160 were drawn: the windows, the pairing window and the number of pairs are config, the draw a seeded hash of the
pair. Pairs come from :func:`pair_rules.split_half_pairs` (each paper in one pair at most); the more-cited paper is
A for one half of the pairs and B for the other, by the rank of a seeded hash of the pair (never row order).

Rows follow the SciJudge pair schema (eval.scijudge.PAIR_COLUMNS): split "test_biorxiv", category "Biology",
subcategory the bioRxiv category, date the first version's; plus each paper's DOI and count, and ``messages``.

    python -m workflow_scripts.datasets.biorxiv_pairs --papers papers.parquet --citations citations.parquet \
        --pairs-json '{"window": "year", ...}' --prompt-json '{"today": ..., ...}' --seed 1234 --out pairs.parquet \
        --stats stats.json --card card.md
"""

from __future__ import annotations

import logging

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic, write_text_atomic
from workflow_scripts.datasets.pair_rules import Thresholds, split_half_pairs
from workflow_scripts.datasets.scijudge_prompt import render_messages
from workflow_scripts.datasets.scijudge_splits import citation_snapshot, window_expr, window_text
from workflow_scripts.datasets.stable_hash import hash_strings

log = logging.getLogger(__name__)

SPLIT = "test_biorxiv"
FIELD = "Biology"
PAPER_ATTRS = {"doi": "doi", "title": "title", "abstract": "abstract", "date": "published", "subcategory": "category",
               "citations": "citations"}


class NoPairsError(ValueError):
    """No pair survives the filters: an evaluation on this split would mean nothing."""


def load(papers_path: str, citations_path: str) -> tuple[pl.DataFrame, int]:
    """Papers with a citation count (doi, title, abstract, category, published, citations); and how many had none."""
    papers = pl.read_parquet(papers_path, columns=["doi", "title", "abstract", "category", "published"])
    counts = pl.read_parquet(citations_path, columns=["doi", "citation_count"]).rename({"citation_count": "citations"})
    counted = papers.join(counts, on="doi", how="inner")
    return counted.sort("doi"), papers.height - counted.height


def sample(pairs: pl.DataFrame, max_pairs: int | None, seed: int) -> pl.DataFrame:
    """``max_pairs`` pairs, the same ones on every run: the smallest seeded hashes of the pair."""
    if max_pairs is None or pairs.height <= max_pairs:
        return pairs
    key = pairs["hi_id"] + "|" + pairs["lo_id"]
    return pairs.with_columns(_h=pl.Series(hash_strings(key, seed))).sort("_h", "hi_id").head(max_pairs).drop("_h")


def assign_sides(pairs: pl.DataFrame, papers: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Rows of the pair schema: the more-cited paper is A at even ranks of a seeded hash of the pair, B at odd ones,
    so the answers are balanced to within one."""
    rank = pl.Series(hash_strings(pairs["hi_id"] + "|" + pairs["lo_id"], seed + 1)).rank("ordinal")
    hi_is_a = pl.col("_rank") % 2 == 1
    sides = pairs.with_columns(_rank=rank).select(
        pl.when(hi_is_a).then(pl.col("hi_id")).otherwise(pl.col("lo_id")).alias("a"),
        pl.when(hi_is_a).then(pl.col("lo_id")).otherwise(pl.col("hi_id")).alias("b"),
        pl.when(hi_is_a).then(pl.lit("A")).otherwise(pl.lit("B")).alias("correct_answer"),
    )
    attrs = papers.select(pl.col(v).alias(k) for k, v in PAPER_ATTRS.items())
    for side in ("a", "b"):
        named = attrs.rename({k: f"paper_{side}_{k}" for k in PAPER_ATTRS})
        sides = sides.join(named, left_on=side, right_on=f"paper_{side}_doi", how="left")
        sides = sides.with_columns(pl.col(side).alias(f"paper_{side}_doi"))
    return sides.select(
        # by the DOIs in sorted order: the same pair keeps its id whichever side the draw puts each paper on
        pl.concat_str(pl.lit(SPLIT), pl.min_horizontal("a", "b"), pl.max_horizontal("a", "b"), separator="-")
        .alias("pair_id"),
        pl.lit(SPLIT).alias("split"),
        "correct_answer",
        *(c for s in "ab" for c in (f"paper_{s}_title", f"paper_{s}_abstract", f"paper_{s}_date",
                                    pl.lit(FIELD).alias(f"paper_{s}_category"), f"paper_{s}_subcategory",
                                    f"paper_{s}_doi", f"paper_{s}_citations")),
    ).sort("paper_a_subcategory", "pair_id")


def with_messages(rows: pl.DataFrame, prompt: dict) -> pl.DataFrame:
    """The SciJudge prompt of each pair as built (A, B), as the main pairs carry it."""
    messages = [render_messages(r, system_prompt=prompt["system_prompt"], user_template=prompt["user_template"],
                                today=prompt["today"]) for r in rows.iter_rows(named=True)]
    dtype = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    return rows.insert_column(3, pl.Series("messages", messages, dtype=dtype))


def per_category(papers: pl.DataFrame, thresholded: pl.DataFrame, kept: pl.DataFrame) -> dict:
    out = {}
    for name in sorted(set(papers["category"].to_list())):
        out[name] = {"papers_with_count": papers.filter(pl.col("category") == name).height,
                     "pairs_meeting_thresholds": thresholded.filter(pl.col("category") == name).height,
                     "pairs": kept.filter(pl.col("category") == name).height}
    return out


def build(papers_path: str, citations_path: str, cfg: dict, prompt: dict, seed: int) -> tuple[pl.DataFrame, dict]:
    papers, without_count = load(papers_path, citations_path)
    grouped = papers.with_columns(window_expr(cfg["window"]))
    group_size = pl.len().over("category", "window")
    pairable = grouped.filter(group_size >= 2)
    thresholds = Thresholds(cfg["min_diff"], cfg["min_rel_diff"])
    # split_half_pairs names papers by arxiv_id: here a paper's id is its DOI
    candidates = split_half_pairs(pairable.rename({"doi": "arxiv_id"}), ["category", "window"], thresholds)
    kept = sample(candidates, cfg["max_pairs"], seed)
    counts = {
        "papers_with_count": papers.height,
        "papers_without_count": without_count,
        "papers_in_groups_of_two_or_more": pairable.height,
        "pairs_meeting_thresholds": candidates.height,
        "pairs": kept.height,
    }
    if not kept.height:
        raise NoPairsError(f"no {SPLIT} pair: {counts} (thresholds c_hi - c_lo >= {cfg['min_diff']} and "
                           f">= {cfg['min_rel_diff']:.0%} of c_hi, pairs within one category and "
                           f"{window_text(cfg['window'])}); widen the windows or check the citation counts")
    rows = with_messages(assign_sides(kept, papers, seed), prompt)
    gaps = (kept["c_hi"] - kept["c_lo"]).cast(pl.Float64)
    n_a = rows.filter(pl.col("correct_answer") == "A").height
    stats = {
        "split": SPLIT,
        "config": cfg,
        "citation_snapshot": citation_snapshot(citations_path),
        "filters": counts,
        "per_category": per_category(papers, candidates, kept),
        "first_versions": [str(papers["published"].min()), str(papers["published"].max())],
        "answer_A": n_a,
        "answer_B": rows.height - n_a,
        "citation_gap": {"median": gaps.median(), "min": gaps.min(), "max": gaps.max()},
    }
    log.info("%s: %d pairs (%d met the thresholds), per category %s, median gap %s", SPLIT, kept.height,
             candidates.height, {k: v["pairs"] for k, v in stats["per_category"].items()}, gaps.median())
    return rows, stats


def render_card(stats: dict) -> str:
    cfg, f, snap = stats["config"], stats["filters"], stats["citation_snapshot"]
    fetched = snap["first"] if snap["first"] == snap["last"] else f"{snap['first']} .. {snap['last']}"
    table = ["| bioRxiv category | papers with a count | pairs meeting the thresholds | pairs |", "|---|---|---|---|"]
    table += [f"| {name} | {c['papers_with_count']} | {c['pairs_meeting_thresholds']} | {c['pairs']} |"
              for name, c in stats["per_category"].items()]
    limit = ("all of them" if cfg["max_pairs"] is None
             else f"at most {cfg['max_pairs']}, drawn by a seeded hash of the pair")
    return "\n".join([
        "# SciJudge bioRxiv biology test (field OOD)",
        "",
        "Each row asks which of two bioRxiv preprints (A, B) of the same bioRxiv category, first posted in "
        f"{window_text(cfg['window'])}, has more citations: a field and a platform absent from the arXiv training "
        f"pairs. Split `{SPLIT}`, category `{FIELD}`, subcategory the bioRxiv category, date the first version's. "
        "The paper (arXiv 2603.14473, appendix A.5) reports 160 such pairs.",
        "",
        "## Construction",
        "",
        f"- papers: bioRxiv `details` records, one per DOI (latest version's text, first version's date), first "
        f"posted {stats['first_versions'][0]} .. {stats['first_versions'][1]} (inside the harvested windows).",
        f"- pairs: within one category and {window_text(cfg['window'])}, the lower half of the papers by citations "
        f"against the upper half, each paper in one pair at most, kept when c_hi - c_lo >= {cfg['min_diff']} and "
        f"(c_hi - c_lo) / c_hi >= {cfg['min_rel_diff']}; {limit}.",
        f"- sides: the more-cited paper is A in {stats['answer_A']} pairs and B in {stats['answer_B']} (ranks of a "
        "seeded hash of the pair).",
        f"- citation gap c_hi - c_lo: median {stats['citation_gap']['median']}, min {stats['citation_gap']['min']}, "
        f"max {stats['citation_gap']['max']} (the paper: median 134).",
        f"- citation counts by DOI, fetched {fetched}; a count is the number of citations of the preprint's DOI then.",
        "",
        "## Counts per filter",
        "",
        *[f"- {k.replace('_', ' ')}: {v}" for k, v in f.items()],
        "",
        "## Counts per category",
        "",
        *table,
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--papers", required=True, help="bioRxiv papers.parquet (workflow_scripts.sources.biorxiv)")
    p.add_argument("--citations", required=True, help="citations.parquet keyed by doi")
    p.add_argument("--pairs-json", type=json_arg, required=True,
                   help="JSON {window, min_diff, min_rel_diff, max_pairs} (config scijudge.biorxiv.pairs)")
    p.add_argument("--prompt-json", type=json_arg, required=True,
                   help="JSON {today, system_prompt, user_template} (config scijudge)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="pairs parquet")
    p.add_argument("--stats", required=True, help="stats JSON")
    p.add_argument("--card", required=True, help="dataset card (markdown)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    try:
        rows, stats = build(args.papers, args.citations, args.pairs_json, args.prompt_json, args.seed)
    except NoPairsError as exc:
        raise SystemExit(f"bioRxiv pairs: {exc}") from None
    write_parquet_atomic(rows, args.out)
    write_json_atomic(args.stats, stats)
    write_text_atomic(args.card, render_card(stats))


if __name__ == "__main__":
    main()
