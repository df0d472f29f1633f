"""The BioReview demo world (workflow_scripts.demo.biomed): byte-identical reruns, and each biomedical source's own
``parse`` on the generated snapshots giving the documented counts, exactly the planted rejects, every review style,
and reports from which the extractor stand-in reads back exactly the planted concerns."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pytest

from tests.biomed_helpers import TABLES, parse_cli
from workflow_scripts.datasets.bioreview_prompts import CATEGORIES
from workflow_scripts.demo import biomed
from workflow_scripts.demo.bioreview_extractor import concern_sentence, marked_concerns
from workflow_scripts.demo.biomed_world import FLAW_BY_KEY
from workflow_scripts.common.io import Rejects
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.biomed import europepmc, nature, tables

N_ARTICLES, SEED = 50, 7


def generate(out: Path, n: int = N_ARTICLES, seed: int = SEED) -> Path:
    assert biomed.main(["--out-dir", str(out), "--n-articles", str(n), "--seed", str(seed)]) == 0
    return out


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def parse_source(source: str, world: Path, out: Path) -> tuple[dict, list[dict], dict[str, pl.DataFrame]]:
    """(summary, rejects, tables) of the source's parse CLI on the world, run as the workflow runs it."""
    expected = json.loads((world / "expected_counts.json").read_text())[source]
    inputs = {flag: [world / d for d in dirs] for flag, dirs in expected["parse_dirs"].items()}
    frames, rejects, summary = parse_cli(
        importlib.import_module(f"workflow_scripts.sources.biomed.{source}"), out / source, inputs,
        ("--quarantine-bad-files", "--max-lost-fraction", "0.2"),
        TABLES + (("assessments",) if source == "elife" else ()))
    return summary, rejects, frames


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("biomed") / "world")


@pytest.fixture(scope="module")
def parsed(world, tmp_path_factory) -> dict[str, tuple]:
    out = tmp_path_factory.mktemp("parsed")
    return {source: parse_source(source, world, out) for source in tables.SOURCES}


def test_same_arguments_give_byte_identical_files_and_another_seed_differs(world, tmp_path):
    again = hashes(generate(tmp_path / "again"))
    assert again == hashes(world)
    assert len(again) > 100
    assert hashes(generate(tmp_path / "other", seed=SEED + 1)) != again


@pytest.mark.parametrize("source", tables.SOURCES)
def test_each_parse_gives_the_documented_counts_and_exactly_the_planted_rejects(world, parsed, source):
    expected = json.loads((world / "expected_counts.json").read_text())[source]
    summary, rejects, frames = parsed[source]
    for name in ("articles", "reports", "responses"):
        assert summary[name] == frames[name].height == expected[name], name
    assert expected["articles"] > 0 and expected["reports"] > expected["articles"]
    for key, value in expected.items():
        if key not in ("articles", "reports", "responses", "rejects", "parse_dirs"):
            assert summary[key] == value, key
    got = sorted((Path(r["file"]).relative_to(world).as_posix(), r["reason"]) for r in rejects)
    want = sorted((r["file"], r["reason"]) for r in expected["rejects"])
    assert [f for f, _ in got] == [f for f, _ in want]
    assert all(reason.startswith(prefix) for (_, reason), (_, prefix) in zip(got, want))
    assert frames["articles"].schema == pl.Schema(tables.ARTICLE_SCHEMA)


def test_the_planted_bad_input_is_one_of_each_kind(parsed):
    reasons = [r["reason"] for _, rejects, _ in parsed.values() for r in rejects]
    assert len(reasons) == 4
    assert any(re.match(r"bad file \(malformed\): not well-formed XML", r) for r in reasons)
    assert "article without body" in reasons
    assert any(r.startswith("review sub-article without text") for r in reasons)
    assert any(re.match(r"bad file \(malformed\): pypdf cannot read it", r) for r in reasons)


