"""BioReview concern extraction: one LLM call per reviewer report, answers validated strictly into a concerns table.

    python -m workflow_scripts.datasets.bioreview_extraction requests --reports elife.parquet plos.parquet ... \\
        --params-json '{"temperature": 0, "max_tokens": 2048}' --max-report-chars 6000 --out requests.jsonl
    python -m workflow_scripts.llm.batch --use extractor ... --requests requests.jsonl --answers answers.jsonl
    python -m workflow_scripts.datasets.bioreview_extraction build --reports ... --answers answers.jsonl \\
        --max-report-chars 6000 [--llm-summary llm_summary.json] --out concerns.parquet --rejects rejects.jsonl \\
        --counts counts.json

``requests``: one request per report of the source tables (id = report_id): the system prompt
:data:`.bioreview_prompts.CONCERN_EXTRACTION_SYSTEM` and the user message ``"Reviewer report:\\n\\n"`` + the report's
first ``--max-report-chars`` characters (the reference's cut, 6000; the count of reports cut is logged and
recorded). A report with blank text is not asked. The answers go through :mod:`workflow_scripts.llm.batch` (cache,
limits, retries, budget), so a rerun sends nothing.

``build`` reads each answer as the reference does (a fenced block is unwrapped, then the whole text, then the span
from the first ``[`` to the last ``]``) but keeps only what is valid, where the reference re-labels:

* a report whose answer is not ``ok`` (truncated, failed, not asked), is missing, or is not a JSON array: one rejects
  row (file = the answers file, record = report_id, reason ``<kind>: <detail>``); blank reports too (``empty_report``);
* an item that is not an object with exactly the keys text / category / severity, whose text is not a string, or
  whose category (:data:`CATEGORIES`, case-sensitive) or severity (major / minor / optional) is unknown: dropped and
  counted by kind (the first failing check, in that order); the reference maps such values to ``other`` / ``minor``
  instead, which would put labels no one gave into the training targets;
* a text (whitespace-trimmed) under ``--min-text-chars`` (10) characters: dropped and counted (``short_text``).

``[]`` is a valid answer (a report with no weakness). Output: one row per kept concern, in report then answer order:
report_id, article_id, source, reviewer, round, text, category, severity; the counts JSON has every number above,
per category, severity and source, the LLM run's requests, cache hits, tokens and cost (from ``--llm-summary``), and
the extractor's model name (and, for a demo stand-in, its description).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic, write_text_atomic
from workflow_scripts.datasets.bioreview_inputs import CONCERN_SCHEMA, read_reports
from workflow_scripts.datasets.bioreview_prompts import (CATEGORIES, CONCERN_EXTRACTION_SYSTEM, CONCERN_KEYS,
                                                         REPORT_PREFIX, SEVERITIES)
from workflow_scripts.llm.batch import read_answer_rows, request_lines

log = logging.getLogger(__name__)

MIN_TEXT_CHARS = 10
ITEM_PROBLEMS = ("not_object", "missing_keys", "extra_keys", "text_not_string", "unknown_category",
                 "unknown_severity", "short_text")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.S)


def report_messages(text: str, max_chars: int) -> list[dict]:
    return [{"role": "system", "content": CONCERN_EXTRACTION_SYSTEM},
            {"role": "user", "content": REPORT_PREFIX + text[:max_chars]}]


def blank_text() -> pl.Expr:
    """Reports without text: never asked, each a rejects row of the build."""
    return pl.col("text").fill_null("").str.strip_chars() == ""


# ---------------------------------------------------------------------------------------------------------------------
# answers


class NotAnArray(ValueError):
    """The answer holds no JSON array; the message says what it holds instead."""


def parse_array(text: str) -> list:
    """The JSON array of an answer: the fenced block's content (or the whole text), else its ``[ ... ]`` span."""
    fence = _FENCE.search(text)
    body = fence.group(1) if fence else text.strip()
    try:
        value = json.loads(body)
    except ValueError:
        start, end = body.find("["), body.rfind("]")
        if start < 0 or end < start:
            raise NotAnArray("no JSON array in the answer") from None
        try:
            value = json.loads(body[start:end + 1])
        except ValueError as exc:
            raise NotAnArray(f"the [...] span is not valid JSON ({exc})") from None
    if not isinstance(value, list):
        raise NotAnArray(f"the answer is a JSON {type(value).__name__}, not an array")
    return value


def item_problem(item: Any, min_text_chars: int = MIN_TEXT_CHARS) -> str | None:
    """Why an answer item is not a concern (one of ITEM_PROBLEMS), or None for a valid one."""
    if not isinstance(item, dict):
        return "not_object"
    if not set(CONCERN_KEYS) <= set(item):
        return "missing_keys"
    if set(item) - set(CONCERN_KEYS):
        return "extra_keys"
    if not isinstance(item["text"], str):
        return "text_not_string"
    if item["category"] not in CATEGORIES:
        return "unknown_category"
    if item["severity"] not in SEVERITIES:
        return "unknown_severity"
    if len(item["text"].strip()) < min_text_chars:
        return "short_text"
    return None


