"""The SciJudge ICLR test through Snakemake on the demo config: the demo's ICLR 2018 (API v1) and 2024 (API v2) note
pages and the Reviewer demo's 2019-2021 notes -> review scores -> pairs, card and stats; reruns exactly what a changed
value touches."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.workflow_runner import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow
OUT = "results/scijudge/ood/iclr"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("iclr")
    write_config(workdir)
    snakemake(workdir, "--cores", "2", "scijudge_iclr_pairs")
    return workdir


def test_the_demo_gives_a_few_dozen_pairs_with_their_card(run):
    pairs = pl.read_parquet(run / f"{OUT}/pairs.parquet")
    stats = json.loads((run / f"{OUT}/stats.json").read_text())
    assert 30 <= pairs.height <= 70 and stats["pairs"] == pairs.height
    assert set(pairs["year"]) == {2018, 2019, 2020, 2021, 2024} and set(pairs["split"]) == {"test_iclr"}
    card = (run / f"{OUT}/card.md").read_text()
    assert "| iclr_2024 | 300 | 2 | 1 |" in card and "which paper is more likely to be accepted" in card
    log = (run / "results/logs/scijudge_iclr_scores.log").read_text()
    assert "openreview_scores data quality: no rejects, no bad files" in log


def test_a_second_run_does_nothing(run):
    assert planned_jobs(snakemake(run, "-n", "scijudge_iclr_pairs")) == {}


@pytest.mark.parametrize("overrides, expected", [
    ({"top_share": 0.15}, {"scijudge_iclr_pairs"}),
    ({"demo": {"submissions": {"iclr_2018": 200, "iclr_2024": 300}}},
     {"demo_iclr_reviews", "scijudge_iclr_scores", "scijudge_iclr_pairs"}),
    ({"mode": "harvest"}, {"scijudge_iclr_fetch", "scijudge_iclr_scores", "scijudge_iclr_pairs"}),
])
def test_a_changed_value_reruns_exactly_what_depends_on_it(run, overrides, expected):
    cfg = write_config(run, "changed.yaml", scijudge={"ood": {"iclr": overrides}})
    assert set(planned_jobs(snakemake(run, "-n", "scijudge_iclr_pairs", config=cfg))) - {"all"} == expected


def test_a_config_error_stops_the_dag_build_naming_the_key(run):
    cfg = write_config(run, "bad.yaml", scijudge={"ood": {"iclr": {"years": [2017, 2018]}}})
    proc = snakemake(run, "-n", "scijudge_iclr_pairs", config=cfg, check=False)
    assert proc.returncode != 0
    message = "config key scijudge.ood.iclr.demo.submissions: the demo writes no ['iclr_2017']"
    assert message in proc.stdout + proc.stderr


def test_a_year_without_venue_stops_this_set_only(run):
    cfg = write_config(run, "fewer.yaml", reviewer={"openreview": {"venues": [
        {"venue": "iclr_2020", "year": 2020, "submission": "ICLR.cc/2020/Conference/-/Blind_Submission",
         "decision": "ICLR.cc/2020/Conference/Paper{number}/-/Decision", "decision_field": "decision",
         "review": "ICLR.cc/2020/Conference/Paper{number}/-/Official_Review"}]}})
    proc = snakemake(run, "-n", "scijudge_iclr_pairs", config=cfg, check=False)
    assert proc.returncode != 0
    assert "config key scijudge.ood.iclr.years: no venue for [2019, 2021]" in proc.stdout + proc.stderr
    snakemake(run, "-n", "reviews", config=cfg)  # the Reviewer line's own targets are not held up
