"""bioRxiv: the details harvester against a loopback server speaking the API (cursor paging, 5xx, kill and resume),
the parser on native and malformed answers, and citation counts by DOI through the citation layer."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import polars as pl
import pytest

from tests.loopback import LoopbackServer, Reply, kill_when
from workflow_scripts.sources import biorxiv, biorxiv_checks, citations, openalex, semantic_scholar
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import HarvestError, RetryPolicy

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(min_interval_s=0.05, max_retries=3, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=30)
JAN, FEB = biorxiv.Window("2023-01-01", "2023-01-31"), biorxiv.Window("2023-02-01", "2023-02-28")


def record(doi: str, version: int = 1, date: str = "2023-01-05", category: str = "Neuroscience", **extra) -> dict:
    """A details record as the API writes it (every value a string)."""
    return {"doi": doi, "title": f"Title of {doi} v{version}", "authors": "Doe, J.; Roe, R. A.;",
            "author_corresponding": "Doe, J.", "author_corresponding_institution": "Somewhere", "date": date,
            "version": str(version), "type": "new results", "license": "cc_by", "category": category,
            "jatsxml": f"https://www.biorxiv.org/content/{doi}v{version}.source.xml",
            "abstract": f"Abstract of {doi}.", "published": "NA", "server": "bioRxiv", **extra}


def answer(records: list[dict], cursor: int, total: int, window: biorxiv.Window) -> dict:
    if not total:
        return {"messages": [{"status": "no posts found"}], "collection": []}
    head = {"status": "ok", "interval": f"{window.from_date}:{window.until_date}", "cursor": str(cursor),
            "count": len(records), "count_new_papers": str(total), "total": str(total)}
    return {"messages": [head], "collection": records}


def doi(n: int, day: str = "2023.01.05") -> str:
    return f"10.1101/{day}.{n:06d}"


# January: six new papers and a revision of a paper first posted in 2022; February: three new papers and version 2 of
# the first January paper, with a new title and category
WINDOWS = {
    JAN: [record(doi(n), date=f"2023-01-{n + 1:02d}") for n in range(1, 7)]
         + [record("10.1101/2022.11.01.000099", 2, "2023-01-20")],
    FEB: [record(doi(n, "2023.02.03"), date="2023-02-03", category="Cell Biology") for n in range(7, 10)]
         + [record(doi(1), 2, "2023-02-10", "Cell_Biology", title="Revised title")],
}


class FakeBiorxiv:
    """/details/biorxiv/<from>/<until>/<cursor>/json over per-window record lists, ``per_page`` records a call (the
    API serves 100, some deployments 30: the harvester must step by what it got). ``hooks[(window, cursor)]`` may
    answer instead (return None to serve the page)."""

    def __init__(self, windows: dict[biorxiv.Window, list[dict]], per_page: int = 3):
        self.windows, self.per_page = windows, per_page
        self.hooks: dict[tuple[biorxiv.Window, int], callable] = {}

    def install(self, server: LoopbackServer) -> str:
        for window, records in self.windows.items():
            for cursor in range(len(records) + 1):
                path = f"/details/biorxiv/{window.from_date}/{window.until_date}/{cursor}/json"
                server.route(path, partial(self.serve, window, cursor))
        return server.url

    def serve(self, window: biorxiv.Window, cursor: int, req) -> Reply:
        hook = self.hooks.get((window, cursor))
        reply = hook(req) if hook else None
        if reply is not None:
            return reply
        records = self.windows[window]
        body = answer(records[cursor : cursor + self.per_page], cursor, len(records), window)
        return Reply(200, json.dumps(body), content_type="application/json")


def cursors(server: LoopbackServer) -> list[str]:
    return ["/".join(r.path.split("/")[3:6]) for r in server.requests]


def parse(tmp_path: Path, *dirs: Path, extra: tuple[str, ...] = (), name: str = "papers"):
    out, rejects, summary = (tmp_path / f"{name}{suffix}" for suffix in (".parquet", ".rejects.jsonl", ".json"))
    biorxiv.main(["parse", "--pages", *map(str, dirs), "--out", str(out), "--rejects", str(rejects),
                  "--summary", str(summary), *extra])
    rows = [json.loads(line) for line in rejects.read_text().splitlines()]
    return pl.read_parquet(out), rows, json.loads(summary.read_text())


def harvest_cli(base_url: str, out_dir: Path, done: Path) -> list[str]:
    return [sys.executable, "-m", "workflow_scripts.sources.biorxiv", "harvest", "--base-url", base_url,
            "--window", "2023-01-01:2023-01-31", "--window", "2023-02-01:2023-02-28", "--out-dir", str(out_dir),
            "--done", str(done), "--min-interval-s", "0.05"]


# --------------------------------------------------------------------------------------------------------------------
# harvest


def test_two_windows_page_by_cursor_retry_a_503_and_parse_one_row_per_doi(tmp_path):
    api = FakeBiorxiv(WINDOWS)
    busy = []
    api.hooks[(JAN, 3)] = lambda req: None if busy else busy.append(req) or Reply(503, "busy", {"Retry-After": "0"})
    policy = RetryPolicy(min_interval_s=0.2, max_retries=2, backoff_base_s=0.05, timeout_s=30)
    out, done = tmp_path / "raw", tmp_path / "done.json"
    with LoopbackServer() as server:
        summary = biorxiv.harvest(api.install(server), "biorxiv", [JAN, FEB], out, policy, done)
    jan, feb = "2023-01-01/2023-01-31", "2023-02-01/2023-02-28"
    # 3 records a call: the cursor steps by what came back; the 503 is asked again
    assert cursors(server) == [f"{jan}/0", f"{jan}/3", f"{jan}/3", f"{jan}/6", f"{feb}/0", f"{feb}/3"]
    assert all(b.at - a.at >= 0.15 for a, b in zip(server.requests, server.requests[1:])), "min interval"
    assert json.loads(done.read_text()) == summary == {
        "server": "biorxiv", "records": 11, "shortfall": 0,
        "windows": [{"from": JAN.from_date, "until": JAN.until_date, "pages": 3, "records": 7, "total": 7, "shortfall": 0},
                    {"from": FEB.from_date, "until": FEB.until_date, "pages": 2, "records": 4, "total": 4, "shortfall": 0}]}
    dirs = biorxiv.page_dirs(out, "biorxiv", [JAN, FEB])
    assert [sorted(p.name for p in d.iterdir()) for d in dirs] == [
        ["page-00001.json", "page-00002.json", "page-00003.json"], ["page-00001.json", "page-00002.json"]]

    papers, rejects, parsed = parse(tmp_path, *dirs)
    assert not rejects and papers.schema == pl.Schema(biorxiv.PAPER_SCHEMA)
    assert papers["doi"].to_list() == sorted([doi(n) for n in range(1, 7)] + [doi(n, "2023.02.03") for n in range(7, 10)])
    first = papers.row(0, named=True)  # version 2's text and category, version 1's date
    assert (first["title"], first["category"], first["version"]) == ("Revised title", "cell biology", 2)
    assert (first["published"], first["updated"]) == (dt.date(2023, 1, 2), dt.date(2023, 2, 10))
    assert first["authors"] == ["Doe, J.", "Roe, R. A."] and first["published_doi"] is None
    assert (parsed["records"], parsed["first_version_not_in_files"], parsed["duplicates"]) == (11, 1, 0)
    assert parsed["per_category"] == {"cell biology": 4, "neuroscience": 5}

    # a finished harvest sends nothing; the categories filter keeps one collection, the rest counted
    with LoopbackServer() as server:
        biorxiv.harvest(api.install(server), "biorxiv", [JAN, FEB], out, FAST)
    assert server.requests == []
    cell, _, counted = parse(tmp_path, *dirs, extra=("--categories", '["cell_biology"]'), name="cell")
    assert cell.height == 4 and counted["outside_categories"] == 5


def test_kill_mid_harvest_and_resume_loses_and_duplicates_nothing(tmp_path):
    api = FakeBiorxiv(WINDOWS)
    gate = threading.Event()
    api.hooks[(JAN, 6)] = lambda req: (gate.wait(30), None)[1]  # the third January page hangs until released
    out, done = tmp_path / "raw", tmp_path / "done.json"
    state = out / "state" / f"{JAN.slug('biorxiv')}.json"
    with LoopbackServer() as server:
        url = api.install(server)
        kill_when(harvest_cli(url, out, done),
                  lambda: state.exists() and json.loads(state.read_text())["pages"] == 2 and len(server.requests) == 3,
                  "the third page", gate.set)
        assert not done.exists() and json.loads(state.read_text())["cursor"] == 6
        n_before = len(server.requests)
        rerun = subprocess.run(harvest_cli(url, out, done), cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert rerun.returncode == 0, rerun.stderr
    assert cursors(server)[n_before:] == ["2023-01-01/2023-01-31/6", "2023-02-01/2023-02-28/0",
                                          "2023-02-01/2023-02-28/3"]  # no page asked twice
    assert json.loads(done.read_text())["records"] == 11
    papers, rejects, parsed = parse(tmp_path, *biorxiv.page_dirs(out, "biorxiv", [JAN, FEB]))
    assert papers.height == 9 and not rejects and parsed["duplicates"] == 0


def test_a_page_saved_before_its_state_is_fetched_again_under_its_number(tmp_path):
    api = FakeBiorxiv(WINDOWS)
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = api.install(server)
        biorxiv.harvest(url, "biorxiv", [JAN], out, FAST)
        # a kill between writing page 3 and its state: the state still says "after page 2"
        state_path = out / "state" / f"{JAN.slug('biorxiv')}.json"
        state = json.loads(state_path.read_text())
        state_path.write_text(json.dumps({**state, "pages": 2, "cursor": 6, "records": 6, "complete": False}))
        n_before = len(server.requests)
        summary = biorxiv.harvest(url, "biorxiv", [JAN], out, FAST)
    assert cursors(server)[n_before:] == ["2023-01-01/2023-01-31/6"] and summary["records"] == 7
    assert len(list(biorxiv.page_dirs(out, "biorxiv", [JAN])[0].iterdir())) == 3


def test_a_malformed_answer_is_never_saved_and_stops_the_harvest_naming_the_url(tmp_path):
    api = FakeBiorxiv(WINDOWS)
    body = json.dumps(answer(WINDOWS[JAN][3:6], 3, 7, JAN))
    api.hooks[(JAN, 3)] = lambda req: Reply(200, body[: len(body) // 2], content_type="application/json")
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        url = api.install(server)
        with pytest.raises(HarvestError, match=r"/details/biorxiv/2023-01-01/2023-01-31/3/json: answer is not JSON"):
            biorxiv.harvest(url, "biorxiv", [JAN], out, FAST)
        assert [p.name for p in biorxiv.page_dirs(out, "biorxiv", [JAN])[0].iterdir()] == ["page-00001.json"]
        # an answer out of step with the cursor asked for would skip or repeat records
        api.hooks[(JAN, 3)] = lambda req: Reply(200, json.dumps(answer(WINDOWS[JAN][:3], 0, 7, JAN)))
        with pytest.raises(HarvestError, match="starts at cursor 0, not 3"):
            biorxiv.harvest(url, "biorxiv", [JAN], out, FAST)
        del api.hooks[(JAN, 3)]
        summary = biorxiv.harvest(url, "biorxiv", [JAN], out, FAST)  # the rerun resumes at cursor 3
    assert summary["records"] == 7 and cursors(server)[-3:] == [f"2023-01-01/2023-01-31/{c}" for c in (3, 3, 6)]


def test_a_listing_that_ends_before_its_total_is_reported_as_a_shortfall(tmp_path, caplog):
    api = FakeBiorxiv(WINDOWS)
    api.hooks[(JAN, 6)] = lambda req: Reply(200, json.dumps(answer([], 6, 7, JAN)))
    with LoopbackServer() as server:
        summary = biorxiv.harvest(api.install(server), "biorxiv", [JAN], tmp_path, FAST, tmp_path / "done.json")
    assert (summary["records"], summary["shortfall"]) == (6, 1)
    assert "the listing ended at cursor 6 of the 7 records its total announced" in caplog.text


def test_a_window_without_posts_completes_empty(tmp_path):
    empty = biorxiv.Window("2023-03-01", "2023-03-02")
    with LoopbackServer() as server:
        summary = biorxiv.harvest(FakeBiorxiv({empty: []}).install(server), "biorxiv", [empty], tmp_path, FAST)
    assert summary["records"] == 0 and summary["windows"][0]["pages"] == 1
    papers, rejects, parsed = parse(tmp_path, *biorxiv.page_dirs(tmp_path, "biorxiv", [empty]))
    assert papers.height == 0 and not rejects and parsed["bad_files"] == []


# --------------------------------------------------------------------------------------------------------------------
# parse: snapshots of any name, bad files and bad records


def test_snapshot_reads_any_name_and_rejects_malformed_files_and_records_with_reasons(tmp_path):
    snap = tmp_path / "snapshot"
    (snap / "nested").mkdir(parents=True)
    good = [record(doi(1)), record(doi(2)), record(doi(3), abstract=""), record("10.1101/x y", date="2023-01-06"),
            record(doi(4), version="two"), record(doi(5), server="medRxiv"), "garbage"]
    (snap / "biorxiv_dump_january.json").write_text(json.dumps(answer(good, 0, len(good), JAN)))
    (snap / "nested" / "more.json.gz").write_bytes(gzip.compress(json.dumps(answer([record(doi(6))], 0, 1, JAN)).encode()))
    (snap / "notes.txt").write_text("not an answer, not read")
    bad = {
        "truncated.json": (json.dumps(answer([record(doi(7)), record(doi(8))], 0, 2, JAN))[:-30], "malformed"),
        "short.json": (json.dumps({"messages": [{"status": "ok", "cursor": 0, "count": 2, "total": 2}],
                                   "collection": []}), "malformed"),
        "error.json": (json.dumps({"messages": [{"status": "invalid interval"}], "collection": []}), "error response"),
        "proxy.json": ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>", "html"),
        "empty.json": ("", "empty"),
        "s2.json": (json.dumps([{"paperId": "x", "citationCount": 3}]), "wrong source"),
    }
    for name, (body, _) in bad.items():
        (snap / name).write_text(body)

    with pytest.raises(BadFileError) as err:  # strict: every bad file named with its reason, nothing written
        parse(tmp_path, snap)
    assert all(f"{snap / name} ({kind}:" in str(err.value) for name, (_, kind) in bad.items())
    assert not (tmp_path / "papers.parquet").exists()

    papers, rejects, summary = parse(tmp_path, snap, extra=("--quarantine-bad-files", "--max-lost-fraction", "1"))
    assert papers["doi"].to_list() == [doi(1), doi(2), doi(6)]  # the nested .json.gz counts, the .txt is not read
    assert sorted((Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects) == sorted([
        ("biorxiv_dump_january.json", doi(3), "missing abstract"),
        ("biorxiv_dump_january.json", "10.1101/x y", "bad doi"),
        ("biorxiv_dump_january.json", doi(4), "bad version"),
        ("biorxiv_dump_january.json", "6", "malformed record"),
        *((name, "*", f"bad file ({kind})") for name, (_, kind) in bad.items()),
    ])
    assert next(r for r in rejects if r["file"].endswith("short.json"))["reason"] == (
        "bad file (malformed): messages count 2 but the collection holds 0 record(s) (truncated?)")
    assert summary["records_other_server"] == 1 and summary["rejects"]["missing abstract"] == 1
    # the records in the bad files are estimated as the largest readable answer each (7)
    assert (summary["papers_lost"], summary["papers_lost_estimated"]) == (6 * 7, True)


def test_config_checks_name_the_key():
    cfg = {"scijudge": {"ood": {"biorxiv": {"mode": "snapshot", "snapshot_dir": None,
                                             "citations": {"mode": "snapshot", "snapshot_dir": "/nowhere/at/all"},
                                             "windows": [{"from_date": "2023-02-01", "until_date": "2023-01-31"}]}}}}
    assert biorxiv_checks.problems(cfg, lambda path: False) == [
        "config key scijudge.ood.biorxiv.snapshot_dir: required when scijudge.ood.biorxiv.mode is 'snapshot'",
        "config key scijudge.ood.biorxiv.citations.snapshot_dir: /nowhere/at/all does not exist, and no rule of this "
        "workflow writes it",
        "config key scijudge.ood.biorxiv.windows.0.until_date: 2023-01-31 is before from_date 2023-02-01",
    ]


# --------------------------------------------------------------------------------------------------------------------
# citation counts by DOI


def doi_papers(path: Path, dois: list[str]) -> Path:
    pl.DataFrame({"doi": dois, "published": [dt.date(2023, 1, 5)] * len(dois)}).write_parquet(path)
    return path


def test_semantic_scholar_by_doi_counts_the_requested_preprint_when_it_names_its_journal_version(tmp_path):
    dois = [doi(1), doi(2), doi(3)]
    papers = doi_papers(tmp_path / "papers.parquet", dois)

    def batch(req):
        asked = json.loads(req.body)["ids"]
        # S2 merged doi(2) with its journal version and names that DOI; doi(3) it does not know
        named = {f"DOI:{doi(1)}": doi(1).upper(), f"DOI:{doi(2)}": "10.1038/s41586-023-00001-x"}
        return Reply(200, json.dumps([{"paperId": a, "externalIds": {"DOI": named[a]}, "citationCount": 10 + k}
                                      if a in named else None for k, a in enumerate(asked)]))

    out = tmp_path / "raw"
    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", batch)
        semantic_scholar.main(["fetch", "--id-kind", "doi", "--papers", str(papers), "--out-dir", str(out),
                               "--base-url", server.url + "/graph/v1", "--min-interval-s", "0"])
    assert json.loads(server.requests[0].body)["ids"] == [f"DOI:{d}" for d in dois]
    report_path = tmp_path / "report.json"
    citations.main(["parse", "--source", "semantic_scholar", "--id-kind", "doi", "--responses", str(out),
                    "--papers", str(papers), "--out", str(tmp_path / "c.parquet"), "--report", str(report_path),
                    "--rejects", str(tmp_path / "r.jsonl")])
    frame = pl.read_parquet(tmp_path / "c.parquet")
    assert frame.schema == pl.Schema(citations.citation_schema("doi"))
    assert frame.select("doi", "citation_count").rows() == [(doi(1), 10), (doi(2), 11)]
    assert json.loads(report_path.read_text())["missing_sample"] == [doi(3)]

    # a snapshot without the manifest: each record names its paper itself, so the merged one is an unknown DOI
    (out / "manifest.jsonl").unlink()
    c, report, _ = parse_counts(tmp_path, "semantic_scholar", out, papers)
    assert c.select("doi", "citation_count").rows() == [(doi(1), 10)] and report["unknown_ids"] == 1


def parse_counts(tmp_path: Path, source: str, responses: Path, papers: Path):
    out, report, rejects = tmp_path / "n.parquet", tmp_path / "n.json", tmp_path / "n.jsonl"
    citations.main(["parse", "--source", source, "--id-kind", "doi", "--responses", str(responses), "--papers",
                    str(papers), "--out", str(out), "--report", str(report), "--rejects", str(rejects)])
    return pl.read_parquet(out), json.loads(report.read_text()), rejects.read_text()


def test_openalex_by_doi_filters_on_the_papers_own_dois(tmp_path):
    dois = [doi(1), doi(2)]
    papers = doi_papers(tmp_path / "papers.parquet", dois)

    def works(req):
        asked = req.arg("filter").removeprefix("doi:").split("|")
        found = [{"id": "https://openalex.org/W1", "doi": f"https://doi.org/{asked[0]}", "cited_by_count": 7}]
        return Reply(200, json.dumps({"meta": {"count": 1}, "results": found}))

    out = tmp_path / "raw"
    with LoopbackServer() as server:
        server.route("/works", works)
        openalex.main(["fetch", "--id-kind", "doi", "--papers", str(papers), "--out-dir", str(out), "--base-url",
                       server.url, "--min-interval-s", "0"])
    assert server.requests[0].arg("filter") == f"doi:{doi(1)}|{doi(2)}"
    frame, report, _ = parse_counts(tmp_path, "openalex", out, papers)
    assert frame.select("doi", "citation_count").rows() == [(doi(1), 7)] and report["without_count"] == 1


def test_cli_help():
    for argv in (["harvest", "--help"], ["parse", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "workflow_scripts.sources.biorxiv", *argv], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "--out" in proc.stdout
