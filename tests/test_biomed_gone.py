"""A 404 or 410 for one article is a final answer about that article: HarvestError carries the HTTP status, the
shared client never retries it (request and download), and a biomedical harvest records it as a rejects row with the
DOI and the status, goes on with the next article and never asks for it again (F1000 here; each source's own test
covers its harvest). Other failures keep their status too and are still asked again by the next run."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources.biomed import f1000
from workflow_scripts.sources.biomed.source_io import Fetches
from workflow_scripts.sources.http import HarvestError, PoliteClient, RetryPolicy
from tests.test_biomed_f1000 import FIXTURES, PAPER, crossref_works

FAST = RetryPolicy(min_interval_s=0.0, max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05, timeout_s=30)


def test_harvest_error_keeps_its_message_alone_as_before():
    err = HarvestError("GET x -> HTTP 500")
    assert (str(err), err.status, err.gone) == ("GET x -> HTTP 500", None, False)
    assert HarvestError("m", 410).gone and not HarvestError("m", 403).gone


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_answer_is_never_retried_by_request_or_download(tmp_path, status):
    with LoopbackServer() as server:
        server.route("/a", lambda req: Reply(status, "no such article"))
        with PoliteClient(FAST) as client:
            with pytest.raises(HarvestError) as err:
                client.get(f"{server.url}/a")
            assert (err.value.status, err.value.gone) == (status, True)
            with pytest.raises(HarvestError) as err:
                client.download(f"{server.url}/a", tmp_path / "a.pdf")
            assert (err.value.status, err.value.gone) == (status, True)
    assert len(server.requests) == 2 and not (tmp_path / "a.pdf").exists()


def test_retried_failures_keep_the_status_of_their_last_answer(tmp_path):
    with LoopbackServer() as server:
        server.route("/busy", lambda req: Reply(503, "busy"))
        with PoliteClient(FAST) as client:
            with pytest.raises(HarvestError, match="failed after 4 attempts") as err:
                client.get(f"{server.url}/busy")
            assert (err.value.status, err.value.gone) == (503, False)
            with pytest.raises(HarvestError) as err:
                client.download(f"{server.url}/busy", tmp_path / "b.pdf")
            assert (err.value.status, err.value.gone) == (503, False)
        with PoliteClient(RetryPolicy(0.0, 0, 0.01, 0.01, 30)) as client:
            with pytest.raises(HarvestError) as err:
                client.get("http://127.0.0.1:9/")  # nothing listens: no answer, no status
            assert err.value.status is None
    assert len(server.requests) == 8


def test_fetches_records_a_gone_article_once_and_skips_it_in_later_runs(tmp_path):
    with LoopbackServer() as server:
        server.route("/gone", lambda req: Reply(404, "not found"))
        with PoliteClient(FAST) as client:
            first = Fetches(tmp_path / "out" / "failures.jsonl")
            assert first.get(client, f"{server.url}/gone", tmp_path / "out" / "a" / "x.xml", record="10.1/x") is None
            assert first.is_gone(tmp_path / "out" / "a" / "x.xml") and first.summary()["gone"] == 1
            second = Fetches(tmp_path / "out" / "failures.jsonl")
            assert second.get(client, f"{server.url}/gone", tmp_path / "out" / "a" / "x.xml") is None
    assert len(server.requests) == 1 and second.summary() == {"fetched": 0, "on_disk": 0, "failed": 0, "gone": 1}
    row = json.loads((tmp_path / "out" / "rejects.jsonl").read_text())
    assert (row["file"], row["record"], row["status"], row["raw"]) == ("a/x.xml", "10.1/x", 404, None)


def test_an_f1000_version_answered_404_is_a_reject_and_the_other_versions_are_fetched(tmp_path):
    v2 = (FIXTURES / f"f1000research.12345.2.xml").read_bytes()
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        server.route("/works", crossref_works)
        server.route("/f1000/articles/12345/1/xml", lambda req: Reply(404, "This version was withdrawn"))
        server.route("/f1000/articles/12345/2/xml", lambda req: Reply(200, v2, content_type="application/xml"))
        harvest = f1000.Harvest(server.url, {"f1000research": f"{server.url}/f1000"}, dt.date(2018, 1, 1), None,
                                out, None)
        with PoliteClient(FAST) as listing, PoliteClient(FAST) as site:
            summary = harvest.run(["f1000research"], listing, site)
            n_before = len(server.requests)
            again = harvest.run(["f1000research"], listing, site)
    assert [r.path for r in server.requests].count("/f1000/articles/12345/1/xml") == 1
    assert server.requests[n_before:] == []
    assert (summary["fetched"], summary["failed"], summary["gone"]) == (1, 0, 1)
    assert (again["on_disk"], again["gone"]) == (1, 1)
    row = json.loads((out / "rejects.jsonl").read_text())
    assert (row["file"], row["record"], row["status"]) == (
        "articles/f1000research/10.12688_f1000research.12345.1.xml", f"{PAPER}.1", 404)
