"""The SciJudge ICLR test's pairs: the paper's filters and pairing on a hand-made table, the prompt of this set, the
demo world's pairs following its latent quality, and the DAG-time checks of config scijudge.ood.iclr."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import yaml

from tests.workflow_runner import ROOT, merge
from workflow_scripts.common.config import schema_defaults, with_defaults
from workflow_scripts.common.io import Rejects
from workflow_scripts.datasets.iclr_pairs import EmptyTestSetError, IclrConfig, build, iclr_prompt
from workflow_scripts.demo import iclr_reviews as demo
from workflow_scripts.eval.scijudge import load_pairs
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.reviews import iclr_venues, openreview_scores
from workflow_scripts.sources.reviews.openreview import Venue
from workflow_scripts.sources.reviews.openreview_scores import SCORES_SCHEMA, ReviewForm

DEFAULTS = schema_defaults()
ICLR = DEFAULTS["scijudge"]["ood"]["iclr"]
PROMPT = iclr_prompt(DEFAULTS["scijudge"])
# id: (ratings, confidences) -> mean rating, rating variance, mean confidence
YEAR_2020 = {
    "a1": ([8, 8], [5, 5]), "a2": ([7, 7], [4, 4]), "a3": ([6, 6], [4, 4]), "a4": ([5, 5], [4, 4]),
    "a5": ([4, 4], [4, 4]), "a6": ([3, 3], [5, 5]), "a7": ([2, 2], [4, 4]),
    "b1": ([9, 9], [1, 1]), "b2": ([1, 1], [2, 2]),  # confidence below the median (4): out, top and bottom alike
    "c1": ([10, 2], [5, 5]), "c2": ([1, 9], [5, 5]),  # variance above the median (0): out
    "d1": ([10, 1], [1, 1]),  # both
    "few": ([10], [5]),  # one review
    "none": ([10, 10], [None, None]),  # no confidence
}
YEAR_2021 = {f"e{i}": ([5, 5], [4, 4]) for i in range(4)}  # all equal: no pair has a preferred paper


def scores_of(years: dict[int, dict]) -> pl.DataFrame:
    rows = [{"key": f"openreview:iclr_{year}:{pid}", "venue": f"iclr_{year}", "year": year, "api": "v1",
             "paper_id": pid, "title": f"Title {pid}", "abstract": f"Abstract {pid}.",
             "date": dt.date(year - 1, 9, 27), "ratings": [float(r) for r in ratings],
             "confidences": [None if c is None else float(c) for c in confs], "file": "page.json"}
            for year, papers in years.items() for pid, (ratings, confs) in papers.items()]
    return pl.DataFrame(rows, schema=SCORES_SCHEMA, orient="row")


def config(**overrides) -> IclrConfig:
    block = merge({k: v for k, v in ICLR.items()}, {"years": [2020, 2021], **overrides})
    return IclrConfig.from_block(block, PROMPT)


def test_the_quality_filters_and_the_top_and_bottom_share_per_year():
    rows, stats = build(scores_of({2020: YEAR_2020, 2021: YEAR_2021}), config(top_share=0.3), seed=5)
    y = stats["years"]["2020"]
    assert (y["submissions"], y["too_few_reviews"], y["no_confidence"], y["rated"]) == (14, 1, 1, 12)
    assert (y["confidence_threshold"], y["variance_threshold"]) == (4.0, 0.0)
    assert (y["low_confidence"], y["high_variance"], y["low_confidence_and_high_variance"], y["kept"]) == (3, 3, 1, 7)
    # floor(0.3 x 7) = 2 a side: a1, a2 above a7, a6; papers on the thresholds (confidence 4, variance 0) stay
    assert (y["per_side"], y["pairs"], y["capped"]) == (2, 2, False)
    winners = {r[f"paper_{r['correct_answer'].lower()}_openreview_id"] for r in rows.iter_rows(named=True)}
    losers = set(rows["paper_a_openreview_id"]) | set(rows["paper_b_openreview_id"])
    assert winners == {"a1", "a2"} and losers - winners == {"a6", "a7"}
    for r in rows.iter_rows(named=True):
        right, wrong = (("a", "b") if r["correct_answer"] == "A" else ("b", "a"))
        assert r[f"paper_{right}_mean_rating"] - r[f"paper_{wrong}_mean_rating"] == r["rating_diff"] > 0
    # 2021: four equal papers, floor(0.3 x 4) = 1 a side: a pair without a preferred paper, dropped and counted
    assert (stats["years"]["2021"]["equal_mean_rating"], stats["years"]["2021"]["pairs"]) == (1, 0)
    assert stats["pairs"] == 2 and stats["correct_answer"] == {"A": 1, "B": 1}


def test_the_cap_per_side_and_a_set_without_pairs():
    _, stats = build(scores_of({2020: YEAR_2020}), config(years=[2020], top_share=0.3, max_per_side=1), seed=5)
    assert (stats["years"]["2020"]["per_side"], stats["years"]["2020"]["capped"], stats["pairs"]) == (1, True, 1)
    with pytest.raises(EmptyTestSetError, match="2021: 4 submissions, 4 after the filters"):
        build(scores_of({2021: YEAR_2021}), config(years=[2021]), seed=5)


def test_pairs_are_seeded_balanced_and_readable_by_the_evaluation(tmp_path):
    years = {2020: YEAR_2020, 2022: {f"p{i}": ([1 + i % 10] * 3, [4, 4, 4]) for i in range(60)}}
    cfg = config(years=[2020, 2022], top_share=0.3)
    rows, stats = build(scores_of(years), cfg, seed=5)
    assert rows.equals(build(scores_of(years), cfg, seed=5)[0])
    assert not rows.equals(build(scores_of(years), cfg, seed=6)[0])  # another seed, another pairing or A/B order
    counts = stats["correct_answer"]
    assert abs(counts["A"] - counts["B"]) <= 1 and stats["pairs"] == 2 + 18
    assert set(rows["paper_a_category"]) == {"CS"} and set(rows["paper_b_subcategory"]) == {"cs.LG"}
    assert rows["pair_id"].is_unique().all() and set(rows["split"]) == {"test_iclr"}
    user = rows["messages"][0][1]["content"]
    assert "which paper is more likely to be accepted" in user and "citation count" not in user
    assert rows["paper_a_date"][0].isoformat() in user and rows["paper_a_title"][0] in user
    path = tmp_path / "pairs.parquet"
    rows.write_parquet(path)
    assert load_pairs([path]).height == rows.height


@pytest.mark.parametrize("variant, answer_tags", [("card", "<reason>"), ("paper", "<think>")])
def test_the_prompt_is_the_configured_variant_asking_the_question_of_this_set(variant, answer_tags):
    prompt = iclr_prompt(with_defaults({"scijudge": {"prompt": variant}})["scijudge"])
    assert prompt["prompt"] == variant and answer_tags in prompt["user_template"]
    assert "determine which paper is more likely to be accepted." in prompt["user_template"]
    own = with_defaults({"scijudge": {"user_template": "Pick one: {title_a} or {title_b}?"}})["scijudge"]
    with pytest.raises(ValueError, match="config key scijudge.ood.iclr.user_template"):
        iclr_prompt(own)
    own["ood"]["iclr"]["user_template"] = "Accepted? {title_a} or {title_b}"
    assert iclr_prompt(own)["user_template"] == "Accepted? {title_a} or {title_b}"


def test_the_demo_pairs_follow_the_latent_quality(tmp_path):
    files, truth = demo.render(11, ICLR["venues"], {"submissions": {"iclr_2018": 300, "iclr_2024": 300},
                                                    "page_size": 100})
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    venues = [Venue.from_config(v) for v in ICLR["venues"] if v["year"] in (2018, 2024)]
    forms = {k: ReviewForm.from_config(b) for k, b in ICLR["review_fields"].items()}
    bad = BadInput(Rejects())
    scores, _, _ = openreview_scores.collect([(tmp_path / demo.OUT, venues)], forms, bad)
    rows, stats = build(scores, config(years=[2018, 2024], top_share=0.2), seed=11)
    assert 30 <= stats["pairs"] <= 50 and not bad.rejects.rows
    quality = dict(truth.select("paper_id", "quality").iter_rows())
    a_better = [quality[a] > quality[b] for a, b in zip(rows["paper_a_openreview_id"], rows["paper_b_openreview_id"])]
    agree = sum(better == (answer == "A") for better, answer in zip(a_better, rows["correct_answer"]))
    assert agree >= 0.9 * rows.height


def demo_config(**iclr) -> dict:
    cfg = merge(yaml.safe_load((ROOT / "config.yaml").read_text()), {"scijudge": {"ood": {"iclr": iclr}}})
    return with_defaults(cfg)


def produced(path: str) -> bool:
    return path.startswith("resources/demo/")


def test_the_demo_config_reads_every_year_from_one_venue():
    cfg = demo_config()
    assert iclr_venues.problems(cfg, produced) == [] and iclr_venues.coverage_problems(cfg) == []
    assert [v["venue"] for v in iclr_venues.own_venues(cfg)] == ["iclr_2018", "iclr_2024"]
    assert [v["venue"] for v in iclr_venues.reviewer_venues(cfg)] == ["iclr_2019", "iclr_2020", "iclr_2021"]
    assert iclr_venues.snapshot_keys(cfg) == {"scijudge.ood.iclr.snapshot_dir": "resources/demo/openreview_iclr"}


@pytest.mark.parametrize("iclr, message", [
    ({"years": [2017, 2018]},
     "config key scijudge.ood.iclr.demo.submissions: the demo writes no ['iclr_2017'], which scijudge.ood.iclr reads"),
    ({"snapshot_dir": None}, "config key scijudge.ood.iclr.snapshot_dir: required when scijudge.ood.iclr.mode is"),
    ({"snapshot_dir": "no/such/dir"}, "config key scijudge.ood.iclr.snapshot_dir: no/such/dir does not exist"),
])
def test_the_checks_the_schema_cannot_express(iclr, message):
    assert message in "\n".join(iclr_venues.problems(demo_config(**iclr), produced))


@pytest.mark.parametrize("iclr, reviewer, message", [
    ({"reviewer_venues": False}, {},
     "config key scijudge.ood.iclr.years: no venue for [2019, 2020, 2021]; add them to scijudge.ood.iclr.venues or"),
    ({}, {"sources": ["peerread"]}, "config key scijudge.ood.iclr.years: no venue for [2019, 2020, 2021]"),
    ({"venues": ICLR["venues"] + [{"venue": "iclr_2019", "year": 2019, "api": "v1", "review": "R{number}",
                                   "submission": "ICLR.cc/2019/Conference/-/Blind_Submission"}]}, {},
     "config key scijudge.ood.iclr.venues: [2019] given more than once (scijudge.ood.iclr.venues and reviewer."),
])
def test_every_selected_year_comes_from_one_venue(iclr, reviewer, message):
    cfg = merge(yaml.safe_load((ROOT / "config.yaml").read_text()), {"reviewer": reviewer,
                                                                     "scijudge": {"ood": {"iclr": iclr}}})
    assert message in "\n".join(iclr_venues.coverage_problems(with_defaults(cfg)))