def extract(reports: pl.DataFrame, answers: Mapping[str, dict], rejects: Rejects, answers_file: str, *,
            min_text_chars: int = MIN_TEXT_CHARS) -> tuple[list[dict], dict]:
    """The kept concerns of every report in table order, and the counts of what was rejected and dropped."""
    concerns: list[dict] = []
    dropped: Counter = Counter()
    counts = Counter()
    for report in reports.with_columns(blank_text().alias("blank")).iter_rows(named=True):
        rid = report["report_id"]
        if report["blank"]:
            rejects.add(answers_file, rid, "empty_report: the report has no text (not asked)")
            continue
        answer = answers.get(rid)
        if answer is None:
            rejects.add(answers_file, rid, "no_answer: the answers file has no line for this report")
            continue
        if answer.get("status") != "ok":
            rejects.add(answers_file, rid, f"{answer.get('status')}: {answer.get('problem')}", answer.get("raw"))
            continue
        try:
            items = parse_array(answer.get("text") or "")
        except NotAnArray as exc:
            rejects.add(answers_file, rid, f"not_array: {exc}", answer.get("text"))
            continue
        counts["answers_parsed"] += 1
        counts["items"] += len(items)
        kept_before = len(concerns)
        for item in items:
            problem = item_problem(item, min_text_chars)
            if problem:
                dropped[problem] += 1
                continue
            concerns.append({"report_id": rid, "article_id": report["article_id"], "source": report["source"],
                             "reviewer": report["reviewer"], "round": report["round"], "text": item["text"].strip(),
                             "category": item["category"], "severity": item["severity"]})
        counts["reports_without_concern"] += len(concerns) == kept_before
    stats = {"answers_parsed": counts["answers_parsed"], "items": counts["items"], "kept": len(concerns),
             "dropped": {kind: dropped[kind] for kind in ITEM_PROBLEMS},
             "reports_without_concern": counts["reports_without_concern"]}
    return concerns, stats


def concerns_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CONCERN_SCHEMA, orient="row")


def llm_record(summary: Mapping | None) -> dict | None:
    """What the counts keep of the LLM run summary: the endpoint's model (and stand-in), calls, tokens, cost."""
    if not summary:
        return None
    endpoint = summary.get("endpoint") or {}
    keys = ("requests", "cache_hits", "tokens_in", "tokens_out", "cached_tokens_in", "cached_tokens_out", "not_asked",
            "failures", "cost", "wall_s")
    return {"model": endpoint.get("model"), "stand_in": endpoint.get("stand_in"), **{k: summary.get(k) for k in keys}}


def build(reports: pl.DataFrame, answers: Mapping[str, dict], *, answers_file: str, max_report_chars: int,
          min_text_chars: int, summary: Mapping | None) -> tuple[pl.DataFrame, Rejects, dict]:
    rejects = Rejects()
    rows, stats = extract(reports, answers, rejects, answers_file, min_text_chars=min_text_chars)
    concerns = concerns_frame(rows)
    text_chars = reports["text"].fill_null("").str.len_chars()
    counts = {
        "reports": reports.height,
        "reports_cut": int((text_chars > max_report_chars).sum()),
        "max_report_chars": max_report_chars,
        "min_text_chars": min_text_chars,
        "rejected": len(rejects),
        "rejects": rejects.counts(),
        **stats,
        "per_category": {c: int((concerns["category"] == c).sum()) for c in CATEGORIES},
        "per_severity": {s: int((concerns["severity"] == s).sum()) for s in SEVERITIES},
        "per_source": {source: {"reports": int((reports["source"] == source).sum()),
                                "concerns": int((concerns["source"] == source).sum())}
                       for source in sorted(reports["source"].unique().to_list())},
        "llm": llm_record(summary),
    }
    log.info("%d report(s): %d rejected %s; %d item(s), %d concern(s) kept, dropped %s", reports.height,
             len(rejects), rejects.counts(), stats["items"], len(rows),
             {k: v for k, v in stats["dropped"].items() if v})
    return concerns, rejects, counts


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("requests", help="one extraction request per reviewer report")
    r.add_argument("--params-json", type=json_arg, required=True, help="sampling parameters of every request")
    r.add_argument("--out", required=True)
    b = sub.add_parser("build", help="validate the answers into the concerns table")
    b.add_argument("--answers", required=True, help="llm.batch's answers file")
    b.add_argument("--min-text-chars", type=int, default=MIN_TEXT_CHARS, help="shorter concern texts are dropped")
    b.add_argument("--llm-summary", default=None, help="llm.batch's run summary (requests, tokens, cost)")
    b.add_argument("--out", required=True, help="concerns parquet")
    b.add_argument("--rejects", required=True)
    b.add_argument("--counts", required=True, help="counts JSON")
    for sp in (r, b):
        sp.add_argument("--reports", nargs="+", required=True, help="reports parquet of each source")
        sp.add_argument("--max-report-chars", type=int, required=True, help="the report text sent is cut here")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.max_report_chars < 1:
        p.error("--max-report-chars must be positive")
    reports = read_reports(args.reports)
    if args.command == "requests":
        if not isinstance(args.params_json, dict):
            p.error("--params-json must be a JSON object")
        asked = reports.filter(~blank_text())
        rows = ((rid, report_messages(text, args.max_report_chars)) for rid, text in
                asked.select("report_id", "text").iter_rows())
        write_text_atomic(args.out, request_lines(rows, args.params_json))
        log.info("%d extraction request(s) -> %s (%d blank report(s) not asked, %d cut at %d characters)",
                 asked.height, args.out, reports.height - asked.height,
                 int((asked["text"].str.len_chars() > args.max_report_chars).sum()), args.max_report_chars)
        return 0
    answers = read_answer_rows(args.answers, reports["report_id"], complete=False)
    summary = json.loads(Path(args.llm_summary).read_text()) if args.llm_summary else None
    concerns, rejects, counts = build(reports, answers, answers_file=args.answers,
                                      max_report_chars=args.max_report_chars, min_text_chars=args.min_text_chars,
                                      summary=summary)
    rejects.write(args.rejects)
    write_parquet_atomic(concerns, args.out)
    write_json_atomic(args.counts, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
