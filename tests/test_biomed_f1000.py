"""F1000Research / Wellcome / Gates: the harvester against loopback Crossref and platform servers (listing per
platform, rate spacing, 429 with Retry-After, a failed article asked again by the rerun), and the parser on
hand-written JATS files in F1000's structure (a two-version paper whose newer XML repeats the older reports, the older
file's ref-report, recommendations, a nested response, bad files and records)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from tests import biomed_helpers
from tests.biomed_helpers import QUARANTINE, parse_cli, work_list
from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources.biomed import f1000, tables
from workflow_scripts.sources.errors import BadFileError

FIXTURES = biomed_helpers.FIXTURES / "f1000"
PAPER = "10.12688/f1000research.12345"
V1, V2, WELLCOME = f"f1000:{PAPER}.1", f"f1000:{PAPER}.2", "f1000:10.12688/wellcomeopenres.15000.1"


def parse(tmp_path: Path, *dirs: Path, strict: bool = False):
    return parse_cli(f1000, tmp_path, {"--xml": dirs}, () if strict else QUARANTINE)


def test_each_report_once_on_the_version_it_was_written_on(tmp_path):
    frames, rejects, summary = parse(tmp_path, FIXTURES)
    articles, reports, responses = frames["articles"], frames["reports"], frames["responses"]
    assert articles.schema == pl.Schema(tables.ARTICLE_SCHEMA) and reports.schema == pl.Schema(tables.REPORT_SCHEMA)
    assert articles.select("article_id", "family_id", "version", "journal").rows() == [
        (V1, f"f1000:{PAPER}", 1, "F1000Research"), (V2, f"f1000:{PAPER}", 2, "F1000Research"),
        (WELLCOME, "f1000:10.12688/wellcomeopenres.15000", 1, "Wellcome Open Research")]
    v2 = articles.row(1, named=True)
    assert [s["kind"] for s in v2["sections"]] == ["introduction", "methods", "results", "discussion"]
    assert v2["license"] == "http://creativecommons.org/licenses/by/4.0/" and v2["review_style"] == "f1000-open-review"
    assert articles.row(0, named=True)["figure_captions"][0]["label"] == "Figure 1."
    assert articles["file"].to_list() == ["f1000research.12345.1.xml", "f1000research.12345.2.xml",
                                          "wellcome/any-name.xml"]
    # version 2's file repeats version 1's two reports and the response: kept once, from the older ref-report file
    assert reports.select("report_id", "round", "reviewer", "kind", "recommendation").rows() == [
        (f"{V1}#r1-1", 1, 1, "ref-report", "approve-with-reservations"),
        (f"{V1}#r1-2", 1, 2, "ref-report", "reject"),
        (f"{V2}#r2-1", 2, 1, "reviewer-report", "approve"),
        (f"{V2}#r2-2", 2, 2, "reviewer-report", "approve-with-reservations"),  # no title: its date says version 2
        (f"{WELLCOME}#r1-1", 1, 1, "reviewer-report", None)]  # "approve-pending": not a verdict F1000 gives
    assert reports["text"][0].startswith("The uptake assay lacks a zinc-free control.\n\nThree wells")
    assert responses.select("response_id", "article_id", "round", "kind").rows() == [
        (f"{V1}#a1-1", V1, 1, "response")]
    assert "zinc-free control" in responses["text"][0] and "zinc-free control" not in reports["text"][1]
    assert (summary["repeated_sub_articles"], summary["unknown_recommendations"]) == (3, {"approve-pending": 1})
    assert sorted((Path(r["file"]).name, r["record"], r["reason"]) for r in rejects) == [
        ("any-name.xml", "10.12688/wellcomeopenres.15000.1 report50002",
         "review sub-article without text (reviewer-report)"),
        ("gates-no-body.xml", "10.12688/gatesopenres.13000.1", "article without body")]


def test_without_the_older_file_its_reports_stay_in_their_round_on_the_newer_version(tmp_path):
    snap = tmp_path / "snap"
    snap.mkdir()
    shutil.copy(FIXTURES / "f1000research.12345.2.xml", snap / "v2.xml")
    frames, rejects, summary = parse(tmp_path, snap)
    assert frames["articles"]["article_id"].to_list() == [V2] and not rejects
    assert frames["reports"].select("report_id", "kind").rows() == [
        (f"{V2}#r1-1", "reviewer-report"), (f"{V2}#r1-2", "reviewer-report"),
        (f"{V2}#r2-1", "reviewer-report"), (f"{V2}#r2-2", "reviewer-report")]
    assert frames["responses"]["response_id"].to_list() == [f"{V2}#a1-1"]
    assert summary["reports_on_versions_not_in_files"] == 2


def test_bad_files_are_named_and_quarantined_with_their_reason(tmp_path):
    snap = tmp_path / "snap"
    snap.mkdir()
    v1 = (FIXTURES / "f1000research.12345.1.xml").read_bytes()
    (snap / "v1.xml").write_bytes(v1)
    (snap / "truncated.xml").write_bytes(v1[: len(v1) // 2])
    (snap / "cut.xml.gz").write_bytes(gzip.compress(v1)[:200])
    (snap / "login.xml").write_text("<!DOCTYPE html><html><head><title>Sign in</title></head></html>")
    (snap / "other.xml").write_bytes(v1.replace(b"10.12688/f1000research.12345.1<", b"10.7717/peerj.1000<"))
    (snap / "oai.xml").write_text("<OAI-PMH><ListRecords/></OAI-PMH>")
    with pytest.raises(BadFileError) as err:
        parse(tmp_path, snap, strict=True)
    assert all(f"{snap / name} (" in str(err.value) for name in ("truncated.xml", "cut.xml.gz", "login.xml", "oai.xml"))

    frames, rejects, summary = parse(tmp_path, snap)
    assert frames["articles"]["article_id"].to_list() == [V1]
    assert sorted((Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects) == [
        ("cut.xml.gz", "*", "bad file (malformed)"), ("login.xml", "*", "bad file (html)"),
        ("oai.xml", "*", "bad file (malformed)"), ("other.xml", "10.7717/peerj.1000",
                                                   "not a versioned F1000 / Wellcome / Gates DOI"),
        ("truncated.xml", "*", "bad file (malformed)")]
    assert (summary["papers_lost"], summary["bad_files"][0]["file"]) == (4, str(snap / "cut.xml.gz"))


# --------------------------------------------------------------------------------------------------------------------
# harvest


LISTED = {"F1000Research": [f"{PAPER}.1", f"{PAPER}.2", PAPER],
          "Wellcome Open Research": ["10.12688/wellcomeopenres.15000.1"]}


def crossref_works(req) -> Reply:
    container = dict(f.split(":", 1) for f in req.arg("filter").split(","))["container-title"]
    dois = LISTED.get(container, []) if req.arg("cursor") == "*" else []
    items = [{"DOI": doi, "type": "journal-article", "title": ["t"], "indexed": {"date-time": "2024-01-01T00:00:00Z"}}
             for doi in dois]
    return Reply(200, json.dumps(work_list(items, "next", len(dois), 20)), content_type="application/json")


def test_harvest_lists_each_platform_fetches_each_version_and_a_rerun_asks_again_for_the_failed(tmp_path, monkeypatch):
    v1, v2 = ((FIXTURES / f"f1000research.12345.{v}.xml").read_bytes() for v in (1, 2))
    limited, wellcome_up = [], []

    def second_version(req):
        if not limited:
            limited.append(req)
            return Reply(429, "too many", {"Retry-After": "1"})
        return Reply(200, v2, content_type="application/xml")

    def wellcome(req):  # an HTML maintenance page first, never saved as the article
        if wellcome_up:
            return Reply(200, (FIXTURES / "wellcome" / "any-name.xml").read_bytes(), content_type="application/xml")
        return Reply(200, "<!DOCTYPE html><html><head><title>Maintenance</title></head></html>")

    out = tmp_path / "raw"
    with LoopbackServer() as server:
        server.route("/works", crossref_works)
        server.route("/f1000/articles/12345/1/xml", lambda req: Reply(200, v1, content_type="application/xml"))
        server.route("/f1000/articles/12345/2/xml", second_version)
        server.route("/wellcome/articles/15000/1/xml", wellcome)
        base_urls = {p: f"{server.url}/{name}" for p, name in
                     [("f1000research", "f1000"), ("wellcomeopenres", "wellcome"), ("gatesopenres", "gates")]}
        argv = ["harvest", "--from-date", "2018-01-01", "--crossref-url", server.url, "--base-urls", json.dumps(base_urls), "--out-dir", str(out),
                "--done", str(tmp_path / "done.json"), "--min-interval-s", "0.3", "--crossref-min-interval-s", "0.05"]
        monkeypatch.setenv("CROSSREF_MAILTO", "curator@example.org")
        f1000.main(argv)
        site = [r for r in server.requests if r.path != "/works"]
        assert [r.path for r in site] == ["/f1000/articles/12345/1/xml", "/f1000/articles/12345/2/xml",
                                          "/f1000/articles/12345/2/xml", "/wellcome/articles/15000/1/xml"]
        assert site[2].at - site[1].at >= 0.95, "Retry-After honoured"
        assert all(b.at - a.at >= 0.25 for a, b in zip(site, site[1:])), "min interval between article requests"
        listing = [r for r in server.requests if r.path == "/works"]
        assert {r.arg("filter").split(",")[0] for r in listing} == {
            "container-title:F1000Research", "container-title:Wellcome Open Research",
            "container-title:Gates Open Research"}
        assert all(r.arg("mailto") == "curator@example.org" and r.arg("offset") is None for r in listing)
        done = json.loads((tmp_path / "done.json").read_text())
        assert (done["fetched"], done["failed"]) == (2, 1)
        assert done["platforms"]["f1000research"] == {"versions": 2, "articles": 1}  # the versionless DOI is not one
        assert json.loads((out / "failures.jsonl").read_text())["file"] == "10.12688_wellcomeopenres.15000.1.xml"

        wellcome_up.append(True)
        n_before = len(server.requests)
        f1000.main(argv)
        assert [r.path for r in server.requests[n_before:]] == ["/wellcome/articles/15000/1/xml"]
    assert (out / "articles" / "f1000research" / "10.12688_f1000research.12345.2.xml").read_bytes() == v2
    frames, rejects, _ = parse(tmp_path, out / "articles")
    assert frames["articles"]["article_id"].to_list() == [V1, V2, WELLCOME] and frames["reports"].height == 5
