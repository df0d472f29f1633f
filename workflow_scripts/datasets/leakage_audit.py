"""Leakage audit: fail when one paper (same id, or same normalized title) appears in more than one split.

Writes what it checked (papers per split, keys compared, overlaps found) and exits non-zero on any overlap, so the
pipeline stops before a model is trained or evaluated on leaked data. An empty split also stops it, as its own
error, never as a leak: there is nothing to compare in it, and nothing to train or evaluate on. Column names are
arguments, so every dataset line can reuse it.
"""

from __future__ import annotations

import itertools
import logging
import sys

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic
from workflow_scripts.sources.records import normalize_title_expr

log = logging.getLogger(__name__)


def paper_keys(path: str, id_columns: list[str], title_columns: list[str]) -> pl.DataFrame:
    """One row per paper occurrence: id and normalized title, from all paper columns of a split."""
    df = pl.read_parquet(path, columns=id_columns + title_columns)
    parts = [
        df.select(pl.col(i).cast(pl.String).alias("id"), normalize_title_expr(t).alias("title"))
        for i, t in zip(id_columns, title_columns)
    ]
    return pl.concat(parts).unique()


def audit(splits: dict[str, str], id_columns: list[str], title_columns: list[str], max_examples: int = 20) -> dict:
    keys = {name: paper_keys(path, id_columns, title_columns) for name, path in splits.items()}
    report = {
        "checked": {"splits": list(splits), "keys": ["id", "normalized title"], "id_columns": id_columns, "title_columns": title_columns},
        "papers_per_split": {name: k.height for name, k in keys.items()},
        "overlaps": [],
    }
    for (a, ka), (b, kb) in itertools.combinations(keys.items(), 2):
        for key in ("id", "title"):
            shared = ka.select(key).unique().join(kb.select(key).unique(), on=key).filter(pl.col(key) != "")
            if shared.height:
                report["overlaps"].append(
                    {"splits": [a, b], "key": key, "count": shared.height, "examples": sorted(shared[key].to_list())[:max_examples]}
                )
    report["empty_splits"] = [name for name, k in keys.items() if k.height == 0]
    report["passed"] = not report["overlaps"] and not report["empty_splits"]
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--split", action="append", required=True, metavar="NAME=PARQUET", help="a split to compare (repeat)")
    p.add_argument("--id-columns", default="paper_a_arxiv_id,paper_b_arxiv_id")
    p.add_argument("--title-columns", default="paper_a_title,paper_b_title")
    p.add_argument("--out", required=True, help="audit report JSON (written only when the audit passes)")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    splits = dict(s.split("=", 1) for s in args.split)
    id_cols, title_cols = args.id_columns.split(","), args.title_columns.split(",")
    if len(id_cols) != len(title_cols):
        p.error("--id-columns and --title-columns must name the same number of paper columns")
    report = audit(splits, id_cols, title_cols)
    log.info("papers per split: %s", report["papers_per_split"])
    if not report["passed"]:
        for o in report["overlaps"]:
            log.error("LEAK: %d paper(s) share their %s between %s and %s, e.g. %s", o["count"], o["key"], *o["splits"], o["examples"][:5])
        if report["empty_splits"]:
            log.error("split(s) %s have no rows: nothing to audit, train or evaluate there", report["empty_splits"])
        return 1
    write_json_atomic(args.out, report)
    log.info("no paper appears in more than one split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
