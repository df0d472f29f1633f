"""BioReview concern extraction: the demo extractor answering through the real demo server and llm.batch, and the
strict validation of its answers (rejected reports, items dropped per kind, short texts, cache hits on a rerun)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import polars as pl
import pytest

from tests.workflow_runner import ROOT
from workflow_scripts.common.io import Rejects
from workflow_scripts.datasets import bioreview_extraction as extraction
from workflow_scripts.datasets.bioreview_prompts import CONCERN_EXTRACTION_SYSTEM, REPORT_PREFIX
from workflow_scripts.demo.bioreview_extractor import BAD_ITEMS, answer_kind, concern_sentence, report_hash
from workflow_scripts.llm.batch import read_requests
from workflow_scripts.sources.biomed.tables import report_id, reports_frame

# the problem each of the stand-in's BAD_ITEMS makes, in its order
BAD_ITEM_PROBLEMS = ("unknown_category", "unknown_severity", "missing_keys", "extra_keys", "text_not_string")
SHORT = concern_sentence("writing_clarity", "minor", "Typos.")  # under 10 characters: dropped


def review(i: int) -> str:
    return " ".join([
        f"The authors study pathway {i} in mouse liver. The work is interesting.",
        concern_sentence("statistical_methodology", "major", f"Only {i % 7 + 3} mice per group were used for the "
                                                             "survival analysis."),
        concern_sentence("figure_issue", "minor", "Panel 3B lacks a scale bar, so sizes cannot be judged."),
        SHORT,
        concern_sentence("missing_experiment", "optional", f"A rescue experiment for gene {i} would help."),
    ])


def report_row(i: int, text: str) -> dict:
    article = f"elife:{10000 + i}v1"
    return {"report_id": report_id(article, 1, 1), "article_id": article, "source": "elife", "reviewer": 1,
            "round": 1, "kind": "referee-report", "text": text, "recommendation": None}


def reports_covering_every_answer_kind() -> list[dict]:
    """Reports chosen (deterministically) so that the stand-in answers every kind, every bad item included."""
    rows, kinds, bad = [], set(), set()
    i = 0
    while not (kinds >= {"not_array", "object", "bad_item", "fenced", "prose", "plain"} and len(bad) == 5):
        text = review(i)
        kinds.add(answer_kind(text))
        if answer_kind(text) == "bad_item":
            bad.add(report_hash(text)[1] % len(BAD_ITEMS))
        rows.append(report_row(i, text))
        i += 1
    return rows


def run_batch(tmp_path, name: str) -> dict:
    endpoint = {"kind": "demo", "demo": {"policy": "bioreview_extractor"}, "limits": {"max_concurrency": 8}}
    subprocess.run([sys.executable, "-m", "workflow_scripts.llm.batch", "--use", "extractor", "--endpoint",
                    json.dumps(endpoint), "--cache-dir", str(tmp_path / "cache"), "--requests",
                    str(tmp_path / "requests.jsonl"), "--answers", str(tmp_path / f"{name}.jsonl"), "--summary",
                    str(tmp_path / f"{name}_summary.json"), "--rejects", str(tmp_path / "llm_rejects.jsonl")],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    return json.loads((tmp_path / f"{name}_summary.json").read_text())


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extraction")
    rows = reports_covering_every_answer_kind()
    blank = report_row(999, "  \n")
    long = report_row(998, review(998) + " Filler sentence." * 600)
    reports = reports_frame(rows + [blank, long])
    reports.write_parquet(tmp / "reports.parquet")
    assert extraction.main(["requests", "--reports", str(tmp / "reports.parquet"), "--max-report-chars", "6000",
                            "--params-json", '{"temperature": 0, "max_tokens": 2048}',
                            "--out", str(tmp / "requests.jsonl")]) == 0
    first = run_batch(tmp, "answers")
    assert extraction.main(["build", "--reports", str(tmp / "reports.parquet"), "--max-report-chars", "6000",
                            "--answers", str(tmp / "answers.jsonl"), "--llm-summary", str(tmp / "answers_summary.json"),
                            "--out", str(tmp / "concerns.parquet"), "--rejects", str(tmp / "rejects.jsonl"),
                            "--counts", str(tmp / "counts.json")]) == 0
    return {"dir": tmp, "rows": rows + [long], "first": first, "concerns": pl.read_parquet(tmp / "concerns.parquet"),
            "counts": json.loads((tmp / "counts.json").read_text()),
            "rejects": [json.loads(line) for line in (tmp / "rejects.jsonl").read_text().splitlines()]}


def test_requests_carry_the_prompt_and_the_cut_report_and_skip_blank_reports(extracted):
    requests = dict(read_requests(extracted["dir"] / "requests.jsonl"))
    assert len(requests) == len(extracted["rows"])  # the blank report is not asked
    long = requests[report_id("elife:10998v1", 1, 1)]
    assert long.messages[0] == {"role": "system", "content": CONCERN_EXTRACTION_SYSTEM}
    assert long.messages[1]["content"].startswith(REPORT_PREFIX) and len(long.messages[1]["content"]) == len(
        REPORT_PREFIX) + 6000
    assert long.params == {"temperature": 0, "max_tokens": 2048}
    assert extracted["counts"]["reports_cut"] == 1 and extracted["counts"]["max_report_chars"] == 6000


def test_valid_concerns_are_kept_and_bad_answers_rejected_or_counted_per_kind(extracted):
    rows, counts, concerns = extracted["rows"], extracted["counts"], extracted["concerns"]
    kinds = {row["report_id"]: answer_kind(row["text"]) for row in rows}
    unparsed = {rid for rid, kind in kinds.items() if kind in ("not_array", "object")}
    rejected = {r["record"]: r["reason"].split(":")[0] for r in extracted["rejects"]}
    assert rejected == {**{rid: "not_array" for rid in unparsed}, report_id("elife:10999v1", 1, 1): "empty_report"}
    assert "a JSON dict, not an array" in " ".join(r["reason"] for r in extracted["rejects"])
    parsed = [row for row in rows if row["report_id"] not in unparsed]
    expected_bad = Counter(BAD_ITEM_PROBLEMS[report_hash(row["text"])[1] % len(BAD_ITEMS)] for row in parsed
                           if kinds[row["report_id"]] == "bad_item")
    assert counts["dropped"] == {"not_object": 0, **{k: expected_bad[k] for k in BAD_ITEM_PROBLEMS},
                                 "short_text": len(parsed)}
    assert all(expected_bad[k] >= 1 for k in BAD_ITEM_PROBLEMS)
    # three valid concerns per parsed report, in report order, never re-labelled
    assert concerns.height == counts["kept"] == 3 * len(parsed)
    assert concerns["report_id"].to_list() == [row["report_id"] for row in parsed for _ in range(3)]
    assert concerns["category"].to_list()[:3] == ["statistical_methodology", "figure_issue", "missing_experiment"]
    assert concerns["severity"].to_list()[:3] == ["major", "minor", "optional"]
    assert set(concerns["category"]) <= set(extraction.CATEGORIES) and "Typos." not in concerns["text"].to_list()
    assert counts["items"] == 4 * len(parsed) + sum(expected_bad.values())
    assert counts["per_source"] == {"elife": {"reports": len(rows) + 1, "concerns": concerns.height}}
    assert counts["llm"]["model"] == "demo/bioreview_extractor@1" and counts["llm"]["requests"] == len(rows)


def test_a_rerun_is_answered_from_the_cache(extracted, tmp_path):
    second = run_batch(extracted["dir"], "answers_again")
    assert second["requests"] == 0 and second["cache_hits"] == extracted["first"]["requests"] == len(extracted["rows"])
    assert (extracted["dir"] / "answers_again.jsonl").read_text().count('"cached": true') == len(extracted["rows"])


@pytest.mark.parametrize("text, expected", [
    ('[{"text": "A real concern here.", "category": "other", "severity": "minor"}]', 1),
    ('```json\n[]\n```', 0),
    ('Sure. [{"text": "A real concern here.", "category": "other", "severity": "minor"}] Done.', 1),
])
def test_answers_are_unfenced_and_found_inside_prose(text, expected):
    assert len(extraction.parse_array(text)) == expected


@pytest.mark.parametrize("text", ['{"concerns": []}', "No concerns found.", "[1, 2", '"just a string"'])
def test_an_answer_without_a_json_array_is_not_an_array(text):
    with pytest.raises(extraction.NotAnArray):
        extraction.parse_array(text)


def test_an_answer_that_is_not_ok_or_missing_is_a_reject_naming_the_report():
    reports = reports_frame([report_row(1, review(1)), report_row(2, review(2))])
    answers = {report_id("elife:10001v1", 1, 1): {"status": "truncated", "problem": "truncated: finish_reason length",
                                                  "raw": "[{"}}
    rejects = Rejects()
    concerns, _ = extraction.extract(reports, answers, rejects, "answers.jsonl")
    assert concerns == []
    assert [(r["record"], r["reason"].split(":")[0]) for r in rejects.rows] == [
        (report_id("elife:10001v1", 1, 1), "truncated"), (report_id("elife:10002v1", 1, 1), "no_answer")]


def test_item_checks_run_in_a_fixed_order():
    good = {"text": "A real concern here.", "category": "design_flaw", "severity": "major"}
    assert extraction.item_problem(good) is None
    assert extraction.item_problem("a string concern") == "not_object"
    assert extraction.item_problem({"text": "x", "category": "Design_Flaw"}) == "missing_keys"
    assert extraction.item_problem({**good, "category": "Design_Flaw"}) == "unknown_category"  # no case folding
    assert extraction.item_problem({**good, "text": "  short  "}) == "short_text"
