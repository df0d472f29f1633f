"""Properties of the SciJudge pair rules and of the built dataset (hypothesis for the rules, fixed data for the rest)."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json

import datasets
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.datasets import leakage_audit
from workflow_scripts.datasets import scijudge_pairs as sp
from workflow_scripts.datasets.dedupe import DedupeConfig, duplicate_groups, duplicate_pairs
from workflow_scripts.datasets.pair_rules import OodRule, Thresholds, ood_pairs, split_half_pairs
from workflow_scripts.datasets.scijudge_prompt import render_messages
from workflow_scripts.datasets.stable_hash import hash_strings, unit_interval
from workflow_scripts.datasets.synthetic_papers import synthetic_tables

GROUP = ["subcategory", "window"]
SEED = 7
SIZES = {"CS": 20, "Math": 20, "Physics": 20, "Others": 20}


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


# ---- the built dataset: 40,000 synthetic papers 2019-01 .. 2026-03 with planted duplicates


def block_with(**pairs) -> sp.PairConfig:
    block = schema_defaults()["scijudge"]
    block["pairs"]["test_id"].update(held_out_share=0.1, sizes=dict(SIZES))
    for key, value in pairs.items():
        if isinstance(block["pairs"][key], dict):
            block["pairs"][key].update(value)
        else:
            block["pairs"][key] = value
    return sp.PairConfig.from_block(block)


def build(tmp, block: sp.PairConfig, name: str, papers: str = "papers.parquet") -> tuple[dict, dict]:
    outputs = {s: str(tmp / name / f"{s}.parquet") for s in sp.SPLITS}
    stats = sp.build(str(tmp / papers), str(tmp / "citations.parquet"), block, SEED, outputs, chunk_rows=1000)
    return {s: pl.read_parquet(path) for s, path in outputs.items()}, stats


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pairs")
    papers, cites = synthetic_tables(40_000, seed=3, start="2019-01-01", end="2026-03-31", dup_share=0.004)
    # a 2023 paper re-submitted in 2025 under a new id with a new DOI: its title alone says it is the same paper
    dup = papers.filter(pl.col("published").dt.year() == 2023).head(1).with_columns(
        pl.lit("s99999999").alias("arxiv_id"), pl.lit(dt.date(2025, 3, 3)).alias("published"), pl.lit(None).alias("doi"))
    papers = pl.concat([papers, dup])
    cites = pl.concat([cites, pl.DataFrame({"arxiv_id": ["s99999999"], "citation_count": [500]},
                                           schema_overrides={"citation_count": pl.Int64}).with_columns(
        fetched_at=pl.lit(dt.datetime(2025, 12, 1, tzinfo=dt.timezone.utc)))])
    papers.write_parquet(tmp / "papers.parquet")
    cites.write_parquet(tmp / "citations.parquet")
    return tmp, papers, cites


@pytest.fixture(scope="module")
def built(tables):
    tmp, papers, _ = tables
    block = block_with()
    rows, stats = build(tmp, block, "default")
    return rows, stats, block


def ids_of(rows: pl.DataFrame) -> set[str]:
    return set(rows["paper_a_arxiv_id"]) | set(rows["paper_b_arxiv_id"])


def test_splits_are_disjoint_even_under_other_ids(built, tables):
    rows, stats, block = built
    tmp, papers, _ = tables
    ids = {s: ids_of(r) for s, r in rows.items()}
    assert not ids["train"] & ids["test_id"] and not ids["train"] & ids["test_ood"] and not ids["test_id"] & ids["test_ood"]
    assert "s99999999" not in ids["test_ood"]
    groups = duplicate_groups(duplicate_pairs(papers, DedupeConfig.from_block(block.pairs["dedupe"], SEED))[0])
    group_of = dict(groups.iter_rows())
    for split in ("test_id", "test_ood"):
        assert not ids[split] & set(group_of), f"a paper with a duplicate reached {split}"
    train_groups = [group_of[i] for i in ids["train"] if i in group_of]
    assert len(train_groups) == len(set(train_groups)), "two papers of one duplicate group in train"
    report = leakage_audit.audit({s: str(tmp / "default" / f"{s}.parquet") for s in sp.SPLITS},
                                 ["paper_a_arxiv_id", "paper_b_arxiv_id"], ["paper_a_title", "paper_b_title"],
                                 str(tmp / "papers.parquet"), DedupeConfig.from_block(block.pairs["dedupe"], SEED))
    assert report["passed"], report["duplicates"]["cross_split_pairs"][:3]
    dup = stats["duplicates"]
    assert min(dup["pairs_by_rule"].values()) >= 20, dup["pairs_by_rule"]  # 40 planted of each kind
    assert dup["train_duplicates_removed"] > 0 and dup["ood_duplicates_excluded"] > 0


def test_in_domain_test_comes_from_held_out_training_period_papers(built, tables):
    rows, stats, block = built
    _, papers, _ = tables
    held = set(papers.filter(pl.Series(unit_interval(hash_strings(papers["arxiv_id"], SEED)) < 0.1))["arxiv_id"])
    assert ids_of(rows["test_id"]) <= held and not ids_of(rows["train"]) & held
    for side in "ab":
        assert rows["train"][f"paper_{side}_date"].dt.year().max() <= 2024
        assert rows["test_id"][f"paper_{side}_date"].dt.year().max() <= 2024
    gaps = rows["test_id"].select(hi=pl.max_horizontal("paper_a_citations", "paper_b_citations"),
                                  lo=pl.min_horizontal("paper_a_citations", "paper_b_citations"))
    assert ((gaps["hi"] - gaps["lo"]) >= 32).all() and ((gaps["hi"] - gaps["lo"]) >= 0.5 * gaps["hi"]).all()
    assert stats["splits"]["test_id"]["per_field"] == SIZES
    assert {f: r["pairs"] for f, r in stats["test_id_fields"].items()} == SIZES
    assert rows["train"].height > 2000


def test_temporal_ood_is_bounded_by_until_date_and_uses_cited_papers_only(built, tables):
    rows, stats, block = built
    _, papers, cites = tables
    ood = rows["test_ood"]
    dates = pl.concat([ood["paper_a_date"], ood["paper_b_date"]])
    assert dates.min() > dt.date(2024, 12, 31) and dates.max() <= dt.date(2025, 12, 7)
    assert (pl.concat([ood["paper_a_citations"], ood["paper_b_citations"]]) >= 1).all()
    inputs = stats["inputs"]
    late = papers.filter(pl.col("published") > dt.date(2025, 12, 7))
    assert inputs["papers_after_until_date"] + inputs["papers_after_today"] == late.height > 0
    assert inputs["papers_after_today"] == papers.filter(pl.col("published") > dt.date(2025, 12, 10)).height
    # the quantiles are those of the cited later papers of each subcategory
    later = papers.join(cites, on="arxiv_id").filter(
        (pl.col("published").dt.year() == 2025) & (pl.col("published") <= dt.date(2025, 12, 7)) & (pl.col("citation_count") >= 1))
    q = later.group_by("primary_category").agg(pl.col("citation_count").quantile(0.75, "linear").alias("q_hi"),
                                               pl.col("citation_count").quantile(0.25, "linear").alias("q_lo"))
    bounds = dict(zip(q["primary_category"], zip(q["q_hi"], q["q_lo"])))
    for r in ood.iter_rows(named=True):
        hi, lo = sorted([r["paper_a_citations"], r["paper_b_citations"]], reverse=True)
        q_hi, q_lo = bounds[r["paper_a_subcategory"]]
        assert hi >= q_hi and lo <= q_lo
    assert ood.height > 20


def test_the_in_domain_test_no_longer_depletes_the_ood_test(built, tables, tmp_path):
    rows, _, _ = built
    tmp, _, _ = tables
    bigger, _ = build(tmp, block_with(test_id={"sizes": {f: 1000 for f in SIZES}}), "bigger")
    assert bigger["test_id"].height > rows["test_id"].height
    assert bigger["test_ood"].equals(rows["test_ood"])


@pytest.mark.parametrize("window, key", [
    ("year", lambda d: d.year),
    ("month", lambda d: (d.year, d.month)),
    ({"days": 45}, lambda d: (d - dt.date(1970, 1, 1)).days // 45),
])
def test_pairs_share_a_subcategory_and_the_configured_window(tables, window, key):
    tmp, _, _ = tables
    rows, _ = build(tmp, block_with(window=window), f"window-{json.dumps(window, sort_keys=True)}")
    for split in ("train", "test_id"):
        for r in rows[split].iter_rows(named=True):
            assert r["paper_a_subcategory"] == r["paper_b_subcategory"]
            assert key(r["paper_a_date"]) == key(r["paper_b_date"]), (window, r["paper_a_date"], r["paper_b_date"])


def test_answers_are_correct_and_balanced(built):
    rows, stats, _ = built
    for split, r in rows.items():
        more_a = r["paper_a_citations"] > r["paper_b_citations"]
        assert ((r["correct_answer"] == "A") == more_a).all()
        if r.height > 200:
            assert 0.45 < stats["splits"][split]["share_A"] < 0.55


def test_prompt_matches_the_template_renderer(built):
    rows, _, block = built
    for row in rows["train"].head(20).iter_rows(named=True):
        expected = render_messages(row, system_prompt=block.system_prompt, user_template=block.user_template, today=block.today)
        assert row["messages"] == expected
        assert row["messages"][1]["content"].startswith(f"Today is {block.today}. Based on the titles")


def test_the_splits_do_not_depend_on_row_order(built, tables):
    rows, _, block = built
    tmp, papers, _ = tables
    papers.sample(fraction=1.0, shuffle=True, seed=1).write_parquet(tmp / "shuffled.parquet")
    again, _ = build(tmp, block, "shuffled", papers="shuffled.parquet")
    for split in sp.SPLITS:
        assert again[split].equals(rows[split]), split


def test_the_card_says_how_the_splits_were_built(built, tables, tmp_path):
    tmp, _, _ = tables
    args = cli_args(tmp, tmp_path, block_with(window={"days": 30}))
    sp.main(args)
    card = (tmp_path / "README.md").read_text()
    assert "first published in the same 30-day window" in card
    assert "| CS | 20 | " in card and "held out by a seeded hash of the arXiv id" in card
    assert "Fetched 2025-12-01" in card and "until_date 2025-12-07" in card
    assert "title-near" in card and "removed from train (one kept per group)" in card
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["citation_snapshot"] == {"first": "2025-12-01", "last": "2025-12-01"}


def cli_args(tmp, out, block: sp.PairConfig) -> list[str]:
    cfg = {"today": block.today, "system_prompt": block.system_prompt, "user_template": block.user_template,
           "pairs": block.pairs}
    return ["--papers", str(tmp / "papers.parquet"), "--citations", str(tmp / "citations.parquet"),
            "--config-json", json.dumps(cfg), "--seed", str(SEED), "--train", str(out / "train.parquet"),
            "--test-id", str(out / "test_id.parquet"), "--test-ood", str(out / "test_ood.parquet"),
            "--stats", str(out / "stats.json"), "--card", str(out / "README.md")]


def test_sizes_the_data_cannot_meet_are_reported_and_strict_stops(tables, tmp_path):
    tmp, _, _ = tables
    sizes = {"CS": 20, "Math": 5000, "Physics": 20, "Others": 0}
    sp.main(cli_args(tmp, tmp_path, block_with(test_id={"sizes": sizes})))
    stats = json.loads((tmp_path / "stats.json").read_text())
    math = stats["test_id_fields"]["Math"]
    assert math["pairs"] == math["candidates"] < 5000 and "held-out paper(s) of this field gave" in math["reason"]
    others = stats["test_id_fields"]["Others"]
    assert others["pairs"] == 0 and "no size for this field" in others["reason"]
    card = (tmp_path / "README.md").read_text()
    assert f"| Math | 5000 | {math['pairs']} | {math['candidates']} | " in card
    with pytest.raises(SystemExit, match=r"test_id is short of its sizes: Math: \d+ of 5000 pairs .*strict is true"):
        sp.main(cli_args(tmp, tmp_path / "strict", block_with(strict=True, test_id={"sizes": sizes})))
    assert not (tmp_path / "strict").exists()


def test_output_is_byte_identical_on_rerun_and_readable_by_datasets(tables, tmp_path):
    tmp, _, _ = tables
    digests = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        sp.main(cli_args(tmp, out, block_with()))
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())})
    assert digests[0] == digests[1]
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "run0" / "train.parquet"), split="train")
    assert ds[0]["messages"][0]["role"] == "system" and ds[0]["correct_answer"] in ("A", "B")


def test_template_with_unknown_placeholder_is_rejected(tables):
    tmp, _, _ = tables
    block = block_with()
    bad = sp.PairConfig(block.today, block.system_prompt, block.user_template + " {venue}", copy.deepcopy(block.pairs))
    with pytest.raises(KeyError, match="venue"):
        build(tmp, bad, "bad")
