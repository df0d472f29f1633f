"""PLOS: the Solr search + article XML harvester against a loopback server (paging, the search rate limit, 429 with
Retry-After, kill and resume), and the parser of review histories on hand-written JATS fixtures and bad files."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from tests import biomed_helpers
from tests.biomed_helpers import Hang, help_text, parse_cli, run_to_completion
from tests.loopback import LoopbackServer, Reply, kill_when
from workflow_scripts.datasets.bioreview_inputs import read_reports
from workflow_scripts.sources.biomed import plos, tables
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import HarvestError, PoliteClient, RetryPolicy

FIXTURES = biomed_helpers.FIXTURES / "plos"
BIOLOGY, ONE, GENETICS, WITHOUT = (f"10.1371/journal.{n}" for n in ("pbio.3001234", "pone.0303005", "pgen.1010999",
                                                                      "pone.0290001"))


def fixture_of(doi: str) -> Path:
    return FIXTURES / f"{doi.split('/')[1]}.xml"


class FakePlos:
    """/search (Solr, ``start`` / ``rows`` paging over per-journal DOI lists) and the journals' article files."""

    def __init__(self, journals: dict[str, list[str]]):
        self.journals = journals
        self.hooks: dict[int, callable] = {}  # search start -> handler answering instead (None: serve the page)

    def install(self, server: LoopbackServer) -> str:
        server.route("/search", self.search)
        for slug in ("plosbiology", "plosone"):
            server.route(f"/{slug}/article/file", self.article)
        return server.url

    def search(self, req) -> Reply:
        start, rows = int(req.arg("start")), int(req.arg("rows"))
        hook = self.hooks.get(start)
        reply = hook(req) if hook else None
        if reply is not None:
            return reply
        key = next(f for f in req.query["fq"] if f.startswith("journal_key:")).split(":", 1)[1]
        dois = self.journals[key]
        docs = [{"id": d, "journal_key": key, "article_type": "Research Article", "title": f"Title {d}",
                 "publication_date": "2021-05-04T00:00:00Z"} for d in dois[start : start + rows]]
        body = {"responseHeader": {"status": 0}, "response": {"numFound": len(dois), "start": start, "docs": docs}}
        return Reply(200, json.dumps(body), content_type="application/json")

    def article(self, req) -> Reply:
        path = fixture_of(req.arg("id"))
        if req.arg("type") != "manuscript" or not path.exists():
            return Reply(404, "no such article")
        return Reply(200, path.read_bytes(), content_type="application/xml")


