"""eLife: the harvester against a loopback server speaking the articles-list API and serving article XML (paging,
the type filter, rate spacing, 429 with Retry-After, failures, kill and resume), and the parser on hand-written
files of each review style and on malformed ones."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from tests import biomed_helpers
from tests.biomed_helpers import Hang, help_text, parse_cli, run_to_completion
from tests.loopback import LoopbackServer, Reply, kill_when
from workflow_scripts.sources.biomed import elife, jats, tables
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import HarvestError, RetryPolicy

FIXTURES = biomed_helpers.FIXTURES / "elife"
FAST = RetryPolicy(min_interval_s=0.05, max_retries=2, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=30)


def item(eid: str, version: int, type_: str = "research-article", status: str = "vor") -> dict:
    """An article-list item as the API writes it (the fields the harvester reads, and a few it does not)."""
    return {"status": status, "id": eid, "version": version, "type": type_, "doi": f"10.7554/eLife.{eid}",
            "title": f"Article {eid}", "stage": "published", "published": "2013-06-18T00:00:00Z", "volume": 2}


# an Insight (not fetched), a research article still in publish-on-accept (not fetched), three to fetch
ITEMS = [item("00288", 1), item("10001", 1, "insight"), item("45678", 2), item("99001", 1, status="poa"),
         item("88888", 3)]
FETCHED = ["00288", "45678", "88888"]


class FakeElife:
    """GET /articles (``per_page`` items a page, whatever is asked) and /articles/<id>.xml from the fixtures;
    ``hooks[path]`` may answer instead (return None to serve normally)."""

    def __init__(self, items: list[dict] = ITEMS):
        self.items = items
        self.hooks: dict[str, callable] = {}

    def install(self, server: LoopbackServer) -> str:
        server.route("/articles", self.listing)
        for it in self.items:
            server.route(f"/articles/{it['id']}.xml", lambda req, it=it: self.xml(req, it))
        return server.url

    def listing(self, req) -> Reply:
        hooked = self.hooks.get(f"/articles?page={req.arg('page')}")
        if hooked and (reply := hooked(req)) is not None:
            return reply
        page, size = int(req.arg("page")), int(req.arg("per-page"))
        body = {"total": len(self.items), "items": self.items[(page - 1) * size : page * size]}
        return Reply(200, json.dumps(body), content_type="application/vnd.elife.article-list+json;version=1")

    def xml(self, req, it: dict) -> Reply:
        hooked = self.hooks.get(req.path)
        if hooked and (reply := hooked(req)) is not None:
            return reply
        return Reply(200, (FIXTURES / elife.xml_name(it)).read_bytes(), content_type="application/xml")


def asked(server: LoopbackServer) -> list[str]:
    return [r.path if r.path != "/articles" else f"list {r.arg('page')}" for r in server.requests]


def parse(tmp_path: Path, *dirs: Path, extra: tuple[str, ...] = ()) -> tuple[dict[str, pl.DataFrame], list, dict]:
    return parse_cli(elife, tmp_path, {"--xml": dirs}, extra, tables=(*biomed_helpers.TABLES, "assessments"))


def harvest_cli(url: str, out_dir: Path, done: Path) -> list[str]:
    return [sys.executable, "-m", "workflow_scripts.sources.biomed.elife", "harvest", "--api-url", url, "--xml-url",
            url, "--out-dir", str(out_dir), "--done", str(done), "--per-page", "2", "--min-interval-s", "0.05"]


# --------------------------------------------------------------------------------------------------------------------
# harvest


def test_pages_keep_research_articles_space_requests_honour_retry_after_and_parse(tmp_path):
    api = FakeElife()
    busy = []
    api.hooks["/articles?page=2"] = lambda req: None if busy else busy.append(1) or Reply(429, "slow down",
                                                                                          {"Retry-After": "1"})
    policy = RetryPolicy(min_interval_s=0.2, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        summary = elife.harvest(api.install(server), server.url, out, ["research-article"], 2, policy)
    assert asked(server) == ["list 1", "list 2", "list 2", "list 3"] + [f"/articles/{i}.xml" for i in FETCHED]
    lists = [r for r in server.requests if r.path == "/articles"]
    assert all(r.headers["accept"] == elife.LIST_ACCEPT and r.arg("per-page") == "2" and r.arg("order") == "asc"
               for r in lists)
    gaps = [b.at - a.at for a, b in zip(server.requests, server.requests[1:])]
    assert gaps[1] >= 0.95 and all(g >= 0.15 for g in gaps), "Retry-After, then the minimum interval"
    assert (summary["listed"], summary["wanted"], summary["poa_not_fetched"], summary["failed"]) == (5, 3, 1, [])
    assert summary["by_type"] == {"insight": 1, "research-article": 4}
    assert sorted(p.name for p in (out / "pages").iterdir()) == ["page-00001.json", "page-00002.json",
                                                                 "page-00003.json"]
    for eid, it in zip(FETCHED, [ITEMS[0], ITEMS[2], ITEMS[4]]):  # saved verbatim
        assert (out / "xml" / elife.xml_name(it)).read_bytes() == (FIXTURES / elife.xml_name(it)).read_bytes()

    frames, rejects, parsed = parse(tmp_path, out / "xml")
    assert frames["articles"]["article_id"].to_list() == ["elife:00288.1", "elife:45678.2", "elife:88888.3"]
    assert not rejects and parsed["bad_files"] == []

    with LoopbackServer() as server:  # a finished harvest asks for nothing
        elife.harvest(api.install(server), server.url, out, ["research-article"], 2, FAST)
    assert server.requests == []


def test_kill_mid_harvest_and_resume_asks_for_nothing_twice(tmp_path):
    api = FakeElife()
    api.hooks["/articles/45678.xml"] = hang = Hang()
    out, done = tmp_path / "raw", tmp_path / "done.json"
    with LoopbackServer() as server:
        url = api.install(server)
        kill_when(harvest_cli(url, out, done), lambda: "/articles/45678.xml" in asked(server), "the second XML",
                  hang.release)
        assert not done.exists() and [p.name for p in (out / "xml").iterdir()] == ["elife-00288-v1.xml"]
        n_before = len(server.requests)
        run_to_completion(harvest_cli(url, out, done))
    assert asked(server)[:n_before] == ["list 1", "list 2", "list 3", "/articles/00288.xml", "/articles/45678.xml"]
    assert asked(server)[n_before:] == ["/articles/45678.xml", "/articles/88888.xml"]  # the listing was complete
    assert json.loads(done.read_text())["xml_on_disk"] == 3


def test_a_list_page_saved_before_its_state_is_fetched_again_under_its_number(tmp_path):
    api = FakeElife()
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = api.install(server)
        elife.harvest(url, url, out, ["research-article"], 2, FAST)
        # a kill between writing page 3 and its state: the state still says "after page 2"
        state = json.loads((out / "state.json").read_text())
        (out / "state.json").write_text(json.dumps({**state, "page": 3, "listed": 4, "complete": False}))
        n_before = len(server.requests)
        summary = elife.harvest(url, url, out, ["research-article"], 2, FAST)
    assert asked(server)[n_before:] == ["list 3"] and summary["listed"] == 5
    assert len(list((out / "pages").iterdir())) == 3
    with pytest.raises(HarvestError, match="pages by 2, not 100"):  # another page size would not add up
        elife.harvest(url, url, out, ["research-article"], 100, FAST)


def test_a_bad_list_answer_is_never_saved_and_stops_naming_the_url(tmp_path):
    api = FakeElife()
    api.hooks["/articles?page=2"] = lambda req: Reply(200, '{"title": "Service unavailable", "type": "about:blank"}')
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = api.install(server)
        with pytest.raises(HarvestError, match=r"/articles\?page=2&per-page=2&order=asc: wrong source"):
            elife.harvest(url, url, out, ["research-article"], 2, FAST)
        assert [p.name for p in (out / "pages").iterdir()] == ["page-00001.json"]
        del api.hooks["/articles?page=2"]
        summary = elife.harvest(url, url, out, ["research-article"], 2, FAST)  # the rerun resumes at page 2
    assert summary["listed"] == 5 and asked(server)[-6:-3] == ["list 2", "list 2", "list 3"]


def test_a_failing_article_xml_is_listed_and_asked_again_by_the_rerun(tmp_path):
    api = FakeElife()
    api.hooks["/articles/45678.xml"] = lambda req: Reply(503, "busy")
    api.hooks["/articles/88888.xml"] = lambda req: Reply(200, "<!DOCTYPE html><html><title>Oops</title></html>")
    api.hooks["/articles/00288.xml"] = lambda req: Reply(200, (FIXTURES / "elife-45678-v2.xml").read_bytes())
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = api.install(server)
        summary = elife.harvest(url, url, out, ["research-article"], 2, FAST)
        assert summary["failed"] == ["elife-00288-v1.xml", "elife-45678-v2.xml", "elife-88888-v3.xml"]
        failures = json.loads((out / "xml_failures.json").read_text())
        assert "wrong article" in failures["elife-00288-v1.xml"] and "HTTP 503" in failures["elife-45678-v2.xml"]
        assert "HTML page" in failures["elife-88888-v3.xml"]
        assert list((out / "xml").iterdir()) == [] and summary["xml_on_disk"] == 0  # none of them saved

        with pytest.raises(HarvestError, match="2 article XMLs failed in a row"):  # the site, not one article
            elife.harvest(url, url, out, ["research-article"], 2, FAST, max_consecutive_failures=1)
        api.hooks.clear()
        n_before = len(server.requests)
        summary = elife.harvest(url, url, out, ["research-article"], 2, FAST)
    assert asked(server)[n_before:] == [f"/articles/{eid}.xml" for eid in FETCHED]
    assert summary["failed"] == [] and json.loads((out / "xml_failures.json").read_text()) == {}


def test_an_article_answered_404_is_a_final_reject_that_neither_stops_the_harvest_nor_is_asked_again(tmp_path):
    api = FakeElife()
    gone = {"/articles/00288.xml": 404, "/articles/45678.xml": 410}  # two in a row: still not the site failing
    for path, status in gone.items():
        api.hooks[path] = lambda req, status=status: Reply(status, "no such article")
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = api.install(server)
        summary = elife.harvest(url, url, out, ["research-article"], 2, FAST, max_consecutive_failures=1)
        assert [r.path for r in server.requests].count("/articles/00288.xml") == 1  # a 404 is never retried
        assert summary["gone"] == ["elife-00288-v1.xml", "elife-45678-v2.xml"] and summary["failed"] == []
        assert summary["xml_on_disk"] == 1  # the harvest went on to 88888
        rows = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
        assert [(r["file"], r["record"], r["status"]) for r in rows] == [
            ("elife-00288-v1.xml", "10.7554/eLife.00288", 404), ("elife-45678-v2.xml", "10.7554/eLife.45678", 410)]
        assert rows[0]["reason"].startswith("HTTP 404 (gone): GET ") and "/articles/00288.xml" in rows[0]["url"]
        n_before = len(server.requests)
        again = elife.harvest(url, url, out, ["research-article"], 2, FAST)
    assert asked(server)[n_before:] == []  # the listing is complete, 88888 on disk, the gone ones final
    assert again["gone"] == summary["gone"] and json.loads((out / "xml_failures.json").read_text()) == {}


# --------------------------------------------------------------------------------------------------------------------
# parse


def test_the_three_review_styles(tmp_path):
    snapshot = tmp_path / "snapshot"
    shutil.copytree(FIXTURES, snapshot, ignore=shutil.ignore_patterns("bad"))
    frames, rejects, summary = parse(tmp_path, snapshot)
    articles, reports, responses, assessments = (frames[n] for n in ("articles", "reports", "responses",
                                                                     "assessments"))
    assert articles.schema == pl.Schema(tables.ARTICLE_SCHEMA) and reports.schema == pl.Schema(tables.REPORT_SCHEMA)
    assert responses.schema == pl.Schema(tables.RESPONSE_SCHEMA)
    assert assessments.schema == pl.Schema(elife.ASSESSMENT_SCHEMA)
    assert articles.select("article_id", "family_id", "version", "review_style", "file").rows() == [
        ("elife:00288.1", "elife:00288", 1, "elife-commentary", "elife-00288-v1.xml"),  # version from the name
        ("elife:45678.2", "elife:45678", 2, "elife-decision-letter", "elife-45678-v2.xml"),
        ("elife:88888.3", "elife:88888", 3, "elife-reviewed-preprint", "elife-88888-v3.xml"),  # the version DOI
    ]
    old = articles.row(0, named=True)
    assert (old["doi"], old["journal"], old["published"]) == ("10.7554/elife.00288", "eLife", dt.date(2013, 6, 18))
    assert old["license"] == "http://creativecommons.org/licenses/by/3.0/"
    assert old["abstract"] == "Worms climb gradients."  # the DOI line and the digest are not the abstract
    assert [s["kind"] for s in old["sections"]] == ["introduction", "results", "discussion", "methods"]
    assert old["figure_captions"] == [{"label": "Figure 1.", "text": "AIY turns the worm."}]
    assert articles.row(2, named=True)["published"] == dt.date(2024, 1, 16)  # this version's, not the first RP's

    assert reports.select("report_id", "reviewer", "round", "kind").rows() == [
        ("elife:00288.1#r1-0", 0, 1, "article-commentary"),  # the decision letter: all reviewers together
        ("elife:45678.2#r1-0", 0, 1, "decision-letter"),
        ("elife:88888.3#r1-1", 1, 1, "referee-report"),
        ("elife:88888.3#r1-2", 2, 1, "referee-report"),
    ]
    letter, _, first, second = reports["text"].to_list()
    assert letter.startswith("Thank you for sending your work") and "multiple comparisons" in letter
    assert "eLife posts" not in letter and "DOI:" not in letter  # the boxed note and the DOI line left out
    # each reviewer's public review with their part of the "Recommendations for authors" (editor and all reviewers,
    # id sa3: never a reviewer 3), one report per reviewer
    assert first == ("Summary: the authors image astrocytes.\n\nWeaknesses: the sample is four mice.\n\n"
                     "Please show the raw traces.")
    assert second == "Weaknesses: sleep deprivation stresses the mice.\n\nMeasure corticosterone after the deprivation."
    assert summary["reports_merged"] == 2
    assert responses.select("response_id", "kind").rows() == [
        ("elife:00288.1#SA2", "reply"), ("elife:45678.2#sa2", "reply"), ("elife:88888.3#sa4", "author-comment")]
    # the assessment and the editor's evaluation: never a reviewer's report
    assert assessments.select("article_id", "title").rows() == [
        ("elife:45678.2", "Editor's evaluation"), ("elife:88888.3", "eLife assessment")]
    assert not any("important" in text for text in reports["text"])
    assert summary["per_review_style"] == {"elife-commentary": 1, "elife-decision-letter": 1,
                                           "elife-reviewed-preprint": 1}
    assert summary["outside_article_types"] == {"article-commentary": 1} and not rejects  # the Insight: counted

    # the same files read twice (a snapshot beside a harvest): one row each, the later copy kept and counted
    twice, _, counted = parse(tmp_path, snapshot, snapshot)
    assert twice["articles"].equals(articles) and counted["duplicates"] == 3


def test_bad_files_articles_and_sub_articles_are_rejects_naming_file_and_reason(tmp_path):
    bad = FIXTURES / "bad"
    with pytest.raises(BadFileError) as err:  # strict: every bad file named with its reason, nothing written
        parse(tmp_path, FIXTURES)
    for name, kind in [("elife-88889-v1.xml", "malformed"), ("elife-99003-v1.xml", "html"),
                       ("elife-99004-v1.xml.gz", "malformed"), ("journal.pone.0303005.xml", "wrong source")]:
        assert f"{bad / name} ({kind}:" in str(err.value)
    assert not (tmp_path / "articles.parquet").exists()

    frames, rejects, summary = parse(tmp_path, FIXTURES, extra=("--quarantine-bad-files",
                                                                    "--max-lost-fraction", "0.5"))
    assert sorted((Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects) == [
        ("elife-88889-v1.xml", "*", "bad file (malformed)"),  # truncated
        ("elife-99001-v1.xml", "elife:99001.1", "article without body"),
        ("elife-99002-v1.xml", "elife:99002.2#sa2", "sub-article without text"),  # referee-report
        ("elife-99002-v1.xml", "elife:99002.2#sa9", "unknown sub-article type"),
        ("elife-99003-v1.xml", "*", "bad file (html)"),
        ("elife-99004-v1.xml.gz", "*", "bad file (malformed)"),  # not gzip: unreadable
        ("journal.pone.0303005.xml", "*", "bad file (wrong source)"),
    ]
    # the rest of the damaged article is kept: reviewer 1, and the joint review, all reviewers' (reviewer 0)
    assert frames["reports"].filter(pl.col("article_id") == "elife:99002.2")["report_id"].to_list() == [
        "elife:99002.2#r1-0", "elife:99002.2#r1-1"]
    assert (summary["articles"], summary["files"], summary["papers_lost"]) == (4, 10, 4)
    assert summary["rejects"]["article without body"] == 1

    # more bad files than allowed: the step fails, naming them
    with pytest.raises(BadFileError, match=r"4 paper\(s\) \(40.00%\) lost"):
        parse(tmp_path, FIXTURES, extra=("--quarantine-bad-files", "--max-lost-fraction", "0.1"))


def referee_report(title: str, text: str, sid: str) -> jats.SubArticle:
    number = int(sid[2:])
    return jats.SubArticle("referee-report", sid, title, text, number, None, None, None)


@pytest.mark.parametrize(("subs", "expected"), [
    # the published version's consolidated recommendations: the editor's note is a letter (reviewer 0), each part
    # goes to its reviewer, one without a public review (3) gets a report of its own
    ([("Reviewer #1 (Public review):", "Weak controls.", "sa1"),
      ("Recommendations for authors", "Reviewing Editor Comments:\n\nAdd a power analysis.\n\n"
       "Reviewer #1 (Recommendations for the authors):\n\nShow raw traces.\n\n"
       "Reviewer #3 (Recommendations for the authors): Cite Lee 2020.", "sa4")],
     {0: "Reviewing Editor Comments:\n\nAdd a power analysis.", 1: "Weak controls.\n\nShow raw traces.",
      3: "Cite Lee 2020."}),
    # recommendations that name no reviewer, a joint review: all reviewers' together, never the id's number
    ([("Recommendations for authors", "The reviewers agree that the statistics need work.", "sa3"),
      ("Joint Public Review:", "A consensus of both reviewers.", "sa2")],
     {0: "The reviewers agree that the statistics need work.\n\nA consensus of both reviewers."}),
])
def test_referee_reports_are_numbered_by_their_eLife_titles(subs, expected):
    rows = elife.ArticleTables("elife:1.1")
    for title, text, sid in subs:
        rows.add_referee_report(referee_report(title, text, sid))
    assert {reviewer: row["text"] for (_, reviewer), row in rows.reports.items()} == expected
    assert all(row["report_id"] == f"elife:1.1#r1-{n}" for (_, n), row in rows.reports.items())


def test_cli_help():
    assert "--max-consecutive-failures" in help_text("elife", "harvest")
    assert "--assessments" in help_text("elife", "parse")
