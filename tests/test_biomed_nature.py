"""Nature portfolio: discovery through Crossref, the landing page's Peer Review File link, the PDF and the Europe PMC
full text against loopback servers (rate spacing, 429, resume), and the parser of review PDFs made with fpdf2."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from fpdf import FPDF

from tests.biomed_helpers import FIXTURES, help_text, parse_cli, work_list
from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources.biomed import nature, tables
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import PoliteClient, RetryPolicy

LANDING = FIXTURES / "nature" / "s41467-021-20001-1.html"
FULL_TEXT = FIXTURES / "europepmc" / "PMC7000001.xml"
REVIEWED, UNREVIEWED, NEWS = "10.1038/s41467-021-20001-1", "10.1038/s41467-021-20005-5", "10.1038/d41586-021-00001-1"
ESM = "/static-content.springer.com/esm/art%3A10.1038%2Fs41467-021-20001-1/MediaObjects/41467_2021_20001_MOESM2_ESM.pdf"

ROUND_1 = [
    "Reviewer #1 (Remarks to the Author):",
    "The authors claim that deoxycholic acid expands the stem cell pool but show only organoid data.",
    "In vivo lineage tracing is needed to support this claim.",
    "Reviewer #2 (Remarks to the Author):",
    "The germ-free controls were housed in a different facility.",
    "Reviewer #2 (Remarks on code availability):",
    "The analysis scripts are not deposited.",
]
REVIEW_FILE = [
    "Peer Review File",
    "Open Access This file is licensed under a Creative Commons Attribution 4.0 International License.",
    "REVIEWERS' COMMENTS",
    *ROUND_1,
    "Response to Reviewers' Comments",
    "We thank the reviewers for their careful reading.",
    "Reviewer #1 (Remarks to the Author): The authors claim that deoxycholic acid expands the stem cell pool.",
    "We added lineage tracing with Lgr5-CreERT2 mice (new Fig. 3).",
    "REVIEWERS' COMMENTS",
    "Reviewer #1 (Remarks to the Author):",
    "The lineage tracing is convincing. I have no further concerns.",
    "Reviewer #2 (Remarks to the Author):",
    "Housing is now described, but the facility effect remains untested.",
]


def pdf_of(lines: list[str]) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for line in lines:
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# --------------------------------------------------------------------------------------------------------------------
# harvest


def works(dois: list[str], cursor: str | None) -> dict:
    items = [{"DOI": d.upper(), "type": "journal-article", "title": [f"Title of {d}"],
              "container-title": ["Nature Communications"], "published": {"date-parts": [[2021, 1, 15]]},
              "license": [{"URL": "http://creativecommons.org/licenses/by/4.0/"}]} for d in dois]
    return work_list(items, cursor, 3, 20)


def install(server: LoopbackServer, pdf_replies: list) -> str:
    url = server.url
    pages = {"*": works([REVIEWED, NEWS, UNREVIEWED], "c1"), "c1": works([], None)}
    server.route("/works", lambda req: Reply(200, json.dumps(pages[req.arg("cursor")]),
                                             content_type="application/json"))
    landing = LANDING.read_text().replace("https://static-content.springer.com", url + "/static-content.springer.com")
    server.route("/articles/s41467-021-20001-1", lambda req: Reply(200, landing, content_type="text/html"))
    unreviewed = ("<html><head><meta name='citation_doi' content='10.1038/s41467-021-20005-5'></head><body><a "
                  "href='/x.pdf'>Supplementary Information</a></body></html>")
    server.route("/articles/s41467-021-20005-5", lambda req: Reply(200, unreviewed, content_type="text/html"))
    server.route(ESM, lambda req: pdf_replies.pop(0) if pdf_replies else Reply(200, pdf_of(REVIEW_FILE)))
    search = json.loads((FIXTURES / "europepmc" / "search-10.1038_s41467-021-20001-1.json").read_text())
    server.route("/epmc/search", lambda req: Reply(200, json.dumps(search), content_type="application/json"))
    server.route("/epmc/PMC7000001/fullTextXML", lambda req: Reply(200, FULL_TEXT.read_bytes()))
    return url


def harvest(url: str, out: Path, site_interval_s: float = 0.0) -> dict:
    h = nature.Harvest(url, url + "/articles", url + "/epmc", out, dt.date(2021, 1, 1), dt.date(2021, 12, 31),
                       rows=20, mailto="someone@example.org")
    api = RetryPolicy(min_interval_s=0.0, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    site = RetryPolicy(min_interval_s=site_interval_s, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    with PoliteClient(api) as cr, PoliteClient(site) as s, PoliteClient(api) as epmc:
        return h.run(["Nature Communications"], cr, s, epmc)


def test_crossref_landing_page_review_file_and_full_text_then_nothing_asked_again(tmp_path):
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        summary = harvest(install(server, [Reply(429, "slow down", {"Retry-After": "1"})]), out, 0.2)
    paths = [r.path for r in server.requests]
    assert paths == ["/works", "/works", "/articles/s41467-021-20001-1", ESM, ESM, "/articles/s41467-021-20005-5",
                     "/epmc/search", "/epmc/PMC7000001/fullTextXML"]  # the news DOI is never asked for
    works = server.requests[0]
    assert works.arg("filter") == ("container-title:Nature Communications,from-pub-date:2021-01-01,"
                                   "until-pub-date:2021-12-31,type:journal-article")
    assert (works.arg("cursor"), works.arg("mailto")) == ("*", "someone@example.org")
    site = [r for r in server.requests if r.path.startswith(("/articles", "/static"))]
    gaps = [b.at - a.at for a, b in zip(site, site[1:])]
    assert min(gaps) >= 0.18 and gaps[1] >= 0.95, f"site requests too close or the 429 not waited out: {gaps}"
    assert summary["journals"]["Nature Communications"] == {
        "articles": 2, "news_skipped": 1, "with_peer_review_file": 1, "without_peer_review_file": 1, "failed": 0,
        "gone": 0}
    assert summary["europepmc"]["full_texts"] == 1
    assert (out / "peer_review" / "s41467-021-20001-1.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "landing" / "s41467-021-20001-1.html").exists()
    assert (out / "europepmc" / "fulltext" / "PMC7000001.xml").read_bytes() == FULL_TEXT.read_bytes()

    with LoopbackServer() as server:
        harvest(install(server, []), out)
    assert server.requests == []


def test_a_review_file_answered_with_an_html_page_is_not_saved_and_is_asked_again(tmp_path):
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = install(server, [Reply(200, "<!DOCTYPE html><html><title>Access denied</title></html>")])
        # a consent page served instead of the other article's landing page is not taken for it
        server.route("/articles/s41467-021-20005-5", lambda req: Reply(200, "<html><title>Cookies</title></html>"))
        summary = harvest(url, out)
        assert summary["journals"]["Nature Communications"]["failed"] == 2 and summary["failed"] == 2
        assert not (out / "peer_review").exists() and summary["europepmc"]["dois"] == 0
        assert not (out / "landing" / "s41467-021-20005-5.html").exists()
        reasons = (out / "failures.jsonl").read_text()
        assert "html" in reasons and "does not name 10.1038/s41467-021-20005-5" in reasons
        summary = harvest(url, out)
    assert summary["journals"]["Nature Communications"]["with_peer_review_file"] == 1
    assert [r.path for r in server.requests].count("/articles/s41467-021-20001-1") == 1  # kept from the first run


def test_a_landing_page_or_review_file_answered_404_is_a_final_reject_and_the_harvest_goes_on(tmp_path):
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = install(server, [Reply(404, "gone")])  # the review file's link is dead
        server.route("/articles/s41467-021-20005-5", lambda req: Reply(410, "withdrawn"))
        summary = harvest(url, out)
        assert summary["journals"]["Nature Communications"] == {
            "articles": 2, "news_skipped": 1, "with_peer_review_file": 0, "without_peer_review_file": 0,
            "failed": 0, "gone": 2}
        assert (summary["gone"], summary["failed"]) == (2, 0) and (out / "failures.jsonl").read_text() == ""
        rows = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
        assert [(r["file"], r["record"], r["status"]) for r in rows] == [
            ("peer_review/s41467-021-20001-1.pdf", REVIEWED, 404), ("landing/s41467-021-20005-5.html", UNREVIEWED, 410)]
        n_before = len(server.requests)
        again = harvest(url, out)
    # each asked once (never retried), never again; the landing page on disk is read from disk
    assert server.requests[n_before:] == [] and again["journals"]["Nature Communications"]["gone"] == 2
    assert [r.path for r in server.requests].count(ESM) == 1


def test_the_link_is_found_by_label_and_pattern():
    pattern = re.compile(nature.DEFAULT_LINK_PATTERN)
    page_url = "https://www.nature.com/articles/s41467-021-20001-1"
    assert nature.peer_review_link(LANDING.read_bytes(), page_url, "Peer Review File", pattern) == (
        "https://static-content.springer.com/esm/art%3A10.1038%2Fs41467-021-20001-1/MediaObjects/"
        "41467_2021_20001_MOESM2_ESM.pdf")
    assert nature.peer_review_link(LANDING.read_bytes(), page_url, "Peer Review File", re.compile(r"\.docx$")) is None


# --------------------------------------------------------------------------------------------------------------------
# parse


def parse(tmp_path: Path, pdfs: Path, texts: Path, extra: tuple[str, ...] = ()):
    return parse_cli(nature, tmp_path, {"--peer-review-files": [pdfs], "--full-texts": [texts]}, extra)


def snapshot(tmp_path: Path) -> tuple[Path, Path]:
    pdfs, texts = tmp_path / "pdfs", tmp_path / "texts"
    pdfs.mkdir()
    texts.mkdir()
    (pdfs / "s41467-021-20001-1.pdf").write_bytes(pdf_of(REVIEW_FILE))
    shutil.copy(FULL_TEXT, texts / "PMC7000001.xml")
    return pdfs, texts


def test_a_review_file_gives_reports_per_round_and_reviewer_and_the_authors_response(tmp_path):
    frames, rejects, summary = parse(tmp_path, *snapshot(tmp_path))
    articles, reports, responses = frames["articles"], frames["reports"], frames["responses"]
    assert not rejects and reports.schema == pl.Schema(tables.REPORT_SCHEMA)
    article = articles.row(0, named=True)
    assert (article["article_id"], article["family_id"], article["journal"]) == (
        f"nature:{REVIEWED}", f"nature:{REVIEWED}", "Nature Communications")
    assert (article["review_style"], article["license"]) == ("nature-peer-review-file",
                                                             "https://creativecommons.org/licenses/by/4.0/")
    assert [s["kind"] for s in article["sections"]] == ["introduction", "results", "discussion", "methods"]
    assert article["file"] == "PMC7000001.xml" and summary["open_licence"] == 1

    assert reports.select("round", "reviewer").rows() == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert reports["report_id"].to_list()[2] == f"nature:{REVIEWED}#r2-1"
    assert reports["text"][0] == ("The authors claim that deoxycholic acid expands the stem cell pool but show only "
                                  "organoid data.\nIn vivo lineage tracing is needed to support this claim.")
    # the code-availability remarks stay with reviewer 2's report; the authors' quote of reviewer 1 is no report
    assert reports["text"][1] == ("The germ-free controls were housed in a different facility.\nReviewer #2 "
                                  "(Remarks on code availability):\nThe analysis scripts are not deposited.")
    assert not reports["text"].str.contains("Open Access|We thank|We added").any()
    assert responses.select("round", "kind").rows() == [(1, "point-by-point-response")]
    assert responses["text"][0].startswith("We thank the reviewers") and "Lgr5-CreERT2" in responses["text"][0]
    assert summary["reports_per_round"] == {"1": 2, "2": 2}


@pytest.mark.parametrize(("lines", "expected"), [
    # no banner between the rounds: reviewer #1 seen again opens round 2
    (["Reviewer #1 (Remarks to the Author):", "a", "Reviewer #2 (Remarks to the Author):", "b",
      "Reviewer #1 (Remarks to the Author):", "c"], {(1, 1): ["a"], (1, 2): ["b"], (2, 1): ["c"]}),
    # the newer layout: "Reviewer #1:" with the label on the next line; the stray tag after the banner
    (["REVIEWER COMMENTS</B>", "Reviewer #1:", "Remarks to the Author:", "a", "Reviewers' Comments:",
      "Reviewer #1:", "Remarks to the Author:", "b"], {(1, 1): ["a"], (2, 1): ["b"]}),
    (["Reviewer #3 (Remarks to the Author): inline start", "Response: a reviewer's word, not a heading"],
     {(1, 3): ["inline start", "Response: a reviewer's word, not a heading"]}),
])
def test_split_peer_review(lines, expected):
    assert nature.split_peer_review(lines).reports == expected


ROUND_2 = ["Reviewer #1 (Remarks to the Author):", "The lineage tracing is convincing.",
           "Reviewer #2 (Remarks to the Author):", "The facility effect remains untested."]


@pytest.mark.parametrize(("response", "answer"), [
    # the authors quote every reviewer's heading: a heading quoted before, met again, starts the next round
    (["Response to Reviewers", "Reviewer #1 (Remarks to the Author): Lineage tracing is needed.",
      "Response: we added it.", "Reviewer #2 (Remarks to the Author): The facility differs.",
      "Response: now described."],
     ["Reviewer #1 (Remarks to the Author): Lineage tracing is needed.", "Response: we added it.",
      "Reviewer #2 (Remarks to the Author): The facility differs.", "Response: now described."]),
    # the authors quote no heading: the template heading with no answer under it starts the next round
    (["Point-by-point response", "We thank the reviewers.", "1. Lineage tracing was added (Fig. 3)."],
     ["We thank the reviewers.", "1. Lineage tracing was added (Fig. 3)."]),
])
def test_a_response_without_the_next_rounds_banner_does_not_swallow_that_round(response, answer):
    review = nature.split_peer_review(["REVIEWERS' COMMENTS", *ROUND_1, *response, *ROUND_2])  # no second banner
    assert sorted(review.reports) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert review.reports[(2, 1)] == ["The lineage tracing is convincing."]
    assert review.reports[(2, 2)] == ["The facility effect remains untested."]
    assert review.responses == [(1, answer)]


def test_a_quoted_heading_with_the_authors_answer_stays_in_the_response():
    quote = ["Response to Reviewers", "Reviewer #1 (Remarks to the Author):", "Lineage tracing is needed.",
             "We added lineage tracing (new Fig. 3)."]
    review = nature.split_peer_review(["REVIEWERS' COMMENTS", *ROUND_1, *quote])
    assert sorted(review.reports) == [(1, 1), (1, 2)] and review.responses == [(1, quote[1:])]


def test_unreadable_pdfs_and_unmatched_files_are_rejects_naming_file_and_reason(tmp_path):
    pdfs, texts = snapshot(tmp_path)
    good = (pdfs / "s41467-021-20001-1.pdf").read_bytes()
    (pdfs / "s41467-021-20006-6.pdf").write_bytes(good[: len(good) // 3])  # a cut download
    (pdfs / "s41467-021-20007-7.pdf").write_bytes(b"<html><title>Not found</title></html>")
    (pdfs / "s41467-021-20008-8.pdf").write_bytes(pdf_of(["Supplementary Information"] + ["Table S1 lists the "
                                                                                         "primers used."] * 10))
    (pdfs / "41467_2021_20009_MOESM2_ESM.pdf").write_bytes(good)  # not named by its DOI: no full text to match
    body = FULL_TEXT.read_text()
    start, end = body.index("<body>"), body.index("</body>") + len("</body>")
    (texts / "no_body.xml").write_text((body[:start] + body[end:]).replace("20001-1<", "20010-0<"))
    (pdfs / "s41467-021-20010-0.pdf").write_bytes(good)

    with pytest.raises(BadFileError, match="s41467-021-20006-6.pdf"):
        parse(tmp_path, pdfs, texts)
    frames, rejects, summary = parse(tmp_path, pdfs, texts, extra=("--quarantine-bad-files",
                                                                   "--max-lost-fraction", "1"))
    reasons = {Path(r["file"]).name: (r["record"], r["reason"]) for r in rejects}
    assert {name: record for name, (record, _) in reasons.items()} == {
        "41467_2021_20009_MOESM2_ESM.pdf": "10.1038/41467_2021_20009_moesm2_esm",
        "no_body.xml": "10.1038/s41467-021-20010-0",
        "s41467-021-20006-6.pdf": "*",
        "s41467-021-20007-7.pdf": "*",
        "s41467-021-20008-8.pdf": "10.1038/s41467-021-20008-8",
    }
    assert reasons["41467_2021_20009_MOESM2_ESM.pdf"][1].startswith("no Europe PMC full text for 10.1038/41467_")
    assert reasons["no_body.xml"][1] == "article without body"
    assert reasons["s41467-021-20006-6.pdf"][1].startswith("bad file (malformed): pypdf cannot read it")
    assert reasons["s41467-021-20007-7.pdf"][1].startswith("bad file (html)")
    assert reasons["s41467-021-20008-8.pdf"][1] == "no 'Reviewer #N (Remarks to the Author)' heading in the text"
    assert frames["articles"]["article_id"].to_list() == [f"nature:{REVIEWED}"]
    assert summary["papers_lost"] == 2


def test_cli_help():
    assert "--api-min-interval-s" in help_text("nature", "harvest")
    assert "--peer-review-files" in help_text("nature", "parse")