def harvest(url: str, out: Path, keys=("PLoSBiology", "PLoSONE"), min_interval_s: float = 0.05, rows: int = 1):
    h = plos.Harvest(url, url, plos.DEFAULT_SLUGS, dt.date(2021, 1, 1), dt.date(2024, 12, 31), out, rows)
    fast = RetryPolicy(min_interval_s=0.0, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    search = RetryPolicy(min_interval_s=min_interval_s, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    with PoliteClient(search) as s, PoliteClient(fast) as a:
        return h.run(list(keys), s, a)


def searches(server: LoopbackServer) -> list:
    return [r for r in server.requests if r.path == "/search"]


def parse(tmp_path: Path, *dirs: Path, extra: tuple[str, ...] = ()):
    return parse_cli(plos, tmp_path, {"--xml": dirs}, extra)


# --------------------------------------------------------------------------------------------------------------------
# harvest


def test_search_pages_keep_the_rate_limit_wait_out_a_429_and_every_article_is_kept(tmp_path):
    api = FakePlos({"PLoSBiology": [BIOLOGY], "PLoSONE": [ONE, WITHOUT]})
    limited = []
    api.hooks[1] = lambda req: None if limited else limited.append(req) or Reply(429, "slow", {"Retry-After": "1"})
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        summary = harvest(api.install(server), out, min_interval_s=0.3)
    asked = searches(server)
    assert [(r.arg("start"), r.query["fq"][0]) for r in asked] == [
        ("0", "journal_key:PLoSBiology"), ("0", "journal_key:PLoSONE"), ("1", "journal_key:PLoSONE"),
        ("1", "journal_key:PLoSONE")]
    assert asked[0].query["fq"][1:] == ["doc_type:full",
                                        "publication_date:[2021-01-01T00:00:00Z TO 2024-12-31T23:59:59Z]"]
    assert (asked[0].arg("q"), asked[0].arg("wt"), asked[0].arg("fl")) == ("*:*", "json", plos.FIELDS)
    gaps = [b.at - a.at for a, b in zip(asked, asked[1:])]
    assert min(gaps) >= 0.28, f"search requests closer than the minimum interval: {gaps}"
    assert gaps[2] >= 0.95, "the 429's Retry-After was not waited out"
    # PLOS ONE's articles are fetched too (opt-in review history), the one without reviews included
    files = sorted(p.relative_to(out).as_posix() for p in (out / "articles").rglob("*.xml"))
    assert files == ["articles/PLoSBiology/10.1371_journal.pbio.3001234.xml",
                     "articles/PLoSONE/10.1371_journal.pone.0290001.xml",
                     "articles/PLoSONE/10.1371_journal.pone.0303005.xml"]
    assert (out / "articles/PLoSONE/10.1371_journal.pone.0303005.xml").read_bytes() == fixture_of(ONE).read_bytes()
    assert summary["journals"]["PLoSONE"] == {"found": 2, "pages": 2, "articles": 2, "other_article_types": 0}
    assert (summary["fetched"], summary["failed"]) == (3, 0)

    with LoopbackServer() as server:  # a finished harvest asks for nothing again
        again = harvest(api.install(server), out)
    assert server.requests == [] and again["on_disk"] == 3


def test_an_article_that_cannot_be_fetched_is_recorded_and_asked_again_next_run(tmp_path):
    missing = "10.1371/journal.pbio.9999999"
    api = FakePlos({"PLoSBiology": [BIOLOGY, missing]})
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        summary = harvest(api.install(server), out, keys=("PLoSBiology",), rows=5)
        # a 404 is about that one article: a final rejects row naming it and the status, asked once, the harvest
        # goes on; a rerun never asks for it again
        assert (summary["fetched"], summary["failed"], summary["gone"]) == (1, 0, 1)
        assert (out / "failures.jsonl").read_text() == ""
        row = json.loads((out / "rejects.jsonl").read_text())
        assert (row["file"], row["record"], row["status"]) == (
            "articles/PLoSBiology/10.1371_journal.pbio.9999999.xml", missing, 404)
        assert row["url"].endswith("/plosbiology/article/file?id=10.1371/journal.pbio.9999999&type=manuscript")
        assert row["reason"].startswith("HTTP 404 (gone): GET ")
        # an HTML page served with status 200 is refused, never saved as an article, and asked again
        server.route("/plosbiology/article/file", lambda req: Reply(200, "<html><title>Maintenance</title></html>"))
        shutil.rmtree(out / "articles")
        n_before = len(server.requests)
        summary = harvest(server.url, out, keys=("PLoSBiology",), rows=5)
        assert [r.arg("id") for r in server.requests[n_before:]] == [BIOLOGY]
    assert (summary["failed"], summary["gone"]) == (1, 1) and not list((out / "articles").rglob("*.xml"))
    assert "html" in (out / "failures.jsonl").read_text()


def test_an_unknown_journal_key_stops_before_any_request(tmp_path):
    with LoopbackServer() as server:
        with pytest.raises(HarvestError, match=r"no journal slug for \['PLoSUnknown'\]"):
            harvest(FakePlos({}).install(server), tmp_path, keys=("PLoSUnknown",))
    assert server.requests == []


def test_kill_during_the_listing_and_resume_asks_no_page_twice(tmp_path):
    dois = [BIOLOGY, ONE, WITHOUT, GENETICS]
    api = FakePlos({"PLoSONE": dois})
    api.hooks[2] = hang = Hang()  # the third page hangs until the harvester is killed
    out, done = tmp_path / "raw", tmp_path / "done.json"
    state = out / "state" / "PLoSONE.json"
    with LoopbackServer() as server:
        url = api.install(server)
        argv = [sys.executable, "-m", "workflow_scripts.sources.biomed.plos", "harvest", "--api-url", url,
                "--site-url", url, "--journal-key", "PLoSONE", "--from-date", "2021-01-01", "--until-date",
                "2024-12-31", "--rows", "1", "--out-dir", str(out), "--done", str(done), "--min-interval-s", "0.05",
                "--article-min-interval-s", "0"]
        kill_when(argv, lambda: (state.exists() and json.loads(state.read_text())["pages"] == 2
                                 and len(server.requests) == 3), "the third page", hang.release)
        assert not done.exists()
        n_before = len(server.requests)
        run_to_completion(argv)
    assert [r.arg("start") for r in searches(server)[n_before:]] == ["2", "3"]  # after the two saved pages
    assert json.loads(done.read_text())["journals"]["PLoSONE"]["articles"] == 4
    assert len(list((out / "search" / "PLoSONE").iterdir())) == 4


# --------------------------------------------------------------------------------------------------------------------
# parse


def test_review_histories_become_reports_per_reviewer_and_round_and_responses(tmp_path):
    frames, rejects, summary = parse(tmp_path, FIXTURES)
    articles, reports, responses = frames["articles"], frames["reports"], frames["responses"]
    assert not rejects
    assert articles.schema == pl.Schema(tables.ARTICLE_SCHEMA) and reports.schema == pl.Schema(tables.REPORT_SCHEMA)
    assert articles["article_id"].to_list() == [f"plos:{d}" for d in (BIOLOGY, GENETICS, ONE)]
    assert articles["family_id"].to_list() == articles["article_id"].to_list()
    biology = articles.row(0, named=True)
    assert (biology["journal"], biology["version"], biology["review_style"]) == ("PLOS Biology", 1,
                                                                                 "plos-review-history")
    assert biology["license"] == "http://creativecommons.org/licenses/by/4.0/"
    assert [s["kind"] for s in biology["sections"]] == ["introduction", "results", "discussion", "methods"]
    assert biology["figure_captions"][0]["label"] == "Fig 1" and biology["file"] == "journal.pbio.3001234.xml"

    # PLOS Biology: round 1 with three reviewers, round 2 with two of them; the editor's letter is no report
    bio = reports.filter(pl.col("article_id") == f"plos:{BIOLOGY}")
    assert bio.select("round", "reviewer").rows() == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 3)]
    assert bio["report_id"][1] == f"plos:{BIOLOGY}#r1-2"
    assert bio["text"][0] == ("The night-time increase rests on two fish per time point; the statistics need many "
                              "more animals.\n\nThe per1b mutant should be rescued to show specificity.")
    assert bio["text"][1].startswith("The imaging depth")  # "Reviewer #2 (Jane Roe):" is a heading too
    assert not reports["text"].str.contains("Dear Dr|Thank you for|pleased to accept").any()
    assert set(bio["kind"]) == {"aggregated-review-documents"} and bio["recommendation"].is_null().all()

    # PLOS ONE's questionnaire: each reviewer's answers joined in order, the questions and the editor's text left out
    one = reports.filter(pl.col("article_id") == f"plos:{ONE}")
    assert one.select("round", "reviewer").rows() == [(1, 1), (1, 2)]
    assert one["text"][0] == (
        "1. Is the manuscript technically sound, and do the data support the conclusions?\nPartly\n\n"
        "2. Has the statistical analysis been performed appropriately and rigorously?\nNo\n\n"
        "3. Review Comments to the Author\nA single spot urine sample cannot estimate habitual sodium intake.\n\n"
        "Adjustment for antihypertensive medication is missing.")  # the identity question's answer: no review
    assert one["text"][1].startswith("1. Is the manuscript technically sound, and do the data support the "
                                      "conclusions?\nYes\n\n2. Has")
    assert not one["text"].str.contains(r"\*\*\*|NOTE|Editor Comments|Dear Dr").any()

    # a letter without "Reviewer #N:" lines is reviewer 1's report, counted
    genetics = reports.filter(pl.col("article_id") == f"plos:{GENETICS}")
    assert genetics.select("round", "reviewer").rows() == [(1, 1)]
    assert summary["letters_without_reviewer_headings"] == 1

    # an answer that is only an attached file (PLOS's usual one) has no text: counted, not kept
    assert responses.select("article_id", "round", "kind").rows() == [
        (f"plos:{BIOLOGY}", 2, "author-comment"), (f"plos:{ONE}", 1, "author-comment")]
    assert responses["text"][0] == "We added the vehicle control and softened the discussion."
    assert summary["responses_without_text"] == 1
    assert (summary["without_review_history"], summary["editor_reports"], summary["letters"]) == (1, 2, 4)
    assert (summary["articles"], summary["reports"], summary["reports_per_round"]) == (3, 8, {"1": 6, "2": 2})


