"""The demo snapshot generator: determinism, native shapes, and a citation signal the models can learn.

Self-contained (parses the files with lxml/json directly): the readers are tested on their own.
"""

from __future__ import annotations

import hashlib
import json
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from lxml import etree

from workflow_scripts.demo import generate

OAI = {"o": "http://www.openarchives.org/OAI/2.0/", "a": "http://arxiv.org/OAI/arXiv/"}
ATOM = {"atom": "http://www.w3.org/2005/Atom", "os": "http://a9.com/-/spec/opensearch/1.1/",
        "arxiv": "http://arxiv.org/schemas/atom"}
ARGS = ["--n-papers", "4000", "--seed", "1234", "--start-date", "2021-01-01", "--end-date", "2025-12-31"]


def _tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "snap"
    assert generate.main(["--out-dir", str(out), *ARGS]) == 0
    return out


@pytest.fixture(scope="module")
def truth(demo) -> pl.DataFrame:
    return pl.read_parquet(demo / "truth.parquet")


def test_same_arguments_give_identical_files(demo, tmp_path):
    again = tmp_path / "again"
    assert generate.main(["--out-dir", str(again), *ARGS]) == 0
    first, second = _tree_hashes(demo), _tree_hashes(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    assert not [p for p in again.rglob(".*.tmp")], "temp files of atomic writes left behind"


def test_other_seed_differs_and_rerun_removes_stale_pages(tmp_path):
    out = tmp_path / "snap"
    generate.main(["--out-dir", str(out), "--n-papers", "300", "--seed", "1", "--oai-page-size", "20"])
    many = len(list(out.glob("oai_pmh/*/page-*.xml")))
    before = (out / "arxiv-metadata-oai-snapshot.json").read_bytes()
    generate.main(["--out-dir", str(out), "--n-papers", "300", "--seed", "2", "--oai-page-size", "200"])
    assert (out / "arxiv-metadata-oai-snapshot.json").read_bytes() != before
    # bigger pages: the earlier run's extra pages must be gone, or a reader would read them too
    assert len(list(out.glob("oai_pmh/*/page-*.xml"))) < many
    for set_dir in (out / "oai_pmh").iterdir():
        pages = sorted(set_dir.glob("page-*.xml"))
        last = etree.parse(str(pages[-1])).getroot().find("o:ListRecords/o:resumptionToken", OAI)
        assert last is not None and not (last.text or "").strip()


def test_oai_pages_parse_and_hold_the_expected_records(demo, truth):
    sets = generate.DEFAULT_SETS.split(",")
    assert sorted(p.name for p in (demo / "oai_pmh").iterdir()) == sorted(sets)
    seen: dict[str, set[str]] = {}
    deleted = 0
    for set_dir in sorted((demo / "oai_pmh").iterdir()):
        pages = sorted(set_dir.glob("page-*.xml"))
        ids, sizes = [], set()
        for n, page in enumerate(pages, 1):
            assert page.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
            root = etree.parse(str(page)).getroot()
            assert root.tag == "{%s}OAI-PMH" % OAI["o"]
            records = root.findall("o:ListRecords/o:record", OAI)
            assert len(records) == 200 or n == len(pages)
            token = root.find("o:ListRecords/o:resumptionToken", OAI)
            assert token.get("cursor") == str((n - 1) * 200)
            sizes.add(token.get("completeListSize"))
            assert bool((token.text or "").strip()) == (n < len(pages))
            for rec in records:
                header = rec.find("o:header", OAI)
                if header.get("status") == "deleted":
                    deleted += 1
                    assert rec.find("o:metadata", OAI) is None
                    continue
                meta = rec.find("o:metadata/a:arXiv", OAI)
                arxiv_id = meta.findtext("a:id", namespaces=OAI)
                assert header.findtext("o:identifier", namespaces=OAI) == f"oai:arXiv.org:{arxiv_id}"
                assert meta.findtext("a:abstract", namespaces=OAI).strip()
                assert meta.find("a:authors/a:author/a:keyname", OAI) is not None
                ids.append(arxiv_id)
        assert len(sizes) == 1 and int(sizes.pop()) >= len(ids)
        assert ids == sorted(ids) and len(ids) == len(set(ids))
        seen[set_dir.name] = set(ids)
    assert deleted == 2
    # every paper is in its primary category's set; cross-listed ones in the other sets as well
    archive_set = {"cs": "cs", "math": "math", "stat": "stat", "econ": "econ", "eess": "eess", "q-bio": "q-bio"}
    for row in truth.select("arxiv_id", "categories").iter_rows(named=True):
        for cat in row["categories"]:
            archive = cat.split(".")[0]
            assert row["arxiv_id"] in seen[archive_set.get(archive, "physics")]
    assert len(set().union(*seen.values())) == truth.height


def test_oai_updated_only_for_revised_papers(demo, truth):
    versions = dict(zip(truth["arxiv_id"], truth["n_versions"]))
    root = etree.parse(str(demo / "oai_pmh" / "cs" / "page-00001.xml")).getroot()
    for meta in root.iterfind("o:ListRecords/o:record/o:metadata/a:arXiv", OAI):
        has_updated = meta.find("a:updated", OAI) is not None
        assert has_updated == (versions[meta.findtext("a:id", namespaces=OAI)] > 1)


def test_dump_is_json_lines_with_the_planned_dirt(demo, truth):
    lines = (demo / "arxiv-metadata-oai-snapshot.json").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]  # every line is JSON: the dirt is semantic, not syntactic
    ids = [r["id"] for r in rows]
    versioned = [i for i in ids if "v" in i]
    assert len(versioned) == 1 and versioned[0].split("v")[0] in ids
    assert sum(1 for r in rows if not r["abstract"].strip()) == 3
    in_dump = truth.filter("in_dump")
    assert len(set(ids) - set(versioned)) == in_dump.height == len(rows) - 1
    for r in rows[:50]:
        assert parsedate_to_datetime(r["versions"][0]["created"]).date().isoformat() <= r["update_date"]
    assert all(r["update_date"] <= "2025-06-30" for r in rows)
    # the dump is older than the OAI harvest: some papers were revised after it
    later = truth.filter(pl.col("in_dump") & (pl.col("updated") > pl.date(2025, 6, 30)))
    assert later.height > 0
    first = rows[0]
    assert set(first) == {"id", "submitter", "authors", "title", "comments", "journal-ref", "doi", "report-no",
                          "categories", "license", "abstract", "versions", "update_date", "authors_parsed"}
    assert all(len(a) == 3 for a in first["authors_parsed"])


