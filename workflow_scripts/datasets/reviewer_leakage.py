"""Leakage audit of the Reviewer data: no benchmark paper may reach the teacher's prompt pool.

    python -m workflow_scripts.datasets.reviewer_leakage --pool pool.parquet --benchmark benchmark.parquet --out audit.json

Two papers match by identity (the same ``key`` = source, venue and paper id: PeerRead's numeric ids repeat across
venues, so a bare id names no paper) or by normalized title (case, accents, punctuation and spacing ignored: a
resubmission to a later ICLR under a new id and year). The report holds the counts by rule, every matching pair,
and the pool's own duplicate titles (one paper asked twice); any of them fails the audit, and the step exits
non-zero naming the papers, so the DAG stops before a teacher is asked or a model trained on leaked data.
"""

from __future__ import annotations

import logging
import sys

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_json_atomic
from workflow_scripts.sources.records import normalize_title_expr

log = logging.getLogger(__name__)

COLUMNS = ("key", "title")


def _with_norm(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(*COLUMNS, normalize_title_expr("title").alias("norm"))


def audit(pool: pl.DataFrame, benchmark: pl.DataFrame) -> dict:
    """The matches between ``pool`` and ``benchmark`` (each with key and title) and the pool's duplicate titles."""
    p, b = _with_norm(pool), _with_norm(benchmark)
    pairs = []
    for rule, on in (("id", "key"), ("title", "norm")):
        joined = p.filter(pl.col(on) != "").join(b, on=on, suffix="_benchmark").sort("key")
        for row in joined.iter_rows(named=True):
            pairs.append({"rule": rule, "pool_key": row["key"], "pool_title": row["title"],
                          "benchmark_key": row["key_benchmark" if on == "norm" else "key"],
                          "benchmark_title": row["title_benchmark"]})
    duplicates = (p.filter((pl.col("norm") != "") & pl.col("norm").is_duplicated())
                  .group_by("norm").agg(pl.col("key").sort()).sort("norm"))
    report = {
        "checked": {"rules": {"id": "same key (source, venue, paper id)",
                              "title": "same normalized title (case, accents, punctuation, spacing ignored)"}},
        "papers": {"pool": pool.height, "benchmark": benchmark.height},
        "matches_by_rule": {rule: sum(m["rule"] == rule for m in pairs) for rule in ("id", "title")},
        "matches": pairs,
        "pool_duplicate_titles": [{"normalized_title": t, "keys": keys} for t, keys in duplicates.iter_rows()],
    }
    report["passed"] = not pairs and not report["pool_duplicate_titles"]
    return report


def failure_lines(report: dict) -> list[str]:
    """One line per problem, naming the papers."""
    lines = [f"LEAK ({m['rule']}): pool paper {m['pool_key']} ({m['pool_title']!r}) matches benchmark paper "
             f"{m['benchmark_key']} ({m['benchmark_title']!r})" for m in report["matches"]]
    lines += [f"DUPLICATE: pool papers {d['keys']} share the title {d['normalized_title']!r}"
              for d in report["pool_duplicate_titles"]]
    return lines


def log_report(report: dict) -> bool:
    """Log the outcome; True when the audit passed."""
    if report["passed"]:
        log.info("leakage audit passed: %d pool and %d benchmark papers share no key or normalized title",
                 report["papers"]["pool"], report["papers"]["benchmark"])
        return True
    for line in failure_lines(report):
        log.error("%s", line)
    log.error("leakage audit failed: %s match(es) by rule, %d duplicate title(s) in the pool",
              report["matches_by_rule"], len(report["pool_duplicate_titles"]))
    return False


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pool", required=True)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--out", required=True, help="audit report (JSON), written whether or not the audit passes")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    report = audit(pl.read_parquet(args.pool, columns=list(COLUMNS)),
                   pl.read_parquet(args.benchmark, columns=list(COLUMNS)))
    write_json_atomic(args.out, report)
    return 0 if log_report(report) else 1


if __name__ == "__main__":
    sys.exit(main())
