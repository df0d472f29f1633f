"""The bioRxiv biology test pairs: the paper's thresholds on a hand-made table, the draw and the A/B balance, the
demo's bioRxiv world, and the rules from demo snapshot to pairs through Snakemake."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from tests.workflow_runner import planned_jobs, snakemake, write_config
from workflow_scripts.datasets import biorxiv_pairs
from workflow_scripts.demo import biorxiv as demo_biorxiv
from workflow_scripts.eval.scijudge import PAIR_COLUMNS, load_pairs
from workflow_scripts.sources.biorxiv import Window

PROMPT = {"today": "2025-12-10", "system_prompt": "Judge.", "user_template": "A: {title_a} ({date_a}) B: {title_b}"}
RULE = {"window": "year", "min_diff": 24, "min_rel_diff": 0.75, "max_pairs": None}


def tables(tmp_path: Path, papers: list[tuple[str, str, str, int | None]]) -> tuple[str, str]:
    """papers.parquet and citations.parquet from (doi, category, first-version date, count or None)."""
    frame = pl.DataFrame({
        "doi": [p[0] for p in papers], "title": [f"Title {p[0]}" for p in papers],
        "abstract": [f"Abstract {p[0]}" for p in papers], "category": [p[1] for p in papers],
        "published": [dt.date.fromisoformat(p[2]) for p in papers],
    })
    frame.write_parquet(tmp_path / "papers.parquet")
    counted = [(p[0], p[3]) for p in papers if p[3] is not None]
    pl.DataFrame(counted, schema={"doi": pl.String, "citation_count": pl.Int64}, orient="row").with_columns(
        fetched_at=pl.lit(dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc))).write_parquet(tmp_path / "citations.parquet")
    return str(tmp_path / "papers.parquet"), str(tmp_path / "citations.parquet")


def build(tmp_path: Path, papers, rule=RULE, seed: int = 7):
    return biorxiv_pairs.build(*tables(tmp_path, papers), rule, PROMPT, seed)


def test_thresholds_are_inclusive_and_pairs_stay_in_one_category_and_window(tmp_path):
    rows, stats = build(tmp_path, [
        ("10.1101/a1", "genomics", "2023-03-01", 24), ("10.1101/a2", "genomics", "2023-05-01", 0),  # gap 24: kept
        ("10.1101/b1", "zoology", "2023-03-01", 23), ("10.1101/b2", "zoology", "2023-05-01", 0),  # gap 23: not
        ("10.1101/c1", "ecology", "2023-03-01", 96), ("10.1101/c2", "ecology", "2023-05-01", 24),  # 72/96 = 0.75: kept
        ("10.1101/d1", "botany", "2023-03-01", 96), ("10.1101/d2", "botany", "2023-05-01", 25),  # 71/96 < 0.75: not
        ("10.1101/e1", "neuroscience", "2023-03-01", 500), ("10.1101/e2", "cell biology", "2023-03-01", 0),
        ("10.1101/f1", "physiology", "2022-12-31", 500), ("10.1101/f2", "physiology", "2023-01-01", 0),
        ("10.1101/g1", "genetics", "2023-03-01", 300), ("10.1101/g2", "genetics", "2023-03-02", None),
    ])
    assert {frozenset(p) for p in zip(rows["paper_a_doi"], rows["paper_b_doi"])} == {
        frozenset({"10.1101/a1", "10.1101/a2"}), frozenset({"10.1101/c1", "10.1101/c2"})}
    winners = [r[f"paper_{r['correct_answer'].lower()}_doi"] for r in rows.iter_rows(named=True)]
    assert sorted(winners) == ["10.1101/a1", "10.1101/c1"]
    assert stats["filters"] == {"papers_with_count": 13, "papers_without_count": 1,
                                "papers_in_groups_of_two_or_more": 8, "pairs_meeting_thresholds": 2, "pairs": 2}
    assert stats["per_category"]["genomics"] == {"papers_with_count": 2, "pairs_meeting_thresholds": 1, "pairs": 1}
    assert stats["citation_gap"] == {"median": 48.0, "min": 24.0, "max": 72.0}
    # the same two physiology papers pair when one window spans the new year
    rows, _ = build(tmp_path, [("10.1101/f1", "physiology", "2022-12-31", 500),
                               ("10.1101/f2", "physiology", "2023-01-01", 0)], {**RULE, "window": {"days": 3650}})
    assert rows.height == 1


def test_rows_follow_the_pair_schema_with_balanced_answers_and_a_fixed_draw(tmp_path):
    papers = [(f"10.1101/{g}.{i}", f"cat{g}", "2023-06-01", c) for g in range(10) for i, c in enumerate((100, 1))]
    rows, stats = build(tmp_path, papers)
    assert rows.height == 10 and set(PAIR_COLUMNS) <= set(rows.columns)
    assert (stats["answer_A"], stats["answer_B"]) == (5, 5)
    row = rows.row(0, named=True)
    assert (row["split"], row["paper_a_category"], row["paper_a_subcategory"]) == ("test_biorxiv", "Biology", "cat0")
    hi = "a" if row["correct_answer"] == "A" else "b"
    assert row[f"paper_{hi}_citations"] == 100 and row["pair_id"] == "test_biorxiv-" + "-".join(sorted((row["paper_a_doi"], row["paper_b_doi"])))
    assert row["messages"][1]["content"] == f"A: {row['paper_a_title']} (2023-06-01) B: {row['paper_b_title']}"

    drawn, _ = build(tmp_path, papers, {**RULE, "max_pairs": 4})
    again, _ = build(tmp_path, papers, {**RULE, "max_pairs": 4})
    assert drawn.height == 4 and drawn.equals(again) and set(drawn["pair_id"]) <= set(rows["pair_id"])
    assert drawn.filter(pl.col("correct_answer") == "A").height == 2
    other, _ = build(tmp_path, papers, {**RULE, "max_pairs": 4}, seed=8)
    assert set(other["pair_id"]) != set(drawn["pair_id"])  # the seed decides the draw

    out = tmp_path / "pairs.parquet"
    rows.write_parquet(out)
    assert load_pairs([out]).height == 10  # the evaluation reads the file


def test_no_pair_is_an_error_saying_which_filter_left_nothing(tmp_path):
    paths = tables(tmp_path, [("10.1101/a", "genomics", "2023-01-01", 30), ("10.1101/b", "genomics", "2023-02-01", 20)])
    with pytest.raises(SystemExit, match=r"no test_biorxiv pair: .*'pairs_meeting_thresholds': 0"):
        biorxiv_pairs.main(["--papers", paths[0], "--citations", paths[1], "--pairs-json", json.dumps(RULE),
                            "--prompt-json", json.dumps(PROMPT), "--seed", "1", "--out", str(tmp_path / "p.parquet"),
                            "--stats", str(tmp_path / "s.json"), "--card", str(tmp_path / "c.md")])
    assert not (tmp_path / "p.parquet").exists()


def test_demo_world_is_deterministic_and_text_drives_citations():
    windows = [Window("2024-01-01", "2024-06-30"), Window("2024-07-01", "2024-12-31")]
    files = demo_biorxiv.render(200, 3, windows)
    assert files == demo_biorxiv.render(200, 3, windows)
    papers = demo_biorxiv.papers(200, 3, windows)
    hot = [p["citations"] for p in papers if len(p["hot"]) >= 2 and not p["stale"]]
    stale = [p["citations"] for p in papers if len(p["stale"]) >= 2 and not p["hot"]]
    assert sum(hot) / len(hot) > 2 * sum(stale) / len(stale)
    answers = [json.loads(body) for name, body in files.items() if name.startswith("biorxiv/")]
    assert sum(len(a["collection"]) for a in answers) == int(answers[0]["messages"][0]["total"]) + int(
        answers[-1]["messages"][0]["total"])


def test_rules_build_the_demo_pairs_and_rerun_only_what_a_threshold_changes(tmp_path):
    write_config(tmp_path)
    snakemake(tmp_path, "--cores", "2", "scijudge_biorxiv_pairs")
    out = tmp_path / "results" / "scijudge" / "ood" / "biorxiv"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["filters"]["pairs"] == 40 and (stats["answer_A"], stats["answer_B"]) == (20, 20)
    assert load_pairs([out / "pairs.parquet"]).height == 40
    assert "at most 40" in (out / "card.md").read_text()
    summary = json.loads((tmp_path / "results" / "biorxiv" / "papers.summary.json").read_text())
    assert (summary["rejects"], summary["first_version_not_in_files"]) == ({"missing abstract": 1}, 3)
    assert planned_jobs(snakemake(tmp_path, "-n", "scijudge_biorxiv_pairs")) == {}
    changed = write_config(tmp_path, "changed.yaml", scijudge={"ood": {"biorxiv": {"pairs": {"min_diff": 30}}}})
    dry = snakemake(tmp_path, "-n", "scijudge_biorxiv_pairs", "--rerun-triggers", "params", config=changed)
    assert planned_jobs(dry) == {"scijudge_biorxiv_build": 1, "scijudge_biorxiv_pairs": 1}
