"""arXiv API fetcher (the ``arxiv`` package's paging, PoliteClient underneath) against loopback, and the Atom parser."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import polars as pl
import pytest

from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources import arxiv_api
from workflow_scripts.sources.http import HarvestError
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.records import PAPER_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "arxiv" / "api"
FIELDS = {"CS": ["cs"], "Math": ["math"], "Physics": ["hep-*"], "Others": ["stat"]}
WINDOW = {"name": "cslg-2025-01", "category": "cs.LG", "from_date": "2025-01-01", "until_date": "2025-01-31"}


def entry(n: int, version: int = 1) -> str:
    return (
        f"<entry><id>http://arxiv.org/abs/2501.{n:05d}v{version}</id><updated>2025-01-{n + 10:02d}T10:00:00Z</updated>"
        f"<published>2025-01-{n:02d}T09:00:00Z</published><title>Paper {n}</title><summary>Abstract {n}.</summary>"
        f"<author><name>Author {n}</name></author><arxiv:primary_category term=\"cs.LG\"/>"
        f"<category term=\"cs.LG\"/><category term=\"stat.ML\"/></entry>"
    )


def feed(entries: list[str], total: int, start: int, query: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">'
        f"<title>arXiv Query: {escape(query)}</title><id>https://arxiv.org/api/x</id>"
        "<updated>2025-02-01T00:00:00Z</updated>"
        f"<opensearch:totalResults>{total}</opensearch:totalResults>"
        f"<opensearch:startIndex>{start}</opensearch:startIndex>"
        f"<opensearch:itemsPerPage>{len(entries)}</opensearch:itemsPerPage>{''.join(entries)}</feed>"
    )


class FakeAPI:
    """/api/query: a search over ``n`` entries, or an id_list lookup; paging with start/max_results."""

    def __init__(self, n: int):
        self.entries = {f"2501.{i:05d}": entry(i) for i in range(1, n + 1)}
        self.hooks: dict[int, callable] = {}  # start -> handler that may answer instead

    def __call__(self, req) -> Reply:
        start, size = int(req.arg("start")), int(req.arg("max_results"))
        hook = self.hooks.get(start)
        if hook is not None and (reply := hook(req)) is not None:
            return reply
        ids = [i for i in (req.arg("id_list") or "").split(",") if i]
        hits = [self.entries[i] for i in ids] if ids else list(self.entries.values())
        body = feed(hits[start : start + size], len(hits), start, req.arg("search_query") or "")
        return Reply(200, body, content_type="application/atom+xml")


def do_fetch(srv: LoopbackServer, out_dir: Path, queries: list[dict], **kw) -> dict:
    kw = {"page_size": 2, "delay_s": 0.05, "num_retries": 2, **kw}
    return arxiv_api.fetch(queries, out_dir, base_url=srv.url + "/api/query", **kw)


def parse(tmp_path: Path, *dirs: Path, extra: tuple[str, ...] = ()) -> tuple[pl.DataFrame, list[dict], dict]:
    out, rej, summ = tmp_path / "papers.parquet", tmp_path / "rejects.jsonl", tmp_path / "summary.json"
    arxiv_api.main(["parse", "--feeds", *map(str, dirs), "--out", str(out), "--rejects", str(rej), "--fields",
                    json.dumps(FIELDS), "--unmapped-field", "null", "--summary", str(summ), *extra])
    return pl.read_parquet(out), [json.loads(x) for x in rej.read_text().splitlines()], json.loads(summ.read_text())


def test_fetch_pages_with_the_arxiv_client_and_saves_native_feeds(tmp_path):
    api = FakeAPI(5)
    with LoopbackServer() as srv:
        srv.route("/api/query", api)
        summary = do_fetch(srv, tmp_path / "api", [WINDOW, {"name": "ids", "id_list": ["2501.00002", "2501.00004"]}],
                           delay_s=0.3, done=tmp_path / "done.json")
    reqs = srv.requests
    window = [r for r in reqs if r.arg("search_query")]
    assert [(r.arg("start"), r.arg("max_results")) for r in window] == [("0", "2"), ("2", "2"), ("4", "2")]
    assert {r.arg("search_query") for r in window} == {"cat:cs.LG AND submittedDate:[202501010000 TO 202501312359]"}
    assert {(r.arg("sortBy"), r.arg("sortOrder")) for r in window} == {("submittedDate", "ascending")}
    assert reqs[-1].arg("id_list") == "2501.00002,2501.00004"
    assert all(b.at - a.at >= 0.25 for a, b in zip(reqs, reqs[1:])), "delay between requests (50 ms jitter allowed)"
    assert all(r.headers["user-agent"].startswith("scitaste/") for r in reqs)  # PoliteClient, not the package's session

    pages = sorted(p.relative_to(tmp_path / "api").as_posix() for p in (tmp_path / "api").rglob("page-*.xml"))
    assert pages == ["cslg-2025-01/page-00001.xml", "cslg-2025-01/page-00002.xml", "cslg-2025-01/page-00003.xml",
                     "ids/page-00001.xml"]
    assert (tmp_path / "api/cslg-2025-01/page-00002.xml").read_bytes().startswith(b"<?xml")  # verbatim Atom
    assert summary == json.loads((tmp_path / "done.json").read_text()) == {
        "pages": 4, "records": 7,
        "queries": {"cslg-2025-01": {"pages": 3, "records": 5, "total_results": 5},
                    "ids": {"pages": 1, "records": 2, "total_results": 2}}}

    df, rejects, parsed = parse(tmp_path, tmp_path / "api")
    assert df["arxiv_id"].to_list() == [f"2501.{i:05d}" for i in range(1, 6)] and not rejects
    assert parsed["duplicates"] == 2 and parsed["pages"] == 4 and parsed["records"] == 7

    # complete queries are not asked again
    with LoopbackServer() as srv:
        srv.route("/api/query", api)
        do_fetch(srv, tmp_path / "api", [WINDOW])
    assert srv.requests == []


def test_fetch_resumes_after_the_last_saved_page(tmp_path):
    api = FakeAPI(5)
    api.hooks[4] = lambda req: Reply(500, "down")
    with LoopbackServer() as srv:
        srv.route("/api/query", api)
        with pytest.raises(HarvestError, match="HTTP 500"):
            do_fetch(srv, tmp_path / "api", [WINDOW], num_retries=0)
        state = json.loads((tmp_path / "api/cslg-2025-01/state.json").read_text())
        assert (state["pages"], state["next_start"], state["complete"]) == (2, 4, False)

        del api.hooks[4]
        n_before = len(srv.requests)
        summary = do_fetch(srv, tmp_path / "api", [WINDOW])
    assert [r.arg("start") for r in srv.requests[n_before:]] == ["4"]  # saved pages are not fetched again
    assert summary["queries"]["cslg-2025-01"] == {"pages": 3, "records": 5, "total_results": 5}
    df, _, parsed = parse(tmp_path, tmp_path / "api")
    assert df.height == 5 and parsed["duplicates"] == 0


def test_empty_later_page_and_503_are_retried(tmp_path):
    api = FakeAPI(4)
    seen = {2: 0, 0: 0}

    def empty_once(req):
        seen[2] += 1
        return Reply(200, feed([], 4, 2), content_type="application/atom+xml") if seen[2] == 1 else None

    def busy_once(req):
        seen[0] += 1
        return Reply(503, "busy", headers={"Retry-After": "1"}) if seen[0] == 1 else None

    api.hooks.update({2: empty_once, 0: busy_once})
    with LoopbackServer() as srv:
        srv.route("/api/query", api)
        do_fetch(srv, tmp_path / "api", [WINDOW])
    reqs = srv.requests
    assert [r.arg("start") for r in reqs] == ["0", "0", "2", "2"]
    assert reqs[1].at - reqs[0].at >= 1.0  # Retry-After honoured
    assert len(list((tmp_path / "api/cslg-2025-01").glob("page-*.xml"))) == 2  # the empty answer was not saved


def test_parse_native_snapshot(tmp_path):
    df, rejects, summary = parse(tmp_path, FIXTURES)
    assert df.schema == pl.Schema(PAPER_SCHEMA)
    assert df["arxiv_id"].to_list() == ["2501.00001", "2501.00002"]
    row = df.row(0, named=True)
    assert row["title"] == "Scaling Laws for Judging Scientific Taste"
    assert row["abstract"] == "We study how well language models predict which of two papers gets cited more."
    assert row["authors"] == ["Ada Lovelace", "Alan Turing"]
    assert row["categories"] == ["cs.LG", "stat.ML"] and row["primary_category"] == "cs.LG" and row["field"] == "CS"
    assert (row["published"], row["updated"]) == (dt.date(2025, 1, 1), dt.date(2025, 1, 20))
    assert (row["doi"], row["journal_ref"], row["source"]) == ("10.1234/ex.2025.1", "Proc. Imaginary Conf. 2025", "api")
    assert [(r["record"], r["reason"]) for r in rejects] == [("http://arxiv.org/abs/2501.00003v1", "missing abstract")]
    assert summary == {"source": "api", "pages": 1, "records": 3, "papers": 2, "duplicates": 0,
                       "duplicates_conflicting": 0, "rejected": 1, "rejects": {"missing abstract": 1}, "bad_files": [],
                       "papers_lost": 0, "papers_lost_estimated": False, "lost_fraction": 0.0}


def test_bad_feeds_name_the_file_unless_quarantined(tmp_path):
    feeds = tmp_path / "feeds"
    shutil.copytree(FIXTURES, feeds)
    bad = feeds / "cslg-2025-01" / "page-00002.xml"
    bad.write_text(feed([entry(7)], 1, 0)[:-30])
    with pytest.raises(BadFileError, match=r"page-00002.xml \(malformed: not well-formed XML"):
        parse(tmp_path, feeds)
    bad.unlink()
    not_a_feed = feeds / "notes.xml"
    not_a_feed.write_text("<html><body>rate limited</body></html>")
    with pytest.raises(BadFileError, match=r"notes.xml \(html: an HTML page"):
        parse(tmp_path, feeds)
    bad.write_text(feed([entry(7)], 1, 0)[:-30])
    error_feed = feeds / "cslg-2025-01" / "page-00003.xml"  # the API answers a bad query with 200 and an error entry
    error_feed.write_text(feed(["<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id>"
                                "<title>Error</title><summary>incorrect id format for 1234</summary></entry>"], 1, 0))
    df, rejects, summary = parse(tmp_path, feeds, extra=("--quarantine-bad-files", "--max-lost-fraction", "1"))
    assert df.height == 2
    assert summary["rejects"] == {"bad file (error response)": 1, "bad file (html)": 1, "bad file (malformed)": 1,
                                  "missing abstract": 1}
    assert {r["file"] for r in rejects if r["record"] == "*"} == {str(bad), str(not_a_feed), str(error_feed)}
    assert "incorrect id format for 1234" in {b["file"]: b["detail"] for b in summary["bad_files"]}[str(error_feed)]
    # three bad pages of (estimated) 3 entries each, against 3 entries read
    assert (summary["papers_lost"], summary["lost_fraction"]) == (9, 0.75)


def test_queries_are_validated():
    with pytest.raises(ValueError, match="id_list, or category"):
        arxiv_api.search_of({"name": "x", "category": "cs.LG"})
    with pytest.raises(ValueError, match="unique"):
        arxiv_api.fetch([{"name": "a", "id_list": ["1"]}, {"name": "a", "id_list": ["2"]}], Path("unused"))
    assert arxiv_api.search_of({"name": "i", "id_list": ["2501.00001"]}).id_list == ["2501.00001"]


@pytest.mark.parametrize("sub,flag", [("fetch", "--query-json"), ("parse", "--feeds")])
def test_cli_help(sub, flag):
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.sources.arxiv_api", sub, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and flag in proc.stdout
