"""Crossref discovery: the /works harvester against a loopback server speaking the API (cursor paging, the polite
pool's mailto, 429 with Retry-After, kill and resume, an expired cursor, bad answers), and read_works on saved pages."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests import biomed_helpers
from tests.biomed_helpers import Hang, run_to_completion
from tests.biomed_helpers import work_list as page
from tests.loopback import LoopbackServer, Reply, kill_when
from workflow_scripts.common.io import Rejects
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.biomed import crossref
from workflow_scripts.sources.http import HarvestError, RetryPolicy

FIXTURES = biomed_helpers.FIXTURES / "crossref"
FAST = RetryPolicy(min_interval_s=0.05, max_retries=3, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=30)
FILTERS = {"container-title": "F1000Research", "from-pub-date": "2020-01-01", "type": "journal-article"}
MAILTO = "curator@example.org"


def work(n: int) -> dict:
    """A work as Crossref serves it (the fields read_works uses, and a few it ignores)."""
    return {"DOI": f"10.12688/F1000Research.{20000 + n}.1", "type": "journal-article", "title": [f"Paper {n}"],
            "container-title": ["F1000Research"], "published": {"date-parts": [[2020, 1 + n % 12, 5]]},
            "license": [{"URL": "http://creativecommons.org/licenses/by/4.0/", "content-version": "vor"}],
            "URL": f"http://dx.doi.org/10.12688/f1000research.{20000 + n}.1",
            "indexed": {"date-time": "2024-01-01T00:00:00Z"},
            "resource": {"primary": {"URL": f"https://f1000research.com/articles/9-{n}/v1"}}, "member": "2560"}


class FakeCrossref:
    """/works over a list of works, ``rows`` a page, cursors 'c1', 'c2', ... (each names the offset it continues
    from). ``hooks[cursor]`` may answer instead (return None to serve the page)."""

    def __init__(self, works: list[dict]):
        self.works = works
        self.hooks: dict[str, callable] = {}

    def install(self, server: LoopbackServer) -> str:
        server.route("/works", self.serve)
        return server.url

    def serve(self, req) -> Reply:
        cursor = req.arg("cursor")
        hook = self.hooks.get(cursor)
        reply = hook(req) if hook else None
        if reply is not None:
            return reply
        if req.arg("offset") is not None or cursor is None:
            return Reply(400, json.dumps({"status": "failed", "message-type": "validation-failure"}))
        rows, start = int(req.arg("rows")), 0 if cursor == "*" else int(cursor[1:])
        items = self.works[start : start + rows]
        return Reply(200, json.dumps(page(items, f"c{start + len(items)}", len(self.works), rows)),
                     content_type="application/json")


def cursors(server: LoopbackServer) -> list[str]:
    return [r.arg("cursor") for r in server.requests]


def harvest(url: str, out: Path, **kwargs) -> dict:
    with crossref.polite_client(FAST, MAILTO) as client:
        return crossref.harvest_works(client, url, filters=FILTERS, out_dir=out, mailto=MAILTO, rows=2, **kwargs)


def read(paths: list[Path], quarantine: bool = True) -> tuple:
    bad = BadInput(Rejects(), quarantine=quarantine)
    return crossref.read_works(paths, bad), bad


def test_cursor_paging_with_mailto_a_429_and_one_row_per_doi(tmp_path):
    api = FakeCrossref([work(n) for n in range(5)])
    limited = []
    api.hooks["c2"] = lambda req: (None if limited else
                                   limited.append(req) or Reply(429, "slow down", {"Retry-After": "1"}))
    out = tmp_path / "listing"
    with LoopbackServer() as server:
        state = harvest(api.install(server), out)
    # 2 works a page, then the empty page that ends the listing; the 429 is asked again after its Retry-After
    assert cursors(server) == ["*", "c2", "c2", "c4", "c5"]
    assert server.requests[2].at - server.requests[1].at >= 0.95
    first = server.requests[0]
    assert first.arg("filter") == "container-title:F1000Research,from-pub-date:2020-01-01,type:journal-article"
    assert (first.arg("rows"), first.arg("mailto"), first.arg("offset")) == ("2", MAILTO, None)
    assert f"mailto:{MAILTO}" in first.headers["user-agent"]
    assert (state["pages"], state["records"], state["total"], state["complete"]) == (4, 5, 5, True)
    assert sorted(p.name for p in (out / "pages").iterdir()) == [f"page-0000{n}.json" for n in range(1, 5)]
    assert (out / "pages" / "page-00001.json").read_bytes() == json.dumps(page(api.works[:2], "c2", 5, 2)).encode()

    works, bad = read([out / "pages"])
    assert works["doi"].to_list() == [f"10.12688/f1000research.{20000 + n}.1" for n in range(5)] and not bad.rejects
    row = works.row(0, named=True)
    assert row == {"doi": "10.12688/f1000research.20000.1", "title": "Paper 0", "container_title": "F1000Research",
                   "published": dt.date(2020, 1, 5), "type": "journal-article",
                   "license_urls": ["http://creativecommons.org/licenses/by/4.0/"],
                   "url": "https://f1000research.com/articles/9-0/v1"}

    # a finished listing sends nothing
    with LoopbackServer() as server:
        harvest(api.install(server), out)
    assert server.requests == []
    assert crossref.listed_works(out).height == 5
    (out / "pages" / "page-00002.json").write_text('{"status": "ok", "mess')  # damaged after the harvest
    with pytest.raises(HarvestError, match=r"unreadable listing page\(s\) \['.*page-00002.json'\]"):
        crossref.listed_works(out)


def harvest_cli(url: str, out: Path) -> list[str]:
    return [sys.executable, "-m", "workflow_scripts.sources.biomed.crossref", "harvest", "--base-url", url,
            "--filter", "container-title=F1000Research", "--filter", "from-pub-date=2020-01-01",
            "--filter", "type=journal-article", "--rows", "2", "--out-dir", str(out), "--done", str(out / "done.json"),
            "--min-interval-s", "0.05"]


def test_kill_mid_listing_and_resume_asks_no_page_twice(tmp_path):
    api = FakeCrossref([work(n) for n in range(5)])
    api.hooks["c4"] = hang = Hang()  # the third page hangs until the harvester is killed
    out, env = tmp_path / "listing", {**os.environ, "CROSSREF_MAILTO": MAILTO}
    with LoopbackServer() as server:
        url = api.install(server)
        kill_when(harvest_cli(url, out), lambda: len(server.requests) >= 3, "the third page", hang.release, env)
        assert json.loads((out / "state.json").read_text())["cursor"] == "c4"
        n_before = len(server.requests)
        run_to_completion(harvest_cli(url, out), env)
    assert cursors(server)[n_before:] == ["c4", "c5"]
    assert server.requests[-1].arg("mailto") == MAILTO
    assert json.loads((out / "done.json").read_text()) == {"pages": 4, "records": 5, "total": 5}
    works, bad = read([out / "pages"])
    assert works.height == 5 and not bad.rejects


def test_an_expired_cursor_lists_again_from_the_start_and_leaves_no_stale_page(tmp_path):
    api = FakeCrossref([work(n) for n in range(5)])
    out = tmp_path / "listing"
    with LoopbackServer() as server:
        url = api.install(server)
        harvest(url, out)
        state = json.loads((out / "state.json").read_text())  # as if killed after page 2, ten minutes ago
        (out / "state.json").write_text(json.dumps({**state, "pages": 2, "cursor": "c4", "records": 4,
                                                    "complete": False, "cursor_at": time.time() - 600}))
        api.works = api.works[:3]  # meanwhile the listing changed: one page fewer
        n_before = len(server.requests)
        state = harvest(url, out)
    assert cursors(server)[n_before:] == ["*", "c2", "c3"]
    assert sorted(p.name for p in (out / "pages").iterdir()) == ["page-00001.json", "page-00002.json",
                                                                 "page-00003.json"]
    assert state["records"] == 3 and read([out / "pages"])[0].height == 3


def test_bad_answers_stop_the_harvest_naming_the_page_and_are_never_saved(tmp_path):
    api = FakeCrossref([work(n) for n in range(5)])
    out = tmp_path / "listing"
    body = json.dumps(page(api.works[2:4], "c4", 5, 2))
    bad_answers = {
        "not JSON": Reply(200, body[: len(body) // 2]),
        "status 'failed'": Reply(200, json.dumps({"status": "failed", "message-type": "exception", "message": "boom"})),
        "no next-cursor": Reply(200, json.dumps(page(api.works[2:4], None, 5, 2))),
        "HTTP 400": Reply(400, json.dumps({"status": "failed", "message-type": "validation-failure",
                                           "message": [{"type": "unknown-filter", "value": "x"}]})),
    }
    with LoopbackServer() as server:
        url = api.install(server)
        for what, reply in bad_answers.items():
            api.hooks["c2"] = lambda req, reply=reply: reply
            with pytest.raises(HarvestError, match=f"/works.*{what}"):
                harvest(url, out)
            assert [p.name for p in (out / "pages").iterdir()] == ["page-00001.json"]
        del api.hooks["c2"]
        assert harvest(url, out)["records"] == 5  # the rerun resumes at the page that failed


def test_read_works_rejects_bad_files_and_works_with_reasons(tmp_path):
    snap = tmp_path / "snap"
    snap.mkdir()
    odd = [work(1), {"title": ["no DOI"]}, {**work(2), "DOI": "not a doi"}, "garbage",
           {**work(3), "published": None, "issued": {"date-parts": [[2019]]}, "resource": None}]
    (snap / "any-name.json").write_text(json.dumps(page(odd, "c5", 5, 5)))
    (snap / "again.json").write_text(json.dumps(page([{**work(1), "title": ["Paper 1, corrected"],
                                                       "indexed": {"date-time": "2024-02-01T00:00:00Z"}}], "x", 1, 5)))
    for name in ("proxy.json", "error.json", "other.json"):
        (snap / name).write_bytes((FIXTURES / name).read_bytes())
    (snap / "empty.json").write_bytes(b"")
    works, bad = read([snap])
    assert works["doi"].to_list() == ["10.12688/f1000research.20001.1", "10.12688/f1000research.20003.1"]
    assert works["title"].to_list() == ["Paper 1, corrected", "Paper 3"]  # the more recently indexed copy
    assert works.row(1, named=True)["published"] == dt.date(2019, 1, 1)  # year only: "issued"
    assert works.row(1, named=True)["url"] == "http://dx.doi.org/10.12688/f1000research.20003.1"
    rows = sorted((Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in bad.rejects.rows)
    assert rows == [("any-name.json", "1", "missing DOI"), ("any-name.json", "3", "malformed work"),
                    ("any-name.json", "not a doi", "not a DOI"),
                    ("empty.json", "*", "bad file (empty)"), ("error.json", "*", "bad file (error response)"),
                    ("other.json", "*", "bad file (wrong source)"), ("proxy.json", "*", "bad file (html)")]
