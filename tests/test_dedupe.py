"""Duplicate papers under different ids: title normalization, stable hashes, the four rules, groups, and the leakage
audit that fails on a duplicate pair across splits."""

from __future__ import annotations

import json
import re
import unicodedata

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_scripts.datasets import dedupe as dd
from workflow_scripts.datasets import leakage_audit
from workflow_scripts.datasets.stable_hash import hash_strings, seed_word
from workflow_scripts.datasets.synthetic_papers import synthetic_tables
from workflow_scripts.sources.titles import Utf8, normalize_titles, words

M64 = 2**64


TRICKY = "aZ09 -:.,\t!ÉéßﬁΣ日\u0301\u212aİǅ"  # punctuation, accents, ligatures, non-Latin, a combining mark


def regex_normalized(title: str | None) -> str | None:
    """The definition, one title at a time: NFKD, combining marks dropped, lower case, other runs one space."""
    if title is None:
        return None
    text = "".join(c for c in unicodedata.normalize("NFKD", title) if unicodedata.category(c) != "Mn")
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).strip()


def python_hash(text: str, seed: int) -> int:
    """stable_hash's definition in plain Python: 8-byte little-endian blocks (at least one), SplitMix64 finalizer."""
    def mix(x):
        x ^= x >> 30
        x = x * 0xBF58476D1CE4E5B9 % M64
        x ^= x >> 27
        x = x * 0x94D049BB133111EB % M64
        return x ^ (x >> 31)

    data = text.encode()
    h = int(seed_word(seed)) ^ (len(data) * 0x9E3779B97F4A7C15 % M64)
    for i in range(0, max(len(data), 1), 8):
        h = mix(h ^ int.from_bytes(data[i : i + 8], "little"))
    return h


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from(TRICKY), max_size=14)), max_size=25))
def test_vectorized_title_normalization_is_the_definition(titles):
    series = pl.Series("title", titles, dtype=pl.String)
    assert normalize_titles(series).to_list() == [regex_normalized(t) for t in titles]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=20), st.integers(0, 2**40))
def test_stable_hash_is_its_plain_definition(strings, seed):
    assert hash_strings(pl.Series(strings, dtype=pl.String), seed).tolist() == [python_hash(s, seed) for s in strings]


def papers_frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"arxiv_id": pl.String, "title": pl.String, "doi": pl.String,
                                      "journal_ref": pl.String}, orient="row")


def pairs_of(found: pl.DataFrame) -> set[tuple[str, str, str]]:
    return set(found.select("rule", "id_a", "id_b").iter_rows())


def test_each_rule_finds_its_pairs_and_nothing_else():
    papers = papers_frame([
        ("a1", "Sparse Attention for Long Documents", None, None),
        ("a2", "SPARSE ATTENTION, for long documents!", None, None),  # title-exact
        ("b1", "A Spectral Bound for Random Lattice Operators in High Dimension", None, None),
        ("b2", "A spectral bound for random lattice operators in high dimension: the extended version", None, None),
        ("c1", "Quantum Kernels", "10.1103/PhysRevD.80.012345", None),
        ("c2", "Kernels of Quantum Fields", "https://doi.org/10.1103/physrevd.80.012345 10.5555/other.1", None),
        ("d1", "Galaxy Halos", None, "Phys. Rev. D 80, 012345 (2009)"),
        ("d2", "Halo Assembly of Galaxies", None, "Phys.Rev.D80:012345,2009"),
        ("e1", "A Survey of Graph Neural Networks for Recommendation", None, "Proceedings (2020)"),
        ("e2", "A Survey of Graph Neural Networks for Drug Discovery", None, None),  # similar, below 0.7
        ("f1", "One", None, "Trans. Mach. Learn. Res. (2022)"),
        ("f2", "Two", None, "Trans. Mach. Learn. Res. (2022)"),
        ("f3", "Three", None, "Trans. Mach. Learn. Res. (2022)"),
        ("f4", "Four", None, "Trans. Mach. Learn. Res. (2022)"),
        ("f5", "Five", None, "Trans. Mach. Learn. Res. (2022)"),  # a venue, not a paper: 5 > max_papers_per_key
    ])
    found, counts = dd.duplicate_pairs(papers, dd.DedupeConfig.from_block({}, 0))
    assert pairs_of(found) == {("title-exact", "a1", "a2"), ("title-near", "b1", "b2"), ("doi", "c1", "c2"),
                               ("journal-ref", "d1", "d2")}
    assert counts["pairs_by_rule"] == {"title-exact": 1, "title-near": 1, "doi": 1, "journal-ref": 1}
    assert counts["journal_ref_keys_too_common"] == 1 and counts["doi_keys_too_common"] == 0


def test_a_table_without_doi_and_journal_ref_is_checked_by_titles_only():
    papers = papers_frame([("x1", "Same title", "10.1/a", None), ("x2", "Same Title", "10.1/a", None)])
    papers = papers.drop("doi", "journal_ref")
    found, counts = dd.duplicate_pairs(papers, dd.DedupeConfig.from_block({}, 0))
    assert counts["rules_checked"] == ["title-exact", "title-near"] and pairs_of(found) == {("title-exact", "x1", "x2")}


@pytest.fixture(scope="module")
def synthetic():
    papers, _ = synthetic_tables(20_000, seed=11, dup_share=0.01)
    return papers