@pytest.mark.parametrize(("text", "expected"), [
    ("Dear editor.\nReviewer #1: a\nReviewer #2, Jo Bloggs: b\nReviewer #1: c", {1: "a\n\nc", 2: "b"}),
    ("1. Sound?\nReviewer #12 (signed): x\n**********\nNote.\n2. Next?\nReviewer #12: y\n***\n[NOTE]",
     {12: "1. Sound?\nx\n\n2. Next?\ny"}),
    ("1. Please add controls.\nReviewer #1: x\n2. Not a question: no separator in the letter",
     {1: "x\n2. Not a question: no separator in the letter"}),
    ("As Reviewer #1 noted: the point stands.", {}),  # not at the start of a line: no heading
    # the identity question and the instructions after it (no asterisks) are not the review; the editor's numbered
    # requirement is no question: the questionnaire opens after "Reviewer's Responses to Questions"
    ("1. Please add controls.\nReviewer's Responses to Questions\nReviewer #1: x\n**********\n"
     "Do you want your identity to be public for this peer review? See our Privacy Policy.\n"
     "Reviewer #1: Yes: Jo Bloggs\nFigure Files:\nPlease use PACE.", {1: "x"}),
    ("Reviewer #1: the review\n[NOTE: If reviewer comments were submitted as an attachment file, they are attached.]",
     {1: "the review"}),
])
def test_split_reviewers(text, expected):
    assert plos.split_reviewers(text)[1] == expected


