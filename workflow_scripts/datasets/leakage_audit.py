"""Leakage audit: fail when one paper appears in more than one split, under its own id or under another one.

Two checks over the papers of all splits: the same id in two splits, and duplicate pairs by the rules of
:mod:`dedupe` (title-exact, title-near, and with ``--papers`` also doi and journal-ref, looked up by id). It reports
how many duplicate pairs each rule found within a split and across splits, writes what it checked, and exits
non-zero naming every id overlap and cross-split pair, so the pipeline stops before a model is trained or evaluated
on leaked data. An empty split also stops it, as its own error, never as a leak: there is nothing to compare in it,
and nothing to train or evaluate on. Column names are arguments, so every dataset line can reuse it.
"""

from __future__ import annotations

import itertools
import logging
import sys

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import write_json_atomic
from workflow_scripts.common.memory import reuse_freed_memory
from workflow_scripts.datasets.dedupe import DedupeConfig, duplicate_pairs

log = logging.getLogger(__name__)


def split_papers(path: str, id_columns: list[str], title_columns: list[str]) -> pl.DataFrame:
    """One row per paper of a split: id and title, from all paper columns of its rows."""
    df = pl.read_parquet(path, columns=id_columns + title_columns)
    parts = [df.select(pl.col(i).cast(pl.String).alias("id"), pl.col(t).cast(pl.String).alias("title"))
             for i, t in zip(id_columns, title_columns)]
    return pl.concat(parts).unique("id", keep="first", maintain_order=True)


def _with_paper_columns(papers: pl.DataFrame, papers_path: str | None) -> pl.DataFrame:
    """The audited papers as the dedupe rules read them, with DOI and journal reference from the papers table."""
    frame = papers.select(pl.col("id").alias("arxiv_id"), "title")
    if papers_path is None:
        return frame
    extra = pl.scan_parquet(papers_path).select("arxiv_id", "doi", "journal_ref")
    return frame.join(extra.collect(), on="arxiv_id", how="left")


def cross_split_duplicates(keys: dict[str, pl.DataFrame], papers_path: str | None,
                           cfg: DedupeConfig) -> tuple[dict, pl.DataFrame]:
    """Duplicate pairs among the papers of all splits: counts by rule (within a split, across splits) and the
    cross-split pairs themselves (rule, both ids, their splits and titles)."""
    located = pl.concat([k.with_columns(pl.lit(name).alias("split")) for name, k in keys.items()])
    papers = located.unique("id", keep="first", maintain_order=True)
    pairs, counts = duplicate_pairs(_with_paper_columns(papers, papers_path), cfg)
    where = papers.select("id", "split", "title")
    pairs = (
        pairs.join(where.rename({"id": "id_a", "split": "split_a", "title": "title_a"}), on="id_a")
        .join(where.rename({"id": "id_b", "split": "split_b", "title": "title_b"}), on="id_b")
    )
    across = pl.col("split_a") != pl.col("split_b")
    by_rule = {
        rule: {"within_split": pairs.filter((pl.col("rule") == rule) & ~across).height,
               "across_splits": pairs.filter((pl.col("rule") == rule) & across).height}
        for rule in counts["rules_checked"]
    }
    summary = {"rules_checked": counts["rules_checked"], "pairs_by_rule": by_rule,
               "title_near_candidates": counts["title_near_candidates"]}
    return summary, pairs.filter(across).sort("rule", "id_a", "id_b")


def audit(splits: dict[str, str], id_columns: list[str], title_columns: list[str], papers: str | None = None,
          dedupe: DedupeConfig | None = None, max_examples: int = 20) -> dict:
    keys = {name: split_papers(path, id_columns, title_columns) for name, path in splits.items()}
    report = {
        "checked": {"splits": list(splits), "id_columns": id_columns, "title_columns": title_columns,
                    "papers_table": papers},
        "papers_per_split": {name: k.height for name, k in keys.items()},
        "overlaps": [],
    }
    for (a, ka), (b, kb) in itertools.combinations(keys.items(), 2):
        shared = ka.select("id").join(kb.select("id"), on="id").filter(pl.col("id") != "")
        if shared.height:
            report["overlaps"].append(
                {"splits": [a, b], "key": "id", "count": shared.height, "examples": sorted(shared["id"].to_list())[:max_examples]}
            )
    summary, cross = cross_split_duplicates(keys, papers, dedupe or DedupeConfig.from_block({}, 0))
    report["duplicates"] = summary | {"cross_split_pairs": cross.to_dicts()}
    report["empty_splits"] = [name for name, k in keys.items() if k.height == 0]
    report["passed"] = not report["overlaps"] and cross.height == 0 and not report["empty_splits"]
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--split", action="append", required=True, metavar="NAME=PARQUET", help="a split to compare (repeat)")
    p.add_argument("--id-columns", default="paper_a_arxiv_id,paper_b_arxiv_id")
    p.add_argument("--title-columns", default="paper_a_title,paper_b_title")
    p.add_argument("--papers", help="papers.parquet: adds the doi and journal-ref rules (looked up by id)")
    p.add_argument("--dedupe-json", type=json_arg, default={}, help="the duplicate rules' config block (JSON)")
    p.add_argument("--seed", type=int, default=0, help="the pipeline seed (MinHash functions), as the builder's")
    p.add_argument("--out", required=True, help="audit report JSON (written only when the audit passes)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    reuse_freed_memory()  # numpy temporaries by the gigabyte: see common/memory.py
    splits = dict(s.split("=", 1) for s in args.split)
    id_cols, title_cols = args.id_columns.split(","), args.title_columns.split(",")
    if len(id_cols) != len(title_cols):
        p.error("--id-columns and --title-columns must name the same number of paper columns")
    report = audit(splits, id_cols, title_cols, args.papers, DedupeConfig.from_block(args.dedupe_json, args.seed))
    log.info("papers per split: %s", report["papers_per_split"])
    log.info("duplicate pairs by rule (within a split / across splits): %s", report["duplicates"]["pairs_by_rule"])
    if not report["passed"]:
        for o in report["overlaps"]:
            log.error("LEAK: %d paper id(s) in both %s and %s, e.g. %s", o["count"], *o["splits"], o["examples"][:5])
        for pair in report["duplicates"]["cross_split_pairs"]:
            log.error("LEAK (%s): %s in %s (%r) and %s in %s (%r) are one paper", pair["rule"], pair["id_a"],
                      pair["split_a"], pair["title_a"], pair["id_b"], pair["split_b"], pair["title_b"])
        if report["empty_splits"]:
            log.error("split(s) %s have no rows: nothing to audit, train or evaluate there", report["empty_splits"])
        return 1
    write_json_atomic(args.out, report)
    log.info("no paper appears in more than one split, under its own id or another")
    return 0


if __name__ == "__main__":
    sys.exit(main())
