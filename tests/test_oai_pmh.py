"""OAI-PMH harvester and parser against a real HTTP server on loopback (tests/loopback.py) and native-format pages."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest

from tests.loopback import LoopbackServer, Reply, kill_when
from workflow_scripts.sources import oai_pmh
from workflow_scripts.sources.http import HarvestError, RetryPolicy
from workflow_scripts.sources.records import PAPER_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "arxiv" / "oai_pmh"
FIELDS = {
    "CS": ["cs"],
    "Math": ["math"],
    "Physics": ["physics", "astro-ph", "cond-mat", "gr-qc", "hep-*", "math-ph", "nlin", "nucl-*", "quant-ph"],
    "Others": ["stat", "econ", "q-bio", "q-fin", "eess"],
}
FAST = RetryPolicy(min_interval_s=0.05, max_retries=3, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=30)


# --------------------------------------------------------------------------------------------------------------------
# a small OAI-PMH repository serving arXiv-format records in pages linked by resumption tokens


def record_xml(arxiv_id: str, deleted: bool = False) -> str:
    status = ' status="deleted"' if deleted else ""
    header = (f"<header{status}><identifier>oai:arXiv.org:{arxiv_id}</identifier>"
              f"<datestamp>2024-02-01</datestamp><setSpec>cs</setSpec></header>")
    if deleted:
        return f"<record>{header}</record>"
    return (
        f"<record>{header}<metadata><arXiv xmlns=\"http://arxiv.org/OAI/arXiv/\"><id>{arxiv_id}</id>"
        f"<created>2024-01-15</created><updated>2024-01-20</updated><authors><author><keyname>Doe</keyname>"
        f"<forenames>Jane</forenames></author></authors><title>Paper {arxiv_id}</title>"
        f"<categories>cs.LG stat.ML</categories>"
        f"<abstract>Abstract of {arxiv_id}.</abstract></arXiv></metadata></record>"
    )


def oai_page(body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        "<responseDate>2024-02-01T00:00:00Z</responseDate><request verb=\"ListRecords\">http://x/oai</request>"
        f"{body}</OAI-PMH>"
    )


def oai_error(code: str) -> Reply:
    return Reply(200, oai_page(f'<error code="{code}">{code} happened</error>'), content_type="text/xml")


class FakeOAI:
    """ListRecords over ``ids`` in pages of ``per_page``; token 'tok-N' asks for page N (0-based).

    ``hooks[N]`` may answer the request for page N instead (503s, blocking, expired tokens).
    """

    def __init__(self, ids: list[str], per_page: int = 3, deleted: set[str] = frozenset()):
        self.pages = [ids[i : i + per_page] for i in range(0, len(ids), per_page)]
        self.total = len(ids)
        self.per_page = per_page
        self.deleted = deleted
        self.hooks: dict[int, callable] = {}

    def __call__(self, req) -> Reply:
        if req.arg("verb") != "ListRecords":
            return oai_error("badVerb")
        token = req.arg("resumptionToken")
        if token is None:
            if req.arg("metadataPrefix") != "arXiv" or not req.arg("set"):
                return oai_error("badArgument")
            n = 0
        else:
            if set(req.query) != {"verb", "resumptionToken"}:  # the token is an exclusive argument
                return oai_error("badArgument")
            n = int(token.split("-")[1])
        hook = self.hooks.get(n)
        if hook is not None:
            reply = hook(req)
            if reply is not None:
                return reply
        records = "".join(record_xml(i, i in self.deleted) for i in self.pages[n])
        last = n == len(self.pages) - 1
        token_xml = (f'<resumptionToken cursor="{n * self.per_page}" completeListSize="{self.total}">'
                     f'{"" if last else f"tok-{n + 1}"}</resumptionToken>')
        return Reply(200, oai_page(f"<ListRecords>{records}{token_xml}</ListRecords>"), content_type="text/xml")


def ids_of(n: int) -> list[str]:
    return [f"2401.{i:05d}" for i in range(1, n + 1)]


def parse_dirs(tmp_path: Path, *dirs: Path, extra: tuple[str, ...] = ()) -> tuple[pl.DataFrame, list[dict], dict]:
    out, rej, summ = tmp_path / "papers.parquet", tmp_path / "rejects.jsonl", tmp_path / "summary.json"
    oai_pmh.main(["parse", "--pages", *map(str, dirs), "--out", str(out), "--rejects", str(rej), "--fields",
                  json.dumps(FIELDS), "--unmapped-field", "null", "--summary", str(summ), *extra])
    rejects = [json.loads(line) for line in rej.read_text().splitlines()]
    return pl.read_parquet(out), rejects, json.loads(summ.read_text())


def harvest_cli(base_url: str, out_dir: Path, done: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "workflow_scripts.sources.oai_pmh", "harvest", "--base-url", base_url, "--set", "cs",
            "--out-dir", str(out_dir), "--done", str(done), "--min-interval-s", "0.05", *extra]


# --------------------------------------------------------------------------------------------------------------------
# parse


def test_parse_native_fixture(tmp_path):
    df, rejects, summary = parse_dirs(tmp_path, FIXTURES)
    assert df.schema == pl.Schema(PAPER_SCHEMA)
    assert df["arxiv_id"].to_list() == ["0704.0001", "hep-th/9901001"]
    first = df.row(0, named=True)
    assert first["title"] == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert first["authors"] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert first["abstract"].startswith("A fully differential calculation in perturbative")
    assert (first["published"], first["updated"]) == (dt.date(2007, 4, 2), dt.date(2008, 11, 13))
    assert (first["doi"], first["journal_ref"], first["field"], first["source"]) == (
        "10.1103/PhysRevD.76.013009", "Phys.Rev.D76:013009,2007", "Physics", "oai_pmh")
    old = df.row(1, named=True)
    assert old["authors"] == ["Edward Witten Jr", "ATLAS Collaboration"]
    assert old["categories"] == ["hep-th", "math-ph", "math.MP"] and old["primary_category"] == "hep-th"
    assert old["updated"] == old["published"] == dt.date(1999, 1, 1)  # no <updated>: the created date

    assert {(r["record"], r["reason"]) for r in rejects} == {
        ("oai:arXiv.org:0704.0004", "missing abstract"),
        ("oai:arXiv.org:0704.0005", "unparseable created date: '2007-13-45'"),
    }
    assert all(r["file"].endswith("page-00001.xml") and "<record" in r["raw"] for r in rejects)
    assert summary == {"source": "oai_pmh", "pages": 1, "records": 5, "deleted": 1, "outside_sets": 0, "papers": 2,
                       "duplicates": 0, "duplicates_conflicting": 0, "rejected": 2,
                       "rejects": {"missing abstract": 1, "unparseable created date": 1}, "bad_files": [],
                       "papers_lost": 0, "papers_lost_estimated": False, "lost_fraction": 0.0}


def test_parse_is_deterministic_and_dedupes_across_dirs(tmp_path):
    # the same set harvested twice (e.g. a paper in two OAI sets): one row per id, duplicates counted
    for name in ("a", "b"):
        shutil.copytree(FIXTURES, tmp_path / name)
    df, _, summary = parse_dirs(tmp_path, tmp_path / "a", tmp_path / "b")
    assert df.height == 2 and summary["deleted"] == 2
    assert (summary["duplicates"], summary["duplicates_conflicting"]) == (2, 0)  # exact repeats
    first = (tmp_path / "papers.parquet").read_bytes()
    parse_dirs(tmp_path, tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "papers.parquet").read_bytes() == first


def test_bad_pages_are_an_error_naming_every_file_unless_quarantined(tmp_path):
    pages = tmp_path / "pages"
    shutil.copytree(FIXTURES, pages)
    truncated = pages / "physics" / "page-00002.xml"
    truncated.write_text(oai_page("<ListRecords><record><header>")[:-20])
    empty = pages / "physics" / "page-00003.xml"
    empty.write_bytes(b"")
    html = pages / "physics" / "page-00004.xml"
    html.write_text("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body></body></html>")
    error_page = pages / "physics" / "page-00005.xml"  # an OAI error answer saved as a page
    error_page.write_bytes(oai_error("badArgument").body.encode())
    atom = pages / "physics" / "page-00006.xml"  # an arXiv API feed in the OAI-PMH snapshot
    atom.write_text('<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>')
    bad = {truncated: "malformed", empty: "empty", html: "html", error_page: "error response", atom: "wrong source"}
    with pytest.raises(oai_pmh.BadFileError) as err:
        parse_dirs(tmp_path, pages)
    assert all(f"{path} ({kind}:" in str(err.value) for path, kind in bad.items())
    assert not (tmp_path / "papers.parquet").exists()

    # the command line: the data-quality WARNING, then one clear error naming the files, exit status 1
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.sources.oai_pmh", "parse", "--pages", str(pages),
                           "--out", str(tmp_path / "p.parquet"), "--rejects", str(tmp_path / "r.jsonl"),
                           "--fields", json.dumps(FIELDS), "--unmapped-field", "null"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    warning = proc.stderr.index("WARNING workflow_scripts.sources.bad_input: oai_pmh data quality:")
    assert "5 bad file(s)" in proc.stderr[warning:] and "~25 paper(s) (83.33%) lost to them" in proc.stderr[warning:]
    assert warning < proc.stderr.index("ERROR") and all(str(path) in proc.stderr for path in bad)

    # quarantined: each bad page is a counted reject; the loss is estimated as the largest readable page (5 records)
    df, rejects, summary = parse_dirs(tmp_path, pages, extra=("--quarantine-bad-files", "--max-lost-fraction", "0.9"))
    assert df.height == 2 and summary["pages"] == 6
    assert [(r["file"], r["record"], r["reason"].split(":")[0]) for r in rejects if r["record"] == "*"] == [
        (str(path), "*", f"bad file ({kind})") for path, kind in bad.items()
    ]
    assert (summary["papers_lost"], summary["papers_lost_estimated"], summary["lost_fraction"]) == (25, True, 0.833333)
    with pytest.raises(oai_pmh.BadFileError, match=r"~25 paper\(s\) \(83.33%\) lost, more than the allowed 1.00%"):
        parse_dirs(tmp_path, pages, extra=("--quarantine-bad-files",))


def test_records_outside_the_configured_sets_are_excluded_and_counted(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    records = [record_xml(i) for i in ("2401.00001", "2401.00002", "2401.00003", "2401.00004")]
    records[1] = records[1].replace("<setSpec>cs</setSpec>", "<setSpec>physics:hep-th</setSpec>")
    records[2] = records[2].replace("<setSpec>cs</setSpec>", "<setSpec>q-fin</setSpec>")
    records[3] = records[3].replace("<setSpec>cs</setSpec>", "<setSpec>physics:hep-ph</setSpec><setSpec>q-fin</setSpec>")
    (pages / "page-00001.xml").write_text(oai_page(f"<ListRecords>{''.join(records)}</ListRecords>"))

    df, _, summary = parse_dirs(tmp_path, pages, extra=("--sets", "cs", "physics:hep-ph"))
    assert df["arxiv_id"].to_list() == ["2401.00001", "2401.00004"]  # in a set, or under one of them
    assert (summary["records"], summary["outside_sets"], summary["papers"]) == (4, 2, 2)
    df, _, summary = parse_dirs(tmp_path, pages, extra=("--sets", "physics"))
    assert df["arxiv_id"].to_list() == ["2401.00002", "2401.00004"]  # physics:hep-th and physics:hep-ph are under it
    df, _, summary = parse_dirs(tmp_path, pages)
    assert (df.height, summary["outside_sets"]) == (4, 0)  # no sets given: every record


def test_page_with_non_utf8_bytes_is_a_malformed_file(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "page-00001.xml").write_bytes(oai_page(f"<ListRecords>{record_xml('2401.00001')}</ListRecords>")
                                           .encode().replace(b"Jane", b"J\xe9ne"))
    with pytest.raises(oai_pmh.BadFileError, match=r"page-00001.xml \(malformed: not well-formed XML"):
        parse_dirs(tmp_path, pages)


# --------------------------------------------------------------------------------------------------------------------
# harvest


def test_harvest_pages_through_resumption_tokens(tmp_path):
    ids = ids_of(8)
    repo = FakeOAI(ids, per_page=3, deleted={"2401.00004"})
    policy = RetryPolicy(min_interval_s=0.3, max_retries=2, backoff_base_s=0.1, timeout_s=30)
    with LoopbackServer() as srv:
        srv.route("/oai", repo)
        summary = oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", "2024-01-01", "2024-01-31",
                                  policy=policy, done=tmp_path / "done.json")
    reqs = srv.requests
    assert len(reqs) == 3
    assert reqs[0].query == {"verb": ["ListRecords"], "metadataPrefix": ["arXiv"], "set": ["cs"],
                             "from": ["2024-01-01"], "until": ["2024-01-31"]}
    assert [r.query for r in reqs[1:]] == [{"verb": ["ListRecords"], "resumptionToken": [f"tok-{n}"]} for n in (1, 2)]
    # arrival times at the server: 50 ms tolerance for the client-side jitter of sending
    assert all(b.at - a.at >= 0.25 for a, b in zip(reqs, reqs[1:])), "min interval between requests"
    assert sorted(p.name for p in (tmp_path / "cs").glob("page-*.xml")) == [f"page-0000{n}.xml" for n in (1, 2, 3)]
    state = json.loads((tmp_path / "cs" / "state.json").read_text())
    assert state["complete"] and state["pages"] == 3 and state["complete_list_size"] == 8
    assert json.loads((tmp_path / "done.json").read_text()) == summary == {
        "set": "cs", "from": "2024-01-01", "until": "2024-01-31", "pages": 3, "records": 8, "deleted": 1}

    df, rejects, parsed = parse_dirs(tmp_path, tmp_path / "cs")
    assert df["arxiv_id"].to_list() == [i for i in ids if i != "2401.00004"] and not rejects
    assert parsed["deleted"] == 1 and df["field"].unique().to_list() == ["CS"]

    # a second run over a complete harvest sends nothing
    with LoopbackServer() as srv:
        srv.route("/oai", repo)
        oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", "2024-01-01", "2024-01-31", policy=FAST)
    assert srv.requests == []


def test_503_retry_after_is_honoured(tmp_path):
    repo = FakeOAI(ids_of(6), per_page=2)
    served = []

    def busy_once(req):
        if not served:
            served.append(req)
            return Reply(503, "busy", headers={"Retry-After": "1"})
        return None

    repo.hooks[1] = busy_once
    with LoopbackServer() as srv:
        srv.route("/oai", repo)
        oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", policy=FAST)
    reqs = srv.requests
    assert len(reqs) == 4  # page 1, 503, page 2 again, page 3
    assert reqs[2].at - reqs[1].at >= 1.0
    assert reqs[1].query == reqs[2].query
    assert len(list((tmp_path / "cs").glob("page-*.xml"))) == 3


def test_kill_after_page_2_and_resume_loses_and_duplicates_nothing(tmp_path):
    ids = ids_of(11)
    repo = FakeOAI(ids, per_page=3)  # 4 pages
    gate = threading.Event()
    repo.hooks[2] = lambda req: (gate.wait(30), None)[1]  # the request for page 3 hangs until released
    out_dir, done = tmp_path / "cs", tmp_path / "done.json"
    with LoopbackServer() as srv:
        srv.route("/oai", repo)
        state = out_dir / "state.json"
        # page 2 written and page 3 asked for: the harvester now waits for it
        kill_when(harvest_cli(srv.url + "/oai", out_dir, done),
                  lambda: state.exists() and json.loads(state.read_text())["pages"] == 2 and len(srv.requests) >= 3,
                  "page 3", gate.set)
        assert not done.exists()
        assert sorted(p.name for p in out_dir.glob("page-*.xml")) == ["page-00001.xml", "page-00002.xml"]

        n_before = len(srv.requests)
        rerun = subprocess.run(harvest_cli(srv.url + "/oai", out_dir, done), cwd=ROOT, capture_output=True, text=True,
                               timeout=60)
        assert rerun.returncode == 0, rerun.stderr
    resumed = srv.requests[n_before:]
    assert [r.arg("resumptionToken") for r in resumed] == ["tok-2", "tok-3"]  # no page fetched twice
    assert json.loads(done.read_text())["records"] == 11

    df, rejects, _ = parse_dirs(tmp_path, out_dir)
    assert df["arxiv_id"].to_list() == ids and not rejects  # every id exactly once, none missing


def test_page_written_but_state_not_updated_is_fetched_again(tmp_path):
    ids = ids_of(9)
    repo = FakeOAI(ids, per_page=3)
    out_dir = tmp_path / "cs"
    with LoopbackServer() as srv:
        srv.route("/oai", repo)
        oai_pmh.harvest(srv.url + "/oai", "cs", out_dir, policy=FAST)
        # simulate a kill between writing page 2 and writing its state: the state still says "after page 1"
        state = json.loads((out_dir / "state.json").read_text())
        state.update(pages=1, records=3, next_token="tok-1", complete=False)
        (out_dir / "state.json").write_text(json.dumps(state))
        (out_dir / "page-00003.xml").unlink()
        n_before = len(srv.requests)
        summary = oai_pmh.harvest(srv.url + "/oai", "cs", out_dir, policy=FAST)
    assert [r.arg("resumptionToken") for r in srv.requests[n_before:]] == ["tok-1", "tok-2"]
    assert summary["pages"] == 3 and summary["records"] == 9
    df, _, parsed = parse_dirs(tmp_path, out_dir)
    assert df["arxiv_id"].to_list() == ids and parsed["duplicates"] == 0


def test_no_records_match_completes_with_zero_records(tmp_path):
    with LoopbackServer() as srv:
        srv.route("/oai", lambda req: oai_error("noRecordsMatch"))
        summary = oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", "2030-01-01", policy=FAST,
                                  done=tmp_path / "done.json")
    assert summary["pages"] == 0 and summary["records"] == 0
    assert json.loads((tmp_path / "done.json").read_text())["records"] == 0
    df, rejects, parsed = parse_dirs(tmp_path, tmp_path / "cs")
    assert df.height == 0 and df.schema == pl.Schema(PAPER_SCHEMA) and not rejects and parsed["pages"] == 0


def test_bad_resumption_token_restarts_the_set(tmp_path, caplog):
    ids = ids_of(10)
    repo = FakeOAI(ids, per_page=3)  # 4 pages
    expired = []

    def expire_once(req):
        if not expired:
            expired.append(req)
            return oai_error("badResumptionToken")
        return None

    repo.hooks[2] = expire_once
    with caplog.at_level(logging.WARNING), LoopbackServer() as srv:
        srv.route("/oai", repo)
        summary = oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", policy=FAST)
    tokens = [r.arg("resumptionToken") for r in srv.requests]
    assert tokens == [None, "tok-1", "tok-2", None, "tok-1", "tok-2", "tok-3"]
    assert "resumption token expired" in caplog.text
    assert summary["pages"] == 4 and summary["records"] == 10  # counts restart with the set
    assert len(list((tmp_path / "cs").glob("page-*.xml"))) == 4
    df, _, parsed = parse_dirs(tmp_path, tmp_path / "cs")
    assert df["arxiv_id"].to_list() == ids and parsed["duplicates"] == 0


def test_other_oai_errors_raise_naming_the_code(tmp_path):
    with LoopbackServer() as srv:
        srv.route("/oai", lambda req: oai_error("cannotDisseminateFormat"))
        with pytest.raises(HarvestError, match="cannotDisseminateFormat"):
            oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", policy=FAST, done=tmp_path / "done.json")
    assert not (tmp_path / "done.json").exists()

    # a 200 answer that is not OAI-PMH (a proxy's HTML page) is never saved as a page
    with LoopbackServer() as srv:
        srv.route("/oai", lambda req: Reply(200, "<html><body>maintenance</body></html>", content_type="text/html"))
        with pytest.raises(HarvestError, match="not an OAI-PMH response"):
            oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs2", policy=FAST)
    assert list((tmp_path / "cs2").glob("page-*.xml")) == []


def test_state_of_another_window_is_not_mixed_in(tmp_path):
    with LoopbackServer() as srv:
        srv.route("/oai", FakeOAI(ids_of(4), per_page=2))
        oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", "2024-01-01", policy=FAST)
        srv.route("/oai", FakeOAI(ids_of(2), per_page=2))
        summary = oai_pmh.harvest(srv.url + "/oai", "cs", tmp_path / "cs", "2024-02-01", policy=FAST)
    assert summary["pages"] == 1 and [p.name for p in (tmp_path / "cs").glob("page-*.xml")] == ["page-00001.xml"]


@pytest.mark.parametrize("sub,flag", [("harvest", "--done"), ("parse", "--quarantine-bad-files"), ("parse", "--sets")])
def test_cli_help(sub, flag):
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.sources.oai_pmh", sub, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and flag in proc.stdout