def test_planted_duplicates_are_found_and_every_near_pair_meets_the_threshold(synthetic):
    cfg = dd.DedupeConfig.from_block({}, 5)
    found, counts = dd.duplicate_pairs(synthetic, cfg)
    by_id = {r["arxiv_id"]: r for r in synthetic.iter_rows(named=True)}
    # 200 planted re-submissions, 50 of each kind; a copy's own DOI or journal ref could only add pairs
    for rule in dd.RULES:
        assert counts["pairs_by_rule"][rule] >= 50, (rule, counts)
    near = found.filter(pl.col("rule") == "title-near")
    for a, b in near.select("id_a", "id_b").iter_rows():
        sa, sb = (set(_bigrams(regex_normalized(by_id[i]["title"]))) for i in (a, b))
        assert len(sa & sb) / len(sa | sb) >= cfg.title_similarity
    extended = synthetic.filter(pl.col("title").str.ends_with(": Extended Version"))
    assert set(extended["arxiv_id"]) <= set(near["id_a"]) | set(near["id_b"])


def _bigrams(title: str) -> list[str]:
    words = title.split()
    return [" ".join(words[i : i + 2]) for i in range(len(words) - 1)] if len(words) > 1 else [title]


def test_result_does_not_depend_on_row_order(synthetic):
    cfg = dd.DedupeConfig.from_block({}, 5)
    first, _ = dd.duplicate_pairs(synthetic, cfg)
    again, _ = dd.duplicate_pairs(synthetic.sample(fraction=1.0, shuffle=True, seed=9), cfg)
    assert first.equals(again)


def test_groups_are_connected_components_named_by_their_smallest_id():
    pairs = pl.DataFrame({"id_a": ["b", "c", "x", "d"], "id_b": ["c", "d", "y", "e"], "rule": ["doi"] * 4})
    groups = dd.duplicate_groups(pairs)
    assert dict(groups.iter_rows()) == {"b": "b", "c": "b", "d": "b", "e": "b", "x": "x", "y": "x"}


def write_split(path, rows):
    cols = ["paper_a_arxiv_id", "paper_b_arxiv_id", "paper_a_title", "paper_b_title"]
    pl.DataFrame(rows, schema={c: pl.String for c in cols}, orient="row").write_parquet(path)


def test_the_audit_fails_on_a_cross_split_duplicate_naming_the_pair_and_its_rule(tmp_path, capfd):
    write_split(tmp_path / "train.parquet", [("t1", "t2", "Deep Sparse Coding of Natural Images", "Train two")])
    write_split(tmp_path / "test_id.parquet", [("i1", "i2", "Deep sparse coding of natural images.", "Test two")])
    write_split(tmp_path / "test_ood.parquet", [("o1", "o2", "OOD one", "OOD two")])
    pl.DataFrame({"arxiv_id": ["t1", "t2", "i1", "i2", "o1", "o2"], "doi": [None, "10.1/x", None, None, None, "10.1/X"],
                  "journal_ref": [None] * 6}).write_parquet(tmp_path / "papers.parquet")
    args = [f"--split={s}={tmp_path / s}.parquet" for s in ("train", "test_id", "test_ood")]
    out = tmp_path / "audit.json"
    assert leakage_audit.main([*args, "--papers", str(tmp_path / "papers.parquet"), "--out", str(out)]) == 1
    log = capfd.readouterr().err
    assert "LEAK (title-exact): i1 in test_id ('Deep sparse coding of natural images.') and t1 in train" in log
    assert "LEAK (doi): o2 in test_ood ('OOD two') and t2 in train ('Train two') are one paper" in log
    assert not out.exists()
    # without the papers table the DOI pair cannot be seen, and the audit says which rules it checked
    report = leakage_audit.audit({s: str(tmp_path / f"{s}.parquet") for s in ("train", "test_id", "test_ood")},
                                 ["paper_a_arxiv_id", "paper_b_arxiv_id"], ["paper_a_title", "paper_b_title"])
    assert report["duplicates"]["rules_checked"] == ["title-exact", "title-near"]
    assert report["duplicates"]["pairs_by_rule"]["title-exact"] == {"within_split": 0, "across_splits": 1}
    assert not report["passed"]


def test_the_audit_passes_clean_splits_and_writes_what_it_checked(tmp_path):
    write_split(tmp_path / "train.parquet", [("t1", "t2", "Train one", "Train two")])
    write_split(tmp_path / "test_id.parquet", [("i1", "i2", "Test one", "Test two")])
    args = [f"--split={s}={tmp_path / s}.parquet" for s in ("train", "test_id")]
    out = tmp_path / "audit.json"
    assert leakage_audit.main([*args, "--dedupe-json", json.dumps({"title_similarity": 0.9}), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["passed"] and report["duplicates"]["cross_split_pairs"] == []
    assert report["papers_per_split"] == {"train": 2, "test_id": 2}


def test_words_of_normalized_titles_with_empty_and_missing_ones():
    text = Utf8.of(normalize_titles(pl.Series(["A b", "", "cd!", None, "e", "fg  hi-jk", ""], dtype=pl.String)))
    owner, starts, lengths = words(text)
    assert [(int(i), bytes(text.data[a : a + n]).decode()) for i, a, n in zip(owner, starts, lengths)] == [
        (0, "a"), (0, "b"), (2, "cd"), (4, "e"), (5, "fg"), (5, "hi"), (5, "jk")]
