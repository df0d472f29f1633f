"""PeerJ: the parser on hand-written review-history and article pages in PeerJ's published structure (first round
only, the editor's decision skipped, two reviewers, sections by heading), bad pages and records, and the harvester
against loopback Crossref and PeerJ servers (429 with Retry-After, the article page only for a review history with
reports, a rerun that asks for nothing)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from tests import biomed_helpers
from tests.biomed_helpers import QUARANTINE, parse_cli, work_list
from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources.biomed import crossref, peerj, tables
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import PoliteClient, RetryPolicy

FIXTURES = biomed_helpers.FIXTURES / "peerj"
ARTICLE = "peerj:10.7717/peerj.1000"


def parse(tmp_path: Path, *dirs: Path, strict: bool = False):
    return parse_cli(peerj, tmp_path, {"--html": dirs}, () if strict else QUARANTINE)


def test_first_round_reviewers_and_the_article_body_from_the_two_pages(tmp_path):
    frames, rejects, summary = parse(tmp_path, FIXTURES)
    articles, reports = frames["articles"], frames["reports"]
    assert articles.schema == pl.Schema(tables.ARTICLE_SCHEMA) and frames["responses"].height == 0
    row = articles.row(0, named=True)
    assert (row["article_id"], row["family_id"], row["doi"], row["version"], row["journal"]) == (
        ARTICLE, "peerj:1000", "10.7717/peerj.1000", 1, "PeerJ")
    assert (row["published"], row["license"], row["file"]) == (
        dt.date(2015, 5, 12), "http://creativecommons.org/licenses/by/4.0/", "article-1000.html")
    assert row["abstract"] == "Background\n\nHepatocytes take up zinc.\n\nResults\n\nUptake doubles with zinc."
    assert [(s["kind"], s["title"]) for s in row["sections"]] == [
        ("introduction", "Introduction"), ("methods", "Materials & Methods"), ("results", "Results"),
        ("discussion", "Conclusions")]
    assert row["sections"][1]["text"] == "Cells were grown for 48 h.\n\nStatistics\n\nMeans of three wells."
    assert row["sections"][2]["text"] == "Uptake doubled.\n\nZinc | Uptake\n0 µM | 1.0\n10 µM | 2.1"
    assert row["figure_captions"] == [{"label": "Figure 1:", "text": "Uptake. Mean of three wells."}]

    assert reports.select("report_id", "reviewer", "round", "kind", "recommendation").rows() == [
        (f"{ARTICLE}#r1-1", 1, 1, "peerj-review", None), (f"{ARTICLE}#r1-2", 2, 1, "peerj-review", None)]
    assert reports["text"][0].split("\n\n") == [
        "Basic reporting", "The English is clear.",
        "Experimental design", "The uptake assay lacks a zinc-free control.",
        "Validity of the findings", "Three wells per group are too few.", "No test is named for the p values.",
        "Additional comments", "No comment."]
    # reviewer 2's older heading stays; the review's citation, inside the body or after it, is cut off
    assert reports["text"][1] == "Comments for the author\n\nThe transporters are named but never knocked down."
    assert not reports["text"].str.contains("Cite this review|Peer Review #|rebuttal").any()
    assert not any("reviewers' comments" in t or "revision" in t for t in reports["text"])  # decisions, round 2
    assert summary["later_round_reviews"] == 1
    # peerj.2000's authors did not publish its history: counted, not a reject
    assert not rejects and summary["review_history_not_published"] == 1


def test_bad_pages_and_records_are_rejects_naming_the_file(tmp_path):
    snap = tmp_path / "snap"
    snap.mkdir()
    history, article = (FIXTURES / "reviews-1000.html").read_text(), (FIXTURES / "article-1000.html").read_text()
    (snap / "a.html").write_text(article)
    # reviewer 2's text is missing: the report is a reject, reviewer 1 is kept
    start = history.index("<h4>Comments for the author</h4>")
    reviewer_2 = history[start: history.index("</p>", start) + len("</p>")]
    assert reviewer_2 in history
    (snap / "r.html").write_text(history.replace(reviewer_2, ""))
    without_body = article.replace('<div class="body" lang="en">', '<div class="nobody">')
    copies = [(3000, "nobody.html", without_body), (3000, "r3000.htm", history), (4000, "alone.html", history)]
    for n, name, text in copies:
        (snap / name).write_text(text.replace("peerj.1000", f"peerj.{n}").replace("/articles/1000/", f"/articles/{n}/"))
    (snap / "cut.html.gz").write_bytes(gzip.compress(article.encode())[:100])
    (snap / "empty.html").write_bytes(b"")
    (snap / "blog.html").write_text("<html><head><title>A blog</title></head><body><p>Hi</p></body></html>")
    with pytest.raises(BadFileError) as err:
        parse(tmp_path, snap, strict=True)
    assert all(f"{snap / name} (" in str(err.value) for name in ("cut.html.gz", "empty.html", "blog.html"))

    frames, rejects, summary = parse(tmp_path, snap)
    assert frames["articles"]["article_id"].to_list() == [ARTICLE]
    assert frames["reports"]["report_id"].to_list() == [f"{ARTICLE}#r1-1"]
    assert sorted((Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects) == [
        ("alone.html", "10.7717/peerj.4000", "review history without its article page"),
        ("blog.html", "*", "bad file (wrong source)"), ("cut.html.gz", "*", "bad file (malformed)"),
        ("empty.html", "*", "bad file (empty)"), ("nobody.html", "10.7717/peerj.3000", "article without body"),
        ("r.html", "10.7717/peerj.1000 version-0-1-review-2", "review without text")]
    assert summary["papers_lost"] == 3


def test_a_withheld_history_is_told_by_its_text_and_a_missing_page_is_final(tmp_path):
    withheld = (FIXTURES / "reviews-2000.html").read_bytes()
    # no canonical link, no review blocks: the sentence alone says it is the review-history page
    assert peerj.read_page(withheld, Path("p"), "p").kind == "reviews"
    peerj.check_page("reviews")(withheld)

    def works(req):
        dois = ["10.7717/peerj.2000", "10.7717/peerj.3000"] if req.arg("cursor") == "*" else []
        items = [{"DOI": d, "type": "journal-article", "container-title": ["PeerJ"]} for d in dois]
        return Reply(200, json.dumps(work_list(items, "n", 2, 20)))

    out, fast = tmp_path / "raw", RetryPolicy(min_interval_s=0.0, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    with LoopbackServer() as server:
        server.route("/works", works)
        server.route("/articles/2000/reviews/", lambda req: Reply(200, withheld, content_type="text/html"))
        server.route("/articles/3000/reviews/", lambda req: Reply(404, "Not Found"))
        harvest = peerj.Harvest(server.url, server.url, dt.date(2015, 1, 1), None, out, None)
        with crossref.polite_client(fast, None) as listing, PoliteClient(fast) as client:
            summary = harvest.run(listing, client)
            assert (summary["fetched"], summary["failed"], summary["gone"]) == (1, 0, 1)
            row = json.loads((out / "rejects.jsonl").read_text())
            assert (row["file"], row["record"], row["status"]) == ("pages/peerj-3000-reviews.html",
                                                                    "10.7717/peerj.3000", 404)
            n_before = len(server.requests)
            assert harvest.run(listing, client)["gone"] == 1 and len(server.requests) == n_before
    assert [r.path for r in server.requests].count("/articles/3000/reviews/") == 1


def test_harvest_fetches_the_article_page_only_for_a_review_history_with_reports(tmp_path):
    pages = {"/articles/1000/reviews/": "reviews-1000.html", "/articles/1000/": "article-1000.html",
             "/articles/2000/reviews/": "reviews-2000.html"}
    pages = {path: (FIXTURES / name).read_bytes() for path, name in pages.items()}
    limited = []

    def site(req):
        if req.path == "/articles/1000/" and not limited:
            limited.append(req)
            return Reply(429, "slow down", {"Retry-After": "1"})
        return Reply(200, pages[req.path], content_type="text/html") if req.path in pages else Reply(404, "no")

    def works(req):
        dois = ["10.7717/peerj.2000", "10.7717/peerj.1000", "10.7717/peerj-cs.5"] if req.arg("cursor") == "*" else []
        items = [{"DOI": d, "type": "journal-article", "container-title": ["PeerJ"]} for d in dois]
        return Reply(200, json.dumps(work_list(items, "n", 3, 20)))

    out, fast = tmp_path / "raw", RetryPolicy(min_interval_s=0.05, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    with LoopbackServer() as server:
        server.route("/works", works)
        for path in pages:
            server.route(path, site)
        harvest = peerj.Harvest(server.url, server.url, dt.date(2015, 1, 1), None, out, "curator@example.org")
        with crossref.polite_client(fast, harvest.mailto) as listing, PoliteClient(fast) as client:
            summary = harvest.run(listing, client)
            assert server.requests[0].arg("filter") == ("prefix:10.7717,container-title:PeerJ,from-pub-date:2015-01-01,"
                                                        "type:journal-article")
            assert [r.path for r in server.requests if r.path != "/works"] == [
                "/articles/1000/reviews/", "/articles/1000/", "/articles/1000/", "/articles/2000/reviews/"]
            n_before = len(server.requests)
            assert harvest.run(listing, client)["on_disk"] == 3 and len(server.requests) == n_before
    assert (summary["articles"], summary["with_first_round_reviews"], summary["fetched"]) == (2, 1, 3)
    assert sorted(p.name for p in (out / "pages").iterdir()) == [
        "peerj-1000-article.html", "peerj-1000-reviews.html", "peerj-2000-reviews.html"]
    frames, rejects, summary = parse(tmp_path, out / "pages")
    assert frames["reports"].height == 2 and not rejects and summary["review_history_not_published"] == 1
