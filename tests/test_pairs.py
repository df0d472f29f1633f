"""Properties of the SciJudge pair rules and of the built dataset (hypothesis for the rules, fixed data for the rest)."""

from __future__ import annotations

import datetime as dt
import hashlib

import datasets
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.datasets import scijudge_pairs as sp
from workflow_scripts.datasets.pair_rules import OodRule, Thresholds, ood_pairs, split_half_pairs
from workflow_scripts.datasets.scijudge_prompt import render_messages
from workflow_scripts.datasets.synthetic_papers import synthetic_tables

GROUP = ["subcategory", "window"]


@st.composite
def paper_tables(draw):
    n = draw(st.integers(0, 120))
    rows = [
        {
            "arxiv_id": f"p{i:04d}",
            "citations": draw(st.integers(0, 400)),
            "subcategory": draw(st.sampled_from(["cs.LG", "cs.CL", "math.CO"])),
            "window": draw(st.sampled_from([dt.date(2024, 1, 1), dt.date(2024, 2, 1)])),
        }
        for i in range(n)
    ]
    return pl.DataFrame(rows, schema={"arxiv_id": pl.String, "citations": pl.Int64, "subcategory": pl.String, "window": pl.Date})


@settings(max_examples=60, deadline=None)
@given(papers=paper_tables(), min_diff=st.integers(0, 50), rel=st.floats(0, 1), per_paper=st.integers(1, 3))
def test_split_half_pairs_obey_the_rules(papers, min_diff, rel, per_paper):
    pairs = split_half_pairs(papers, GROUP, Thresholds(min_diff, rel), per_paper)
    by_id = {r["arxiv_id"]: r for r in papers.iter_rows(named=True)}
    uses: dict[str, int] = {}
    for p in pairs.iter_rows(named=True):
        hi, lo = by_id[p["hi_id"]], by_id[p["lo_id"]]
        assert (hi["subcategory"], hi["window"]) == (lo["subcategory"], lo["window"])
        assert hi["citations"] - lo["citations"] >= max(min_diff, 0)
        assert hi["citations"] > 0 and (hi["citations"] - lo["citations"]) >= rel * hi["citations"] - 1e-9
        for pid in (p["hi_id"], p["lo_id"]):
            uses[pid] = uses.get(pid, 0) + 1
    assert all(n <= per_paper for n in uses.values())
    assert pairs.select(["hi_id", "lo_id"]).is_unique().all()


@settings(max_examples=40, deadline=None)
@given(papers=paper_tables())
def test_split_half_pairs_find_a_pair_whenever_one_exists_in_a_group_of_two(papers):
    for (sub, win), group in papers.group_by(GROUP):
        if group.height != 2:
            continue
        c = sorted(group["citations"].to_list())
        found = split_half_pairs(group, GROUP, Thresholds(8, 0.3))
        assert found.height == int(c[1] - c[0] >= 8 and c[1] - c[0] >= 0.3 * c[1] and c[1] > 0)


@settings(max_examples=40, deadline=None)
@given(
    cites=st.lists(st.integers(0, 300), min_size=0, max_size=80),
    days=st.lists(st.integers(0, 30), min_size=80, max_size=80),
)
def test_ood_pairs_obey_the_rules(cites, days):
    n = len(cites)
    papers = pl.DataFrame(
        {
            "arxiv_id": [f"q{i:03d}" for i in range(n)],
            "citations": cites,
            "subcategory": ["cs.LG"] * n,
            "published": [dt.date(2025, 1, 1) + dt.timedelta(days=d) for d in days[:n]],
        },
        schema={"arxiv_id": pl.String, "citations": pl.Int64, "subcategory": pl.String, "published": pl.Date},
    )
    rule = OodRule()
    pairs = ood_pairs(papers, papers, rule)
    if not n:
        return
    s = pl.Series(cites, dtype=pl.Int64)
    q_hi, q_lo = s.quantile(0.75, "linear"), s.quantile(0.25, "linear")
    d_s = max(12, 0.7 * (s.quantile(0.99, "linear") - s.quantile(0.01, "linear")))
    by_id = {r["arxiv_id"]: r for r in papers.iter_rows(named=True)}
    used = pairs["hi_id"].to_list() + pairs["lo_id"].to_list()
    assert len(used) == len(set(used)), "a paper is used twice"
    for p in pairs.iter_rows(named=True):
        hi, lo = by_id[p["hi_id"]], by_id[p["lo_id"]]
        assert hi["citations"] >= q_hi and lo["citations"] <= q_lo
        assert abs((hi["published"] - lo["published"]).days) <= 5
        assert hi["citations"] - lo["citations"] >= max(0.5 * hi["citations"], d_s)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pairs")
    papers, cites = synthetic_tables(30_000, seed=3, start="2023-01-01")
    # a re-submission of an early paper under a new id after the cutoff: must stay out of the tests
    dup = papers.filter(pl.col("published").dt.year() == 2023).head(1).with_columns(
        pl.lit("s99999999").alias("arxiv_id"), pl.lit(dt.date(2025, 3, 3)).alias("published")
    )
    papers = pl.concat([papers, dup])
    cites = pl.concat([cites, pl.DataFrame({"arxiv_id": ["s99999999"], "citation_count": [500]})])
    papers.write_parquet(tmp / "papers.parquet")
    cites.write_parquet(tmp / "citations.parquet")
    block = sp.PairConfig.from_block(schema_defaults()["scijudge"])
    outputs = {s: str(tmp / f"{s}.parquet") for s in sp.SPLITS}
    # small chunks, so that writing several row groups is exercised
    stats = sp.build(str(tmp / "papers.parquet"), str(tmp / "citations.parquet"), block, 7, outputs, chunk_rows=1000)
    rows = {s: pl.read_parquet(path) for s, path in outputs.items()}
    return rows, stats, block, tmp


