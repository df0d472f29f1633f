"""The BioReview all_nonfig corpus (figure concerns, duplicates, title-only and concern-less articles removed, each
counted) and the family splits with their leakage audit (a planted 3-version F1000 paper stays in one split)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from workflow_scripts.datasets import bioreview_corpus, bioreview_splits
from workflow_scripts.datasets.bioreview_inputs import CONCERN_SCHEMA, read_articles
from workflow_scripts.sources.biomed.tables import articles_frame, report_id, reports_frame

F1000_FAMILY = "10.12688/f1000research.5000"


def article(source: str, number: int, *, version: int = 1, abstract: str | None = "We test a hypothesis.",
            sections: list | None = None, family: str | None = None, doi: str | None = None) -> dict:
    doi = doi or f"10.9999/{source}.{number}"
    return {"article_id": f"{source}:{doi}.v{version}", "family_id": family or f"{source}:{number}", "source": source,
            "journal": source.upper(), "doi": doi, "version": version, "title": f"Paper {number}",
            "abstract": abstract,
            "sections": [{"kind": "methods", "title": "Methods", "text": "We did it."}] if sections is None
            else sections,
            "figure_captions": [], "published": dt.date(2020, 1, 1), "license": None,
            "review_style": "f1000-open-review", "file": f"{number}.xml"}


def f1000_versions() -> list[dict]:
    return [article("f1000", 5000, version=v, family=F1000_FAMILY, doi=f"{F1000_FAMILY}.{v}") for v in (1, 2, 3)]


def report(article_row: dict, reviewer: int = 1) -> dict:
    return {"report_id": report_id(article_row["article_id"], 1, reviewer), "article_id": article_row["article_id"],
            "source": article_row["source"], "reviewer": reviewer, "round": 1, "kind": "referee-report",
            "text": "The report.", "recommendation": None}


def concern(report_row: dict, text: str, category: str = "design_flaw", severity: str = "major") -> dict:
    return {"report_id": report_row["report_id"], "article_id": report_row["article_id"],
            "source": report_row["source"], "reviewer": report_row["reviewer"], "round": report_row["round"],
            "text": text, "category": category, "severity": severity}


def concerns_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CONCERN_SCHEMA, orient="row")


# ---------------------------------------------------------------------------------------------------------------------
# corpus


def test_the_corpus_removes_figure_concerns_duplicates_title_only_and_empty_articles_counting_each(tmp_path):
    a, b, title_only = (article("elife", n) for n in range(1, 4))
    title_only.update(abstract=" ", sections=[{"kind": "other", "title": "Notes", "text": ""}])
    figures_only, unreviewed = article("plos", 4), article("plos", 5)
    reports = [report(a, 1), report(a, 2), report(b), report(title_only), report(figures_only)]
    concerns = [
        concern(reports[0], "The sample size is too small."),
        concern(reports[0], "Panel 2 is unreadable.", "figure_issue"),
        concern(reports[1], "the sample  size is TOO small."),  # the first reviewer's concern again: removed
        concern(reports[1], "No dose-response experiment.", "missing_experiment", "minor"),
        concern(reports[2], "The sample size is too small."),  # another article: kept
        concern(reports[3], "An unsupported claim about causality.", "interpretation"),
        concern(reports[4], "Figure 1 colours are unclear.", "figure_issue"),
    ]
    articles_frame([a, b, title_only]).write_parquet(tmp_path / "elife.parquet")
    articles_frame([figures_only, unreviewed]).write_parquet(tmp_path / "plos.parquet")
    reports_frame(reports).write_parquet(tmp_path / "reports.parquet")
    concerns_frame(concerns).write_parquet(tmp_path / "concerns.parquet")
    assert bioreview_corpus.main(["--articles", str(tmp_path / "elife.parquet"), str(tmp_path / "plos.parquet"),
                                  "--reports", str(tmp_path / "reports.parquet"), "--concerns",
                                  str(tmp_path / "concerns.parquet"), "--out", str(tmp_path / "corpus.parquet"),
                                  "--counts", str(tmp_path / "counts.json")]) == 0
    corpus = pl.read_parquet(tmp_path / "corpus.parquet")
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert corpus["article_id"].to_list() == [a["article_id"], b["article_id"]]
    assert [c["text"] for c in corpus["concerns"][0]] == ["The sample size is too small.",
                                                          "No dose-response experiment."]
    assert [c["reviewer"] for c in corpus["concerns"][0]] == [1, 2]
    assert corpus["n_concerns"].to_list() == [2, 1]
    assert {k: counts[k] for k in ("articles_in", "concerns_in", "figure_concerns_removed",
                                   "duplicate_concerns_removed", "title_only_articles_dropped",
                                   "articles_without_concern_dropped", "articles_without_report_dropped",
                                   "articles", "concerns")} == {
        "articles_in": 5, "concerns_in": 7, "figure_concerns_removed": 2, "duplicate_concerns_removed": 1,
        "title_only_articles_dropped": 1, "articles_without_concern_dropped": 1,
        "articles_without_report_dropped": 1, "articles": 2, "concerns": 3}
    assert counts["per_source"]["elife"] == {"articles": 2, "concerns": 3}
    assert counts["per_category"]["design_flaw"] == 2 and "figure_issue" not in counts["per_category"]


def test_a_concern_from_an_unknown_report_is_an_error_naming_it():
    a = article("elife", 1)
    stray = {**report(a), "report_id": "elife:response-1"}
    with pytest.raises(ValueError, match="report_id\\(s\\) of the concerns are in no reports table.*response-1"):
        bioreview_corpus.build(articles_frame([a]), reports_frame([report(a)]),
                               concerns_frame([concern(stray, "A concern from an answer.")]))


def test_an_article_id_in_two_source_files_is_an_error_naming_the_files(tmp_path):
    a = article("elife", 1)
    for name in ("one", "two"):
        articles_frame([a]).write_parquet(tmp_path / f"{name}.parquet")
    with pytest.raises(ValueError, match="occur more than once.*one.parquet.*two.parquet"):
        read_articles([tmp_path / "one.parquet", tmp_path / "two.parquet"])


# ---------------------------------------------------------------------------------------------------------------------
# splits


def corpus_rows() -> pl.DataFrame:
    rows = f1000_versions() + [article(source, n) for source in ("elife", "plos", "f1000") for n in range(40)]
    return articles_frame(rows).with_columns(pl.lit(2, dtype=pl.Int32).alias("n_concerns"))


def test_every_version_of_a_paper_lands_in_one_split_whatever_the_seed():
    corpus = corpus_rows()
    landed = set()
    for seed in range(30):
        assigned, _ = bioreview_splits.assign(corpus, seed=seed, val_share=0.128, test_share=0.15)
        family = assigned.filter(pl.col("family_id") == F1000_FAMILY)
        assert family.height == 3 and family["split"].n_unique() == 1
        landed.add(family["split"][0])
        splits = {name: assigned.filter(pl.col("split") == name) for name in bioreview_splits.SPLITS}
        assert bioreview_splits.check(splits)["ok"]
    assert landed == {"train", "val", "test"}  # the family is not simply pinned to train


def test_splits_are_stratified_by_source_near_their_targets_and_deterministic(tmp_path):
    corpus = corpus_rows()
    corpus.write_parquet(tmp_path / "corpus.parquet")
    for out in ("a", "b"):
        assert bioreview_splits.main(["split", "--corpus", str(tmp_path / "corpus.parquet"), "--seed", "42",
                                      "--val-share", "0.128", "--test-share", "0.15", "--out-dir",
                                      str(tmp_path / out), "--stats", str(tmp_path / f"{out}.json")]) == 0
    for name in bioreview_splits.SPLITS:
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == (tmp_path / "b" / f"{name}.parquet").read_bytes()
    stats = json.loads((tmp_path / "a.json").read_text())
    assert stats["targets"]["elife"] == {"articles": 40, "test": 6, "val": 5, "train": 29}
    for source, target in stats["targets"].items():
        for name in ("val", "test"):
            got = stats["splits"][name]["per_source"][source]["articles"]
            assert target[name] <= got <= target[name] + (2 if source == "f1000" else 0)  # whole families only
    assert sum(stats["splits"][n]["articles"] for n in bioreview_splits.SPLITS) == corpus.height
    assert stats["splits"]["train"]["concerns"] == 2 * stats["splits"]["train"]["articles"]


def audit_cli(tmp_path, splits: dict[str, pl.DataFrame]) -> int:
    args = ["audit", "--out", str(tmp_path / "audit.json")]
    for name, frame in splits.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
        args += ["--split", f"{name}={tmp_path / f'{name}.parquet'}"]
    return bioreview_splits.main(args)


def test_the_audit_fails_naming_a_family_that_crosses_splits(tmp_path, capsys):
    versions = articles_frame(f1000_versions())
    other = articles_frame([article("plos", 1), article("plos", 2)])
    assert audit_cli(tmp_path, {"train": versions, "val": other.head(1), "test": other.tail(1)}) == 0
    assert json.loads((tmp_path / "audit.json").read_text())["ok"] is True
    leaked = {"train": versions.head(2), "val": other, "test": versions.tail(1)}
    assert audit_cli(tmp_path, leaked) == 1
    assert f"family {F1000_FAMILY} is in ['test', 'train']" in capsys.readouterr().err
    report = json.loads((tmp_path / "audit.json").read_text())
    assert report["ok"] is False and report["family_across_splits"][0]["articles"] == versions["article_id"].to_list()


def test_the_audit_catches_a_wrong_family_id_by_the_doi_and_a_repeated_article(tmp_path, capsys):
    versions = articles_frame(f1000_versions()).with_columns(pl.col("article_id").alias("family_id"))  # per version
    other = articles_frame([article("plos", 1)])
    assert audit_cli(tmp_path, {"train": versions.head(2), "val": other, "test": versions.tail(1)}) == 1
    err = capsys.readouterr().err
    assert f"DOI family {F1000_FAMILY} is in ['test', 'train']" in err
    assert "family f1000:" not in err  # the family_id check alone would have missed it
    assert audit_cli(tmp_path, {"train": other, "val": other, "test": versions}) == 1
    assert f"article {other['article_id'][0]} occurs 2 times (in ['train', 'val'])" in capsys.readouterr().err
