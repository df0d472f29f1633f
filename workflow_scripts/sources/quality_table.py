"""The data-quality table of the Snakemake report: the summaries of the arXiv readers, of their merge and of the
citation table, side by side as markdown.

    python -m workflow_scripts.sources.quality_table --readers oai_pmh.summary.json dump.summary.json \
        --merge papers.summary.json --citations citations.report.json --out data_quality.md
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import write_text_atomic

log = logging.getLogger(__name__)


def _table(headers: list[str], rows: list[list]) -> str:
    if not rows:
        return ""
    numeric = [all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
               for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.2%}"
    return str(value).replace("|", "\\|")


def _lost(summary: dict):
    lost = summary.get("papers_lost", 0)
    if lost is None:
        return None
    return f"~{lost}" if summary.get("papers_lost_estimated") else lost


def _load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def render(readers: list[dict], merge: dict, citations: dict) -> str:
    cit_step = f"citations ({citations['source']})"
    steps = [(r["source"], r) for r in readers] + [(cit_step, citations)]
    per_step = [
        [r["source"], r.get("pages", 1), r["records"], r["papers"], r.get("outside_sets", 0), r["rejected"],
         len(r["bad_files"]), _lost(r), r["duplicates"], r["duplicates_conflicting"]]
        for r in readers
    ]
    per_step.append(["papers.parquet (merge)", len(merge["inputs"]), sum(merge["inputs"].values()), merge["papers"], 0,
                     0, 0, 0, merge["duplicates_across_readers"], merge["duplicates_conflicting"]])
    per_step.append([cit_step, citations["files_read"], citations["records_with_count"] + citations["unknown_ids"],
                     citations["with_count"], citations["unknown_ids"], citations["rejected"],
                     len(citations["bad_files"]), _lost(citations), citations["duplicates"],
                     citations["duplicates_conflicting"]])
    reasons = [[step, reason, n] for step, s in steps for reason, n in sorted(s["rejects"].items())]
    bad_files = [[step, b["file"], b["kind"], b["detail"]] for step, s in steps for b in s["bad_files"]]
    years = [[year, v["papers"], v["missing"], v["share"]] for year, v in sorted(citations["missing_by_year"].items())]
    return "\n".join([
        "# Data quality of the sources\n",
        "## Records per step\n",
        "Excluded: OAI records outside the configured sets; for the citations, records of papers not in "
        "papers.parquet. Papers lost: records in bad files (~ marks an estimate). Duplicates are resolved by one rule: "
        "the most recent copy wins (updated date, fetch time), on a tie the one read later; conflicting: the dropped "
        "copy's values differed.\n",
        _table(["step", "files", "records", "papers", "excluded", "rejected", "bad files", "papers lost",
                "duplicates resolved", "conflicting"], per_step),
        "## Rejects by reason\n",
        _table(["step", "reason", "count"], reasons) or "No rejects.\n",
        "## Bad files\n",
        _table(["step", "file", "problem", "detail"], bad_files) or "No bad files.\n",
        "## Papers without a citation count, by year of first version\n",
        _table(["year", "papers", "without count", "share"], years) or "No papers.\n",
    ])


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--readers", nargs="+", required=True, type=Path, help="summaries of the arXiv readers")
    p.add_argument("--merge", required=True, type=Path, help="papers.summary.json")
    p.add_argument("--citations", required=True, type=Path, help="citations.report.json")
    p.add_argument("--out", required=True, type=Path, help="markdown table")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    text = render([_load(r) for r in args.readers], _load(args.merge), _load(args.citations))
    write_text_atomic(args.out, text)
    log.info("data-quality table written to %s", args.out)


if __name__ == "__main__":
    main()