def test_splits_are_disjoint_and_temporal(built):
    rows, stats, _, _ = built
    ids = {s: set(r["paper_a_arxiv_id"]) | set(r["paper_b_arxiv_id"]) for s, r in rows.items()}
    assert not ids["train"] & ids["test_id"] and not ids["train"] & ids["test_ood"] and not ids["test_id"] & ids["test_ood"]
    assert "s99999999" not in ids["test_id"] | ids["test_ood"]
    assert stats["inputs"]["later_papers_excluded_title_overlap"] == 1
    for side in "ab":
        assert rows["train"][f"paper_{side}_date"].dt.year().max() <= 2024
        assert rows["test_id"][f"paper_{side}_date"].dt.year().min() >= 2025
    assert rows["train"].height > 1000 and rows["test_id"].height > 50


def test_answers_are_correct_and_balanced(built):
    rows, stats, _, _ = built
    for split, r in rows.items():
        more_a = r["paper_a_citations"] > r["paper_b_citations"]
        assert ((r["correct_answer"] == "A") == more_a).all()
        if r.height > 200:
            assert 0.45 < stats["splits"][split]["share_A"] < 0.55
    t = rows["test_id"]
    diff = (t["paper_a_citations"] - t["paper_b_citations"]).abs()
    assert (diff >= 32).all()


def test_prompt_matches_the_template_renderer(built):
    rows, _, block, _ = built
    for row in rows["train"].head(20).iter_rows(named=True):
        expected = render_messages(row, system_prompt=block.system_prompt, user_template=block.user_template, today=block.today)
        assert row["messages"] == expected
        assert row["messages"][1]["content"].startswith(f"Today is {block.today}. Based on the titles")


def test_output_is_byte_identical_on_rerun_and_readable_by_datasets(built, tmp_path):
    _, _, block, tmp = built
    digests = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        args = [
            "--papers", str(tmp / "papers.parquet"), "--citations", str(tmp / "citations.parquet"),
            "--config-json", __import__("json").dumps(schema_defaults()["scijudge"]), "--seed", "7",
            "--train", str(out / "train.parquet"), "--test-id", str(out / "test_id.parquet"),
            "--test-ood", str(out / "test_ood.parquet"), "--stats", str(out / "stats.json"), "--card", str(out / "README.md"),
        ]
        sp.main(args)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())})
    assert digests[0] == digests[1]
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "run0" / "train.parquet"), split="train")
    assert ds[0]["messages"][0]["role"] == "system" and ds[0]["correct_answer"] in ("A", "B")
    card = (tmp_path / "run0" / "README.md").read_text()
    assert "| train |" in card and "share A" in card


def test_template_with_unknown_placeholder_is_rejected(built):
    _, _, block, tmp = built
    bad = sp.PairConfig(block.today, block.system_prompt, block.user_template + " {venue}", block.pairs)
    with pytest.raises(KeyError, match="venue"):
        sp.build(str(tmp / "papers.parquet"), str(tmp / "citations.parquet"), bad, 1, {s: str(tmp / f"bad-{s}.parquet") for s in sp.SPLITS})
