"""The Reviewer sources through Snakemake on the demo config: demo snapshots -> PeerRead and OpenReview tables, PDF
text, the merged tables and their card; reruns exactly when a value they depend on changes; config errors at DAG
time."""

from __future__ import annotations

import json

import polars as pl
import pytest
import yaml

from tests.workflow_runner import ROOT, merge, planned_jobs, snakemake, write_config
from workflow_scripts.common.config import with_defaults
from workflow_scripts.sources.reviews import config_checks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reviews")
    write_config(workdir)
    snakemake(workdir, "--cores", "2", "reviews")
    return workdir


def test_the_demo_snapshots_become_the_papers_and_reviews_tables(run):
    papers = pl.read_parquet(run / "results/reviews/papers.parquet")
    reviews = pl.read_parquet(run / "results/reviews/reviews.parquet")
    truth = pl.read_parquet(run / "resources/demo/reviews_truth.parquet")
    kept = truth.filter(~pl.col("status").is_in(["withdrawn", "desk_rejected", "no_decision"]))
    assert sorted(papers["paper_id"]) == sorted(kept["paper_id"]) and papers["key"].is_unique().all()
    assert set(reviews["key"]) <= set(papers["key"])
    by_source = dict(papers.group_by("source").len().iter_rows())
    assert by_source == {"peerread": 98, "openreview": 117}
    card = (run / "results/reviews/README.md").read_text()
    assert "no decision" in card and "| peerread | acl_2017 | dev |" in card
    rejects = (run / "results/interim/reviews/openreview.rejects.jsonl").read_text().splitlines()
    assert [json.loads(r)["reason"].split(":")[0] for r in rejects] == ["no decision"] * 3
    text_rejects = (run / "results/interim/reviews/openreview.pdf_text.rejects.jsonl").read_text()
    assert "bad file (encrypted)" in text_rejects
    # each step's log ends with its data-quality line
    assert "openreview data quality: 3 reject(s)" in (run / "results/logs/openreview_parse.log").read_text()


def test_a_second_run_does_nothing(run):
    assert planned_jobs(snakemake(run, "-n", "reviews")) == {}


@pytest.mark.parametrize("overrides, expected", [
    ({"pdf_text": {"drop_lines": ["^Under review as a conference paper at ICLR \\d{4}$"]}},
     {"openreview_pdf_text", "openreview_parse", "peerread_parse", "reviews_tables"}),
    ({"pdf_text": {"workers": 1}}, set()),  # speed only: a resource, not a param
    ({"openreview": {"venues": [{"venue": "iclr_2020", "year": 2020,
                                 "submission": "ICLR.cc/2020/Conference/-/Blind_Submission",
                                 "decision": "ICLR.cc/2020/Conference/Paper{number}/-/Decision",
                                 "decision_field": "decision",
                                 "review": "ICLR.cc/2020/Conference/Paper{number}/-/Official_Review"}]}},
     {"openreview_parse", "reviews_tables"}),
])
def test_a_changed_value_reruns_exactly_what_depends_on_it(run, overrides, expected):
    cfg = write_config(run, "changed.yaml", reviewer=overrides)  # merged over the demo's reviewer block
    jobs = planned_jobs(snakemake(run, "-n", "reviews", config=cfg))
    assert set(jobs) - {"reviews"} == expected


def test_a_config_error_stops_the_dag_build_naming_the_key(tmp_path):
    cfg = write_config(tmp_path, reviewer={"peerread": {"snapshot_dir": "no/such/dir"}})
    proc = snakemake(tmp_path, "-n", "reviews", config=cfg, check=False)
    assert proc.returncode != 0
    assert "config key reviewer.peerread.snapshot_dir: no/such/dir does not exist" in proc.stdout + proc.stderr


@pytest.mark.parametrize("reviewer, message", [
    ({"openreview": {"snapshot_dir": None}},
     "config key reviewer.openreview.snapshot_dir: required when reviewer.openreview.mode is 'snapshot'"),
    ({"demo": {"peerread": {"iclr_2017": {"train": 5, "dev": 1, "test": 1}}}},
     "config key reviewer.demo.peerread: the demo writes no ['acl_2017', 'conll_2016']"),
])
def test_the_checks_the_schema_cannot_express(tmp_path, reviewer, message):
    cfg = with_defaults(merge(yaml.safe_load((ROOT / "config.yaml").read_text()), {"reviewer": reviewer}))
    assert message in "\n".join(config_checks.problems(cfg, produced=lambda path: path.startswith("resources/demo/")))