def test_the_questionnaire_layout_of_the_journals_2023_files(tmp_path):
    """Unnumbered questions, the letter's date, the identity answer with the reviewer's name and the journal's
    instructions after it (no asterisks), an answer that is only an attached file (tests/fixtures/biomed/
    plos_questionnaire, in the layout of PLOS Computational Biology's files as Europe PMC serves them)."""
    frames, rejects, summary = parse(tmp_path, biomed_helpers.FIXTURES / "plos_questionnaire")
    reports = frames["reports"]
    assert not rejects and reports.select("round", "reviewer").rows() == [(1, 1), (1, 2), (2, 2)]
    data = ("Have the authors made all data and (if applicable) computational code underlying the findings in their "
            "manuscript fully available?")
    assert reports["text"].to_list() == [
        "The model omits adaptation currents in the inhibitory cells, so the bursting regime is not explained.\n\n"
        f"MINOR COMMENTS\n\np4. The membrane time constant is not given.\n\n{data}\nYes",
        f"The fitting procedure is not validated on held-out recordings.\n\n{data}\nNo: the fitting scripts are "
        "missing.",
        f"The revision addresses my concerns; reporting the fit residuals would still help.\n\n{data}\nYes"]
    assert not reports["text"].str.contains("Maria Lang|Figure Files|PACE|Nov 2023|Dear Dr|order of the figures").any()
    # the answer holds its date and an attached file only: no text, counted
    assert frames["responses"].height == 0 and summary["responses_without_text"] == 1