def test_the_extractor_reads_back_exactly_the_planted_concerns_from_every_parsed_report(world, parsed):
    truth = pl.read_parquet(world / "truth_concerns.parquet")
    want: dict[str, list] = {}
    for row in truth.iter_rows(named=True):
        want.setdefault(row["report_id"], []).append((row["category"], row["severity"], row["text"]))
        assert FLAW_BY_KEY[row["flaw"]].category == row["category"]
    got = {}
    for _, _, frames in parsed.values():
        for report in frames["reports"].iter_rows(named=True):
            found = [(c["category"], c["severity"], c["text"]) for c in marked_concerns(report["text"])]
            if found:
                got[report["report_id"]] = found
                assert report["round"] == 1, report["report_id"]  # later rounds raise nothing
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    assert set(truth["source"]) == set(tables.SOURCES)


def test_every_article_variant_section_kind_and_licence_is_there(world, parsed):
    articles = pl.concat([frames["articles"] for _, _, frames in parsed.values()])
    truth = pl.read_parquet(world / "truth_articles.parquet")
    assert truth.height == N_ARTICLES and set(truth["article_id"]) <= set(articles["article_id"])
    assert set(articles["review_style"]) == set(tables.REVIEW_STYLES)
    assert {"PLOS Biology", "PLOS ONE", "F1000Research", "Wellcome Open Research"} <= set(articles["journal"])
    kinds = set(articles.explode("sections")["sections"].struct.field("kind"))
    assert kinds == set(tables.SECTION_KINDS)
    assert articles["figure_captions"].list.len().min() == 2
    assert articles["abstract"].is_not_null().all()
    assert 0 < (~truth["redistributable"]).sum() < truth.height / 5
    f1000_kinds = set(parsed["f1000"][2]["reports"]["kind"])
    assert f1000_kinds == {"reviewer-report", "ref-report"}
    assert parsed["f1000"][2]["articles"]["version"].max() >= 2
    assert parsed["nature"][2]["reports"]["round"].max() == 2
    elife_reports = parsed["elife"][2]["reports"]
    assert {"article-commentary", "decision-letter", "referee-report"} == set(elife_reports["kind"])
    assert (elife_reports.filter(pl.col("kind") != "referee-report")["reviewer"] == 0).all()
    flaws = truth["flaws"].list.len()
    assert flaws.min() >= 1 and flaws.max() <= 4


def test_nature_landing_pages_link_their_review_file_and_europe_pmc_answers_name_the_full_texts(world, parsed):
    pattern = re.compile(nature.DEFAULT_LINK_PATTERN)
    for page in sorted((world / "nature" / "landing").glob("*.html")):
        link = nature.peer_review_link(page.read_bytes(), f"https://www.nature.com/articles/{page.stem}",
                                       "Peer Review File", pattern)
        assert link is not None and page.stem in unquote(link), page.name
    ids = europepmc.read_ids([world / "nature" / "europepmc" / "search"], BadInput(Rejects()))
    full_texts = {p.stem for p in (world / "nature" / "europepmc" / "fulltext").glob("*.xml")}
    assert set(ids.filter(pl.col("full_text"))["pmcid"]) == full_texts
    assert ids.height == len(full_texts) == parsed["nature"][0]["articles"] + 1  # + the unreadable PDF's article


def test_paraphrase_pairs_are_labelled_by_flaw_and_balanced(world):
    pairs = pl.read_parquet(world / "paraphrase_pairs.parquet")
    assert ((pairs["flaw_a"] == pairs["flaw_b"]) == (pairs["label"] == 1)).all()
    assert pairs["label"].sum() * 2 == pairs.height
    assert set(pairs["category_a"]) | set(pairs["category_b"]) <= set(CATEGORIES)
    assert pairs.filter((pl.col("label") == 0) & (pl.col("category_a") == pl.col("category_b"))).height > 0
    for row in pairs.head(20).iter_rows(named=True):  # each text is a concern the demo reviews could write
        concern_sentence(row["category_a"], "major", row["text_a"])


def test_a_smaller_rerun_removes_the_files_of_the_larger_one(tmp_path):
    out = generate(tmp_path / "w", n=40)
    generate(out, n=biomed.MIN_ARTICLES)
    assert hashes(out) == hashes(generate(tmp_path / "fresh", n=biomed.MIN_ARTICLES))
    with pytest.raises(SystemExit):
        biomed.main(["--out-dir", str(tmp_path / "x"), "--n-articles", "3"])