def test_api_pages_are_atom_with_the_newest_cs_month(demo, truth):
    pages = sorted((demo / "arxiv_api" / "recent-cs").glob("page-*.xml"))
    assert pages
    entries = []
    for page in pages:
        root = etree.parse(str(page)).getroot()
        assert root.tag == "{%s}feed" % ATOM["atom"]
        total = int(root.findtext("os:totalResults", namespaces=ATOM))
        entries += root.findall("atom:entry", ATOM)
    assert total == len(entries) == truth["in_api"].sum() > 0
    for e in entries:
        assert e.findtext("atom:id", namespaces=ATOM).startswith("http://arxiv.org/abs/")
        assert e.find("arxiv:primary_category", ATOM).get("term")
        assert any(c.get("term").startswith("cs.") for c in e.findall("atom:category", ATOM))


@pytest.mark.parametrize("source, pattern", [("semantic_scholar", "batch-*.json"), ("openalex", "page-*.json")])
def test_citation_responses_align_with_their_manifest(demo, truth, source, pattern):
    counts = dict(zip(truth["arxiv_id"], truth["citation_count"]))
    found = dict(zip(truth["arxiv_id"], truth["s2_found"]))
    manifest = [json.loads(line) for line in (demo / source / "manifest.jsonl").read_text().splitlines()]
    files = sorted(p.name for p in (demo / source).glob(pattern))
    assert [m["file"] for m in manifest] == files
    requested = [i for m in manifest for i in m["ids"]]
    assert requested == sorted(truth["arxiv_id"].to_list())
    for m in manifest:
        assert m["fetched_at"] == "2025-12-01T00:00:00+00:00"
        body = json.loads((demo / source / m["file"]).read_text())
        if source == "semantic_scholar":
            assert len(body) == len(m["ids"]) <= 500
            for arxiv_id, entry in zip(m["ids"], body):
                assert (entry is None) == (not found[arxiv_id])
                if entry is not None:
                    assert entry["externalIds"]["ArXiv"] == arxiv_id and len(entry["paperId"]) == 40
                    assert entry["citationCount"] == counts[arxiv_id]
        else:
            assert len(m["ids"]) <= 50 and body["meta"]["count"] == len(body["results"])
            got = {r["doi"].rsplit("arxiv.", 1)[1]: r["cited_by_count"] for r in body["results"]}
            assert got == {i: counts[i] for i in m["ids"] if found[i]}
    missing = 1 - truth["s2_found"].mean()
    assert 0.005 < missing < 0.05


def test_citations_follow_the_text(truth):
    c = truth["citation_count"].to_numpy()
    assert c.min() >= 0 and c.max() >= 500  # heavy tailed
    ranks = lambda x: pl.Series(x).rank("average").to_numpy()  # noqa: E731
    rho_hot = np.corrcoef(ranks(c), ranks(truth["n_hot"].to_numpy()))[0, 1]
    rho_stale = np.corrcoef(ranks(c), ranks(truth["n_stale"].to_numpy()))[0, 1]
    assert rho_hot > 0.2 and rho_stale < -0.1


def test_hot_terms_are_in_the_published_text(demo, truth):
    terms = {r["arxiv_id"]: r["hot_terms"] + r["stale_terms"] for r in truth.iter_rows(named=True)}
    root = etree.parse(str(demo / "oai_pmh" / "math" / "page-00001.xml")).getroot()
    for meta in root.iterfind("o:ListRecords/o:record/o:metadata/a:arXiv", OAI):
        text = " ".join((meta.findtext("a:title", namespaces=OAI) + " " + meta.findtext("a:abstract", namespaces=OAI)).split()).lower()
        assert all(t.lower() in text for t in terms[meta.findtext("a:id", namespaces=OAI)])


def test_field_mix_and_groups_for_the_2025_test_split(truth):
    share = truth.group_by("field").len().with_columns(pl.col("len") / truth.height)
    share = dict(zip(share["field"], share["len"]))
    assert share == pytest.approx({"CS": 0.40, "Physics": 0.30, "Math": 0.15, "Others": 0.15}, abs=0.02)
    assert truth["primary_category"].n_unique() == 16
    groups = (
        truth.filter(pl.col("published").dt.year() == 2025)
        .group_by("primary_category", pl.col("published").dt.month())
        .len()
    )
    assert groups["len"].median() >= 4
    ids = truth["arxiv_id"].to_list()
    assert all(i[:4] == d.strftime("%y%m") for i, d in zip(ids, truth["published"]))


def test_bad_window_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty window"):
        generate.main(["--out-dir", str(tmp_path), "--start-date", "2026-01-01"])