def test_two_letters_of_one_round_give_unique_stable_report_ids(tmp_path):
    snap = tmp_path / "snap"
    snap.mkdir()
    biology = fixture_of(BIOLOGY).read_text()
    # the history repeats "Decision Letter 0" (a re-issued letter) and numbers reviewers 1 and 3 again
    again = biology.replace("pbio.3001234.r003", "pbio.3001234.r006").replace("Decision Letter 1", "Decision Letter 0")
    start = again.index('<sub-article article-type="aggregated-review-documents" id="pbio.3001234.r006"')
    letter = again[start: again.index("</sub-article>", start) + len("</sub-article>")]
    (snap / "twice.xml").write_text(biology.replace("</article>", letter + "\n</article>"))
    frames, rejects, _ = parse(tmp_path, snap)
    ids = frames["reports"]["report_id"].to_list()
    article = f"plos:{BIOLOGY}"
    assert sorted(ids) == sorted([f"{article}#r1-1", f"{article}#r1-2", f"{article}#r1-3", f"{article}#r1-1.2",
                                  f"{article}#r1-3.2", f"{article}#r2-1", f"{article}#r2-3"])
    assert read_reports([tmp_path / "reports.parquet"]).height == 7  # the id check of every step downstream
    again_frames, _, _ = parse(tmp_path, snap)
    assert again_frames["reports"]["report_id"].to_list() == ids


def test_bad_files_and_records_are_rejects_naming_file_and_reason(tmp_path):
    snap = tmp_path / "snap"
    shutil.copytree(FIXTURES, snap)
    biology = fixture_of(BIOLOGY).read_text()
    (snap / "cut.xml").write_text(biology[: len(biology) // 2])
    (snap / "error.xml").write_text("<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head></html>")
    (snap / "cut.xml.gz").write_bytes(gzip.compress(biology.encode())[:200])
    start, end = biology.index("<body>"), biology.index("</body>") + len("</body>")
    nobody = biology[:start] + biology[end:]
    (snap / "nobody.xml").write_text(nobody.replace("journal.pbio.3001234<", "journal.pbio.3001235<", 1))
    empty_letter = fixture_of(ONE).read_text().replace("journal.pone.0303005", "journal.pone.0303006")
    letter = empty_letter.index("<body>\n<p>PONE-D"), empty_letter.index("</body>\n</sub-article>")
    (snap / "empty_letter.xml").write_text(empty_letter[: letter[0]] + "<body>" + empty_letter[letter[1]:])
    (snap / "notes.txt").write_text("not read")

    with pytest.raises(BadFileError) as err:  # strict: every bad file named, nothing written
        parse(tmp_path, snap)
    assert all(f"{snap / name} (" in str(err.value) for name in ("cut.xml", "error.xml", "cut.xml.gz"))
    assert not (tmp_path / "articles.parquet").exists()

    frames, rejects, summary = parse(tmp_path, snap, extra=("--quarantine-bad-files", "--max-lost-fraction", "1"))
    assert sorted((Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects) == [
        ("cut.xml", "*", "bad file (malformed)"),
        ("cut.xml.gz", "*", "bad file (malformed)"),
        ("empty_letter.xml", "10.1371/journal.pone.0303006 pone.0303005.r001",
         "review sub-article without text (aggregated-review-documents)"),
        ("error.xml", "*", "bad file (html)"),
        ("nobody.xml", "10.1371/journal.pbio.3001235", "article without body"),
    ]
    # the article with the empty letter keeps no report: left out and counted; its response is not kept alone
    assert "plos:10.1371/journal.pone.0303006" not in frames["articles"]["article_id"].to_list()
    assert summary["review_history_without_reports"] == 1
    assert (summary["papers_lost"], summary["lost_fraction"]) == (3, round(3 / 9, 6))


def test_a_doi_in_two_files_keeps_the_later_one(tmp_path):
    snap = tmp_path / "snap"
    (snap / "b").mkdir(parents=True)
    shutil.copy(fixture_of(GENETICS), snap / "a.xml")
    (snap / "b" / "again.xml").write_text(fixture_of(GENETICS).read_text().replace("wing size", "wing shape"))
    frames, rejects, summary = parse(tmp_path, snap)
    assert frames["articles"]["title"].to_list() == ["A modifier locus of wing shape in Drosophila"]
    assert frames["articles"]["file"].to_list() == ["b/again.xml"] and summary["duplicates"] == 1
    assert frames["reports"].height == 1


def test_cli_help():
    assert "--article-min-interval-s" in help_text("plos", "harvest") and "--articles" in help_text("plos", "parse")
