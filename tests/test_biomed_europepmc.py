"""Europe PMC: DOI -> PMCID by the REST search (cursorMark paging) and the JATS full text, against a loopback server
(429 with Retry-After, resume without a repeated request), and the reader of saved search answers."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests import biomed_helpers
from tests.biomed_helpers import help_text
from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources.biomed import europepmc, jats
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import PoliteClient, RetryPolicy

FIXTURES = biomed_helpers.FIXTURES / "europepmc"
FAST = RetryPolicy(min_interval_s=0.0, max_retries=2, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=30)
WITH_TEXT, NO_PMC, UNKNOWN, NOT_IN_EPMC = ("10.1038/s41467-021-20001-1", "10.1038/s41467-021-20002-2",
                                           "10.1038/s41467-021-20003-3", "10.1038/s41467-021-20004-4")
NOT_OPEN, WITHDRAWN = "10.1038/s41556-021-20005-5", "10.1038/s41467-021-20006-6"


def lite(doi: str, pmcid: str | None = None, in_epmc: str = "Y", open_access: bool | None = None) -> dict:
    open_access = bool(pmcid) if open_access is None else open_access
    return {"id": doi[-7:], "source": "MED", "pmid": doi[-7:], "doi": doi.upper(), "title": f"Title of {doi}",
            "journalTitle": "Nat Commun", "isOpenAccess": "Y" if open_access else "N", "inEPMC": in_epmc,
            **({"pmcid": pmcid} if pmcid else {})}


# each DOI query finds these records, in this order; WITH_TEXT's query also finds a paper that cites it
RECORDS = {
    WITH_TEXT: [lite("10.1000/cites-it", "PMC9999999"), lite(WITH_TEXT, "PMC7000001")],
    NO_PMC: [lite(NO_PMC)],
    UNKNOWN: [],
    NOT_IN_EPMC: [lite(NOT_IN_EPMC, "PMC7000004", in_epmc="N")],
    # on Europe PMC's site, but outside the open access subset that fullTextXML serves: never asked for
    NOT_OPEN: [lite(NOT_OPEN, "PMC7000005", open_access=False)],
    WITHDRAWN: [lite(WITHDRAWN, "PMC7000006")],  # its fullTextXML answers 404
}


class FakeEuropePmc:
    def __init__(self, page_size: int = 1):
        self.page_size = page_size
        self.full_text_hooks: list = []  # handlers answering instead of the full text, used once each in order

    def install(self, server: LoopbackServer) -> str:
        server.route("/search", self.search)
        server.route("/PMC7000001/fullTextXML", self.full_text)
        server.route("/PMC7000006/fullTextXML", lambda req: Reply(404, '{"errMsg": "not found"}'))
        return server.url

    def search(self, req) -> Reply:
        doi = req.arg("query").removeprefix('DOI:"').removesuffix('"')
        records, cursor = RECORDS[doi], req.arg("cursorMark")
        start = 0 if cursor == "*" else int(cursor.removeprefix("c"))
        page = records[start : start + self.page_size]
        body = {"version": "6.9", "hitCount": len(records), "nextCursorMark": f"c{start + len(page)}",
                "request": {"queryString": req.arg("query"), "cursorMark": cursor},
                "resultList": {"result": page}}
        return Reply(200, json.dumps(body), content_type="application/json")

    def full_text(self, req) -> Reply:
        if self.full_text_hooks:
            return self.full_text_hooks.pop(0)(req)
        return Reply(200, (FIXTURES / "PMC7000001.xml").read_bytes(), content_type="application/xml")


def harvest(url: str, out: Path, dois=tuple(RECORDS)[:4], policy=FAST) -> dict:
    with PoliteClient(policy) as client:
        return europepmc.harvest(list(dois), client, url, out, page_size=1)


def test_dois_to_pmcids_to_full_texts_with_a_429_waited_out_then_nothing_asked_again(tmp_path):
    api = FakeEuropePmc()
    api.full_text_hooks.append(lambda req: Reply(429, "too many", {"Retry-After": "1"}))
    out = tmp_path / "epmc"
    with LoopbackServer() as server:
        summary = harvest(api.install(server), out)
    searched = [(r.arg("query"), r.arg("cursorMark")) for r in server.requests if r.path == "/search"]
    assert searched == [(f'DOI:"{WITH_TEXT}"', "*"), (f'DOI:"{WITH_TEXT}"', "c1"), (f'DOI:"{NO_PMC}"', "*"),
                        (f'DOI:"{UNKNOWN}"', "*"), (f'DOI:"{NOT_IN_EPMC}"', "*")]
    first = server.requests[0]
    assert (first.arg("format"), first.arg("resultType"), first.arg("pageSize")) == ("json", "lite", "1")
    texts = [r for r in server.requests if r.path.endswith("/fullTextXML")]
    assert [r.path for r in texts] == ["/PMC7000001/fullTextXML"] * 2 and texts[1].at - texts[0].at >= 0.95
    assert summary == {"source": "europepmc", "dois": 4, "not_found": 1, "no_pmcid": 1, "no_full_text": 1,
                       "not_open_access": 0, "full_texts": 1, "fetched": 1, "on_disk": 0, "failed": 0, "gone": 0}
    saved = out / "fulltext" / "PMC7000001.xml"
    assert saved.read_bytes() == (FIXTURES / "PMC7000001.xml").read_bytes()
    assert jats.read_jats(saved.read_bytes(), file=str(saved)).doi == WITH_TEXT
    assert sorted(p.name for p in (out / "search" / "10.1038_s41467-021-20001-1").iterdir()) == [
        "page-00001.json", "page-00002.json", "state.json"]

    with LoopbackServer() as server:
        again = harvest(api.install(server), out)
    assert server.requests == [] and again["on_disk"] == 1


def test_a_page_saved_before_its_state_is_asked_again_under_its_number(tmp_path):
    out = tmp_path / "epmc"
    with LoopbackServer() as server:
        url = FakeEuropePmc().install(server)
        harvest(url, out, dois=[WITH_TEXT])
        doi_dir = out / "search" / "10.1038_s41467-021-20001-1"
        state = json.loads((doi_dir / "state.json").read_text())
        (doi_dir / "state.json").write_text(json.dumps({**state, "pages": 1, "records": 1, "cursor": "c1",
                                                        "complete": False}))
        n_before = len(server.requests)
        harvest(url, out, dois=[WITH_TEXT])
    assert [(r.path, r.arg("cursorMark")) for r in server.requests[n_before:]] == [("/search", "c1")]
    assert len(list(doi_dir.glob("page-*.json"))) == 2


def test_only_open_access_full_texts_are_asked_for_and_a_404_is_final(tmp_path):
    out = tmp_path / "epmc"
    with LoopbackServer() as server:
        url = FakeEuropePmc().install(server)
        summary = harvest(url, out, dois=[NOT_OPEN, WITHDRAWN, WITH_TEXT])
        texts = [r.path for r in server.requests if r.path.endswith("/fullTextXML")]
        assert texts == ["/PMC7000006/fullTextXML", "/PMC7000001/fullTextXML"]  # not PMC7000005; the 404 once
        assert (summary["not_open_access"], summary["gone"], summary["full_texts"], summary["failed"]) == (1, 1, 1, 0)
        row = json.loads((out / "rejects.jsonl").read_text())
        assert (row["file"], row["record"], row["status"]) == ("fulltext/PMC7000006.xml",
                                                                f"{WITHDRAWN} PMC7000006", 404)
        assert (out / "failures.jsonl").read_text() == ""
        n_before = len(server.requests)
        again = harvest(url, out, dois=[NOT_OPEN, WITHDRAWN, WITH_TEXT])
    assert server.requests[n_before:] == [] and (again["gone"], again["on_disk"]) == (1, 1)
    ids, _, summary = parse(tmp_path, out / "search")
    assert set(ids.filter(pl.col("full_text"))["pmcid"]) == {"PMC9999999", "PMC7000001", "PMC7000006"}
    assert ids.filter(pl.col("doi") == NOT_OPEN)["full_text"].to_list() == [False]


def test_a_full_text_answered_with_an_html_page_is_not_saved_and_is_asked_again(tmp_path):
    api = FakeEuropePmc()
    api.full_text_hooks.append(lambda req: Reply(200, "<html><head><title>Service down</title></head></html>"))
    out = tmp_path / "epmc"
    with LoopbackServer() as server:
        url = api.install(server)
        summary = harvest(url, out, dois=[WITH_TEXT])
        assert summary["failed"] == 1 and not (out / "fulltext" / "PMC7000001.xml").exists()
        failure = json.loads((out / "failures.jsonl").read_text())
        assert failure["url"].endswith("/PMC7000001/fullTextXML") and "html" in failure["reason"]
        summary = harvest(url, out, dois=[WITH_TEXT])
    assert (summary["fetched"], summary["failed"]) == (1, 0) and (out / "failures.jsonl").read_text() == ""


def parse(tmp_path: Path, *dirs: Path, extra: tuple[str, ...] = ()):
    out, rejects, summary = tmp_path / "ids.parquet", tmp_path / "ids.rejects.jsonl", tmp_path / "ids.json"
    europepmc.main(["parse", "--search", *map(str, dirs), "--out", str(out), "--rejects", str(rejects),
                    "--summary", str(summary), *extra])
    return (pl.read_parquet(out), [json.loads(line) for line in rejects.read_text().splitlines()],
            json.loads(summary.read_text()))


def test_saved_answers_of_any_name_give_one_row_per_doi_and_bad_files_are_rejects(tmp_path):
    out = tmp_path / "epmc"
    with LoopbackServer() as server:
        harvest(FakeEuropePmc().install(server), out)
    ids, rejects, summary = parse(tmp_path, out / "search", FIXTURES)
    assert not rejects and ids.schema == pl.Schema(europepmc.IDS_SCHEMA)
    assert ids.select("doi", "pmcid", "full_text").rows() == [
        ("10.1000/cites-it", "PMC9999999", True), (WITH_TEXT, "PMC7000001", True), (NO_PMC, None, False),
        (NOT_IN_EPMC, "PMC7000004", False)]
    assert (summary["dois"], summary["with_pmcid"], summary["full_text"]) == (4, 3, 2)

    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "error.json").write_text(json.dumps({"message": "Too Many Requests"}))
    (snap / "cut.json").write_text((FIXTURES / "search-10.1038_s41467-021-20001-1.json").read_text()[:300])
    answer = {"hitCount": 1, "resultList": {"result": [{"id": "42", "source": "PPR", "title": "A preprint"}]}}
    (snap / "no_doi.json").write_text(json.dumps(answer))
    with pytest.raises(BadFileError, match="error.json"):
        parse(tmp_path, snap)
    ids, rejects, summary = parse(tmp_path, snap, extra=("--quarantine-bad-files", "--max-lost-fraction", "1"))
    assert sorted((Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects) == [
        ("cut.json", "*", "bad file (malformed)"), ("error.json", "*", "bad file (error response)"),
        ("no_doi.json", "42", "missing doi")]
    assert ids.height == 0 and summary["papers_lost"] == 2


def test_cli_help():
    assert "--dois-file" in help_text("europepmc", "harvest") and "--out " in help_text("europepmc", "parse")
