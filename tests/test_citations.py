"""Citation counts: Semantic Scholar and OpenAlex harvesters against a loopback server, and the response parser."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.loopback import LoopbackServer, Reply
from workflow_scripts.sources import citations, openalex, semantic_scholar
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.http import HarvestError

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parents[1]


def write_papers(path: Path, ids: list[str], published: list[dt.date] | None = None) -> Path:
    published = published or [dt.date(2021, 1, 1)] * len(ids)
    pl.DataFrame({"arxiv_id": ids, "published": published}, schema={"arxiv_id": pl.String, "published": pl.Date}).write_parquet(path)
    return path


def count_of(arxiv_id: str) -> int:
    return sum(map(ord, arxiv_id)) % 97


def s2_record(arxiv_id: str, count: int | None = None) -> dict:
    return {
        "paperId": f"p-{arxiv_id}",
        "externalIds": {"ArXiv": arxiv_id},
        "citationCount": count_of(arxiv_id) if count is None else count,
        "publicationDate": "2021-01-01",
    }


def s2_handler(unknown: frozenset[str] = frozenset()):
    """The batch endpoint: an array aligned with the request, null for unknown papers."""

    def handle(req):
        ids = [x.removeprefix("ARXIV:") for x in json.loads(req.body)["ids"]]
        body = [None if i in unknown else s2_record(i) for i in ids]
        return Reply(200, json.dumps(body), content_type="application/json")

    return handle


def fetch_args(papers: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    return ["-v", "fetch", "--papers", str(papers), "--out-dir", str(out), "--base-url", base_url, "--min-interval-s", "0", *extra]


def parse_argv(tmp_path: Path, source: str, responses: Path, papers: Path, name: str, *extra: str) -> list[str]:
    out, report, rejects = tmp_path / f"{name}.parquet", tmp_path / f"{name}.json", tmp_path / f"{name}.rejects.jsonl"
    return ["parse", "--source", source, "--responses", str(responses), "--papers", str(papers), "--out", str(out),
            "--report", str(report), "--rejects", str(rejects), *extra]


def outputs(tmp_path: Path, name: str) -> tuple[pl.DataFrame, dict, list[dict]]:
    rows = [json.loads(line) for line in (tmp_path / f"{name}.rejects.jsonl").read_text().splitlines()]
    return pl.read_parquet(tmp_path / f"{name}.parquet"), json.loads((tmp_path / f"{name}.json").read_text()), rows


def parse(tmp_path: Path, source: str, responses: Path, papers: Path, name: str = "c", *extra: str) -> tuple[pl.DataFrame, dict, list[dict]]:
    citations.main(parse_argv(tmp_path, source, responses, papers, name, *extra))
    return outputs(tmp_path, name)


def parse_cli(tmp_path: Path, source: str, responses: Path, papers: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    """The step as Snakemake runs it: `python -m ...citations` is __main__, so exception classes must not live there."""
    cmd = [sys.executable, "-m", "workflow_scripts.sources.citations", *parse_argv(tmp_path, source, responses, papers, name, *extra)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


# --- Semantic Scholar fetch ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_key", [True, False])
def test_s2_batches_bodies_and_api_key(tmp_path, monkeypatch, capfd, with_key):
    secret = "s2-secret-key-0123456789"
    if with_key:
        monkeypatch.setenv("S2_API_KEY", secret)
    else:
        monkeypatch.delenv("S2_API_KEY", raising=False)
    ids = [f"2101.{n:05d}" for n in range(1203)]
    papers = write_papers(tmp_path / "papers.parquet", ids[::-1])  # order in the file does not matter
    out, done = tmp_path / "raw", tmp_path / "done.json"
    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", s2_handler())
        assert semantic_scholar.main(fetch_args(papers, out, server.url + "/graph/v1", "--done", str(done))) == 0
    posts = server.requests
    assert [r.method for r in posts] == ["POST"] * 3
    bodies = [json.loads(r.body)["ids"] for r in posts]
    assert [len(b) for b in bodies] == [500, 500, 203]
    assert sum(bodies, []) == [f"ARXIV:{i}" for i in ids]
    assert all(r.arg("fields") == "citationCount,externalIds,publicationDate" for r in posts)
    assert [r.headers.get("x-api-key") for r in posts] == [secret if with_key else None] * 3

    assert sorted(p.name for p in out.iterdir()) == ["batch-000001.json", "batch-000002.json", "batch-000003.json", "manifest.jsonl"]
    lines = manifest(out)
    assert [line["file"] for line in lines] == ["batch-000001.json", "batch-000002.json", "batch-000003.json"]
    assert [line["ids"] for line in lines] == [ids[:500], ids[500:1000], ids[1000:]]
    assert all(dt.datetime.fromisoformat(line["fetched_at"]).tzinfo is not None for line in lines)
    summary = json.loads(done.read_text())
    assert (summary["papers"], summary["requested"], summary["batches"], summary["api_key_set"]) == (1203, 1203, 3, with_key)

    # the key reaches the server and nothing else: not the logs, the raw files, the manifest or the summary
    err = capfd.readouterr().err
    assert "batch-000003.json" in err and secret not in err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path

    frame, report, rejects = parse(tmp_path, "semantic_scholar", out, papers)
    assert frame["arxiv_id"].to_list() == ids
    assert frame["citation_count"].to_list() == [count_of(i) for i in ids]
    assert (report["with_count"], report["without_count"], report["duplicates"], rejects) == (1203, 0, 0, [])


def test_s2_rerun_requests_nothing_new(tmp_path):
    ids = [f"2101.{n:05d}" for n in range(5)]
    papers = write_papers(tmp_path / "papers.parquet", ids)
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", s2_handler())
        args = fetch_args(papers, out, server.url + "/graph/v1", "--batch-size", "2")
        semantic_scholar.main(args)
        semantic_scholar.main(args)
    assert len(server.requests) == 3


def test_s2_429_retry_after_is_honoured(tmp_path):
    papers = write_papers(tmp_path / "papers.parquet", ["2101.00001"])
    out = tmp_path / "raw"
    calls = []

    def handle(req):
        calls.append(req)
        if len(calls) == 1:
            return Reply(429, "Too Many Requests", headers={"Retry-After": "1"})
        return s2_handler()(req)

    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", handle)
        # exponential backoff would wait 60 s here: only the server's Retry-After keeps this test short
        extra = ("--backoff-base-s", "60", "--backoff-max-s", "60")
        assert semantic_scholar.main(fetch_args(papers, out, server.url + "/graph/v1", *extra)) == 0
    assert len(calls) == 2
    assert 0.9 <= calls[1].at - calls[0].at < 10
    assert json.loads((out / "batch-000001.json").read_text())[0]["citationCount"] == count_of("2101.00001")
    assert len(manifest(out)) == 1


def test_s2_resume_after_kill_between_file_and_manifest_line(tmp_path):
    """The state a kill can leave: a torn manifest line and a batch file without its line. Nothing is overwritten,
    the unlisted ids are requested again into a new file, and parse keeps one row per paper (the newer fetch)."""
    ids = [f"2101.{n:05d}" for n in range(5)]
    papers = write_papers(tmp_path / "papers.parquet", ids)
    out = tmp_path / "raw"
    out.mkdir()
    (out / "batch-000001.json").write_text(json.dumps([s2_record(i) for i in ids[:2]]))
    orphan = json.dumps([s2_record(i, count=1000) for i in ids[2:4]])  # stale counts, no manifest line
    (out / "batch-000002.json").write_text(orphan)
    line = {"file": "batch-000001.json", "fetched_at": "2024-01-01T00:00:00.000000+00:00", "ids": ids[:2]}
    (out / "manifest.jsonl").write_text(json.dumps(line) + "\n" + '{"file": "batch-0000')
    os.utime(out / "batch-000002.json", (1_700_000_000, 1_700_000_000))  # older than the rerun below

    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", s2_handler())
        semantic_scholar.main(fetch_args(papers, out, server.url + "/graph/v1", "--batch-size", "2"))
    assert [json.loads(r.body)["ids"] for r in server.requests] == [["ARXIV:2101.00002", "ARXIV:2101.00003"], ["ARXIV:2101.00004"]]
    assert (out / "batch-000002.json").read_text() == orphan
    # the torn line is gone (appending after it would have buried it mid-file, unreadable for the next resume)
    assert [row["file"] for row in manifest(out)] == ["batch-000001.json", "batch-000003.json", "batch-000004.json"]

    frame, report, rejects = parse(tmp_path, "semantic_scholar", out, papers)
    assert frame["arxiv_id"].to_list() == ids
    assert frame["citation_count"].to_list() == [count_of(i) for i in ids]  # the newer fetch beat the stale orphan
    assert (report["duplicates"], report["fetched_at_from_mtime"], rejects) == (2, 1, [])


def test_s2_non_json_answer_fails_the_run_and_is_requested_again(tmp_path):
    papers = write_papers(tmp_path / "papers.parquet", ["2101.00001"])
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        server.route("/graph/v1/paper/batch", lambda req: Reply(200, "<html>maintenance</html>", content_type="text/html"))
        with pytest.raises(HarvestError, match="not JSON"):
            semantic_scholar.main(fetch_args(papers, out, server.url + "/graph/v1"))
        assert not (out / "manifest.jsonl").exists()  # the body is kept as evidence, the batch is not marked done
        server.route("/graph/v1/paper/batch", s2_handler())
        semantic_scholar.main(fetch_args(papers, out, server.url + "/graph/v1"))
    assert [row["file"] for row in manifest(out)] == ["batch-000002.json"]
    # the refused body stays as evidence without a manifest line: superseded by the repeated request, not a bad file
    frame, report, rejects = parse(tmp_path, "semantic_scholar", out, papers)
    assert frame["arxiv_id"].to_list() == ["2101.00001"]
    assert (report["files_superseded"], report["bad_files"], report["papers_lost"], rejects) == (["batch-000001.json"], [], 0, [])


# --- OpenAlex fetch --------------------------------------------------------------------------------------------------


def openalex_work(doi: str, count: int, n: int) -> dict:
    return {"id": f"https://openalex.org/W{n}", "doi": f"https://doi.org/{doi.lower()}", "cited_by_count": count,
            "publication_date": "1999-01-01", "ids": {"openalex": f"https://openalex.org/W{n}", "doi": f"https://doi.org/{doi.lower()}"}}


def openalex_handler(known: dict[str, int], duplicate: str | None = None):
    """/works?filter=doi:A|B: the works whose DOI is listed, paged by per-page; `duplicate` is matched by two works."""

    def handle(req):
        dois = req.arg("filter").removeprefix("doi:").split("|")
        works = [openalex_work(d, known[d.lower()], n) for n, d in enumerate(dois) if d.lower() in known]
        works += [openalex_work(d, 0, 900) for d in dois if duplicate and d.lower() == duplicate]
        per_page, page = int(req.arg("per-page")), int(req.arg("page", "1"))
        body = {"meta": {"count": len(works), "page": page, "per_page": per_page}, "results": works[(page - 1) * per_page : page * per_page]}
        return Reply(200, json.dumps(body), content_type="application/json")

    return handle


def test_openalex_filter_key_and_mapping(tmp_path, monkeypatch, capfd):
    secret = "oa-secret-key-0123456789"
    monkeypatch.setenv("OPENALEX_API_KEY", secret)
    monkeypatch.setenv("OPENALEX_MAILTO", "harvest@example.org")
    ids = ["2101.00001", "2101.00002", "hep-th/9901001", "math.AG/0101001", "2101.99999"]
    papers = write_papers(tmp_path / "papers.parquet", ids)
    known = {"10.48550/arxiv.2101.00001": 5, "10.48550/arxiv.2101.00002": 0, "10.48550/arxiv.hep-th/9901001": 412,
             "10.48550/arxiv.math.ag/0101001": 33}
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        server.route("/works", openalex_handler(known))
        assert openalex.main(fetch_args(papers, out, server.url, "--batch-size", "3")) == 0
    reqs = server.requests
    assert [r.arg("filter") for r in reqs] == [
        "doi:10.48550/arxiv.2101.00001|10.48550/arxiv.2101.00002|10.48550/arxiv.2101.99999",
        "doi:10.48550/arxiv.hep-th/9901001|10.48550/arxiv.math.AG/0101001",
    ]
    assert {(r.arg("per-page"), r.arg("select"), r.arg("api_key"), r.arg("mailto"), r.arg("page")) for r in reqs} == {
        ("3", "id,doi,cited_by_count,publication_date,ids", secret, "harvest@example.org", None)
    }
    assert [row["file"] for row in manifest(out)] == ["page-000001.json", "page-000002.json"]
    assert secret not in capfd.readouterr().err
    assert all(secret.encode() not in p.read_bytes() for p in out.iterdir())

    frame, report, rejects = parse(tmp_path, "openalex", out, papers)
    assert dict(zip(frame["arxiv_id"], frame["citation_count"])) == {
        "2101.00001": 5, "2101.00002": 0, "hep-th/9901001": 412, "math.AG/0101001": 33,
    }
    assert set(frame["source"]) == {"openalex"}
    assert (report["without_count"], report["missing_sample"], rejects) == (1, ["2101.99999"], [])


def test_openalex_without_key_and_with_a_second_page(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    monkeypatch.delenv("OPENALEX_MAILTO", raising=False)
    ids = ["2101.00001", "2101.00002"]
    papers = write_papers(tmp_path / "papers.parquet", ids)
    known = {"10.48550/arxiv.2101.00001": 7, "10.48550/arxiv.2101.00002": 9}
    out = tmp_path / "raw"
    with LoopbackServer() as server:
        # 2101.00001 matches two works: three results for a batch of two, so a second page must be fetched
        server.route("/works", openalex_handler(known, duplicate="10.48550/arxiv.2101.00001"))
        openalex.main(fetch_args(papers, out, server.url, "--batch-size", "2"))
    assert [r.arg("page") for r in server.requests] == [None, "2"]
    assert all(r.arg("api_key") is None and r.arg("mailto") is None for r in server.requests)
    assert [(row["file"], row["ids"]) for row in manifest(out)] == [("page-000001.json", ids), ("page-000002.json", ids)]
    frame, report, _ = parse(tmp_path, "openalex", out, papers)
    assert frame["arxiv_id"].to_list() == ids
    assert report["duplicates"] == 1


def test_batch_size_is_bounded_by_the_api():
    with pytest.raises(SystemExit):
        semantic_scholar.main(["fetch", "--papers", "p", "--out-dir", "o", "--batch-size", "501"])
    with pytest.raises(SystemExit):
        openalex.main(["fetch", "--papers", "p", "--out-dir", "o", "--batch-size", "101"])


# --- parse -----------------------------------------------------------------------------------------------------------


def test_parse_rejects_malformed_and_reports_missing(tmp_path):
    ids = ["2001.00001", "2001.00002", "2101.00001", "2101.00002", "2101.00003", "2101.00004"]
    published = [dt.date(2020, 3, 1)] * 2 + [dt.date(2021, 3, 1)] * 4
    papers = write_papers(tmp_path / "papers.parquet", ids, published)
    snap = tmp_path / "snapshot"  # local-snapshot mode: native responses, no manifest
    snap.mkdir()
    good = [
        s2_record("2001.00001", 3),
        None,  # unknown to S2: a paper without a count, not a reject
        {"paperId": "x", "externalIds": {"DOI": "10.1/x"}, "citationCount": 4},  # no arXiv id
        {"paperId": "y", "externalIds": {"ArXiv": "2101.00001"}, "citationCount": None},  # no count
        s2_record("2101.00002", "12"),  # count of the wrong type
        s2_record("2101.00003v2", 8),  # a version suffix is dropped
        s2_record("1999.99999", 1),  # not in papers.parquet
        "garbage",
    ]
    (snap / "a.json").write_text(json.dumps(good))
    (snap / "b.json").write_text(json.dumps([s2_record("2101.00004", 2)])[:-7])  # truncated mid-record
    (snap / "c.json").write_text(json.dumps({"data": []}))  # valid JSON, not a batch response

    # quarantined: without a manifest the loss is estimated (the largest readable file, at most the papers left)
    quarantine = ("--quarantine-bad-files", "--max-lost-fraction", "1")
    frame, report, rejects = parse(tmp_path, "semantic_scholar", snap, papers, "c", *quarantine)
    assert frame.schema == pl.Schema(citations.CITATION_SCHEMA)
    assert frame.select("arxiv_id", "citation_count").rows() == [("2001.00001", 3), ("2101.00003", 8)]
    assert [(Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects] == [
        ("a.json", "2", "missing id"),
        ("a.json", "3", "missing count"),
        ("a.json", "4", "bad count"),
        ("a.json", "7", "malformed record"),
        ("b.json", "*", "bad file (malformed)"),
        ("c.json", "*", "bad file (malformed)"),
    ]
    assert report == {
        "source": "semantic_scholar",
        "files_read": 3,
        "files_rejected": 2,
        "files_superseded": [],
        "fetched_at_from_mtime": 3,
        "records_with_count": 2,
        "duplicates": 0,
        "duplicates_conflicting": 0,
        "unknown_ids": 1,
        "papers_total": 6,
        "with_count": 2,
        "without_count": 4,
        "missing_sample": ["2001.00002", "2101.00001", "2101.00002", "2101.00004"],
        "missing_by_year": {"2020": {"papers": 2, "missing": 1, "share": 0.5}, "2021": {"papers": 4, "missing": 3, "share": 0.75}},
        "rejected": 6,
        "rejects": {"bad count": 1, "bad file (malformed)": 2, "malformed record": 1, "missing count": 1, "missing id": 1},
        "bad_files": [
            {"file": str(snap / "b.json"), "kind": "malformed", "detail": report["bad_files"][0]["detail"]},
            {"file": str(snap / "c.json"), "kind": "malformed", "detail": "expected a JSON array, got dict"},
        ],
        "papers_lost": 4,
        "papers_lost_estimated": True,
        "lost_fraction": 0.666667,
    }
    assert report["bad_files"][0]["detail"].startswith("not JSON (truncated?)")
    # same inputs, byte-identical outputs
    parse(tmp_path, "semantic_scholar", snap, papers, "again", *quarantine)
    assert (tmp_path / "c.parquet").read_bytes() == (tmp_path / "again.parquet").read_bytes()
    assert (tmp_path / "c.json").read_bytes() == (tmp_path / "again.json").read_bytes()


def test_parse_fetched_at_from_manifest_else_mtime_and_latest_wins(tmp_path):
    papers = write_papers(tmp_path / "papers.parquet", ["2101.00001", "2101.00002"])
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "batch-000001.json").write_text(json.dumps([s2_record("2101.00001", 10), s2_record("2101.00002", 20)]))
    (raw / "batch-000002.json").write_text(json.dumps([s2_record("2101.00001", 11)]))
    (raw / "batch-000003.json").write_text(json.dumps([s2_record("2101.00002", 19)]))
    lines = [
        {"file": "batch-000001.json", "fetched_at": "2024-05-06T07:08:09.123456+00:00", "ids": ["2101.00001", "2101.00002"]},
        {"file": "batch-000002.json", "fetched_at": "2024-06-01T00:00:00.000001+00:00", "ids": ["2101.00001"]},
    ]
    (raw / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    os.utime(raw / "batch-000003.json", (1_600_000_000.25, 1_600_000_000.25))  # 2020: older than both manifest times

    frame, report, _ = parse(tmp_path, "semantic_scholar", raw, papers)
    assert frame.rows() == [
        ("2101.00001", 11, "semantic_scholar", dt.datetime(2024, 6, 1, 0, 0, 0, 1, tzinfo=UTC)),
        ("2101.00002", 20, "semantic_scholar", dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
    ]
    assert (report["duplicates"], report["duplicates_conflicting"], report["fetched_at_from_mtime"]) == (2, 2, 1)


def test_duplicates_with_equal_fetch_times_the_later_read_wins(tmp_path):
    papers = write_papers(tmp_path / "papers.parquet", ["2101.00001", "2101.00002"])
    snap = tmp_path / "snapshot"
    snap.mkdir()
    (snap / "a.json").write_text(json.dumps([s2_record("2101.00001", 5), s2_record("2101.00002", 1)]))
    (snap / "b.json").write_text(json.dumps([s2_record("2101.00001", 6), s2_record("2101.00002", 1)]))
    for name in ("a.json", "b.json"):
        os.utime(snap / name, (1_700_000_000, 1_700_000_000))
    frame, report, _ = parse(tmp_path, "semantic_scholar", snap, papers)
    assert frame.select("arxiv_id", "citation_count").rows() == [("2101.00001", 6), ("2101.00002", 1)]
    assert (report["duplicates"], report["duplicates_conflicting"]) == (2, 1)  # the repeated count is no conflict


def test_parse_openalex_shapes(tmp_path):
    papers = write_papers(tmp_path / "papers.parquet", ["2101.00001"])
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page-000001.json").write_text(json.dumps({"results": [
        openalex_work("10.48550/arXiv.2101.00001", 4, 1),
        {"id": "W2", "doi": None, "cited_by_count": 1},
        {"id": "W3", "doi": "https://doi.org/10.1103/physrev.1", "cited_by_count": 1},
    ]}))
    (raw / "page-000002.json").write_text(json.dumps([]))  # an S2-shaped file in an OpenAlex directory
    with pytest.raises(BadFileError, match=r"page-000002.json \(wrong source: a JSON array"):
        parse(tmp_path, "openalex", raw, papers)
    frame, report, rejects = parse(tmp_path, "openalex", raw, papers, "c", "--quarantine-bad-files")
    assert frame.select("arxiv_id", "citation_count").rows() == [("2101.00001", 4)]
    assert [(Path(r["file"]).name, r["reason"].split(":")[0]) for r in rejects] == [
        ("page-000001.json", "missing id"), ("page-000001.json", "bad id"), ("page-000002.json", "bad file (wrong source)"),
    ]
    assert (report["papers_lost"], report["papers_lost_estimated"]) == (0, True)  # its one paper has a count


# --- bad response files, through the command line Snakemake runs -----------------------------------------------------

BAD_BODIES = {  # native shapes of what a broken harvest or a wrong snapshot leaves in the directory
    "error response": b'{"message":"Too Many Requests"}',
    "html": b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>\n"
            b"<body><h1>Service Temporarily Unavailable</h1></body></html>\n",
    "empty": b"",
    "malformed": json.dumps([s2_record("2101.00098"), s2_record("2101.00099")]).encode()[:-40],  # truncated
    "wrong source": json.dumps({"meta": {"count": 1}, "results": [openalex_work("10.48550/arxiv.2101.00001", 3, 1)]}).encode(),
}


def s2_harvest_dir(tmp_path: Path, batches: int) -> tuple[Path, Path]:
    """A finished Semantic Scholar harvest of 2 papers per batch, as the harvester leaves it (files + manifest)."""
    ids = [f"2101.{n:05d}" for n in range(2 * batches)]
    papers = write_papers(tmp_path / "papers.parquet", ids)
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = []
    for n in range(batches):
        name, batch = f"batch-{n + 1:06d}.json", ids[2 * n : 2 * n + 2]
        (raw / name).write_text(json.dumps([s2_record(i) for i in batch]))
        lines.append({"file": name, "fetched_at": "2025-01-01T00:00:00+00:00", "ids": batch})
    (raw / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return papers, raw


@pytest.mark.parametrize("kind", BAD_BODIES)
def test_a_bad_batch_file_fails_the_step_naming_it(tmp_path, kind):
    papers, raw = s2_harvest_dir(tmp_path, batches=3)
    (raw / "batch-000002.json").write_bytes(BAD_BODIES[kind])
    proc = parse_cli(tmp_path, "semantic_scholar", raw, papers, "c")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{raw / 'batch-000002.json'} ({kind}:" in proc.stderr
    summary = (f"WARNING workflow_scripts.sources.bad_input: citations (semantic_scholar) data quality: 1 reject(s) by "
               f"reason {{'bad file ({kind})': 1}}; 1 bad file(s): {raw / 'batch-000002.json'} ({kind}); "
               "2 paper(s) (33.33%) lost to them")
    assert summary in proc.stderr and proc.stderr.index(summary) < proc.stderr.index("ERROR")
    assert not (tmp_path / "c.parquet").exists() and not (tmp_path / "c.json").exists()


def test_quarantined_bad_files_are_counted_up_to_the_threshold(tmp_path):
    papers, raw = s2_harvest_dir(tmp_path, batches=50)
    bad = dict(zip(BAD_BODIES, (f"batch-{n:06d}.json" for n in (3, 10, 20, 30, 40))))
    for kind, name in bad.items():
        (raw / name).write_bytes(BAD_BODIES[kind])
    # an unlisted refused body (the harvester's evidence of a repeated request) is superseded, not lost
    (raw / "batch-000051.json").write_bytes(BAD_BODIES["html"])

    proc = parse_cli(tmp_path, "semantic_scholar", raw, papers, "ok", "--quarantine-bad-files", "--max-lost-fraction", "0.1")
    assert proc.returncode == 0, proc.stderr
    frame, report, rejects = outputs(tmp_path, "ok")
    assert frame.height == 90
    assert [(Path(r["file"]).name, r["record"], r["reason"].split(":")[0]) for r in rejects] == [
        (name, "*", f"bad file ({kind})") for kind, name in sorted(bad.items(), key=lambda kv: kv[1])
    ]
    assert [(Path(b["file"]).name, b["kind"]) for b in report["bad_files"]] == sorted(
        ((name, kind) for kind, name in bad.items()), key=lambda x: x[0])
    assert (report["papers_lost"], report["lost_fraction"], report["papers_lost_estimated"]) == (10, 0.1, False)
    assert (report["files_rejected"], report["files_superseded"], report["without_count"]) == (5, ["batch-000051.json"], 10)
    assert "5 bad file(s)" in proc.stderr and "10 paper(s) (10.00%) lost to them" in proc.stderr

    # the default threshold, 1%: the step fails and lists every bad file
    proc = parse_cli(tmp_path, "semantic_scholar", raw, papers, "over", "--quarantine-bad-files")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "10 paper(s) (10.00%) lost, more than the allowed 1.00%" in proc.stderr
    assert all(str(raw / name) in proc.stderr.split("ERROR", 1)[1] for name in bad.values())


def test_the_other_source_s_snapshot_is_a_wrong_source_per_file(tmp_path):
    papers, raw = s2_harvest_dir(tmp_path, batches=2)
    proc = parse_cli(tmp_path, "openalex", raw, papers, "c")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    for name in ("batch-000001.json", "batch-000002.json"):
        assert f"{raw / name} (wrong source: a JSON array (a Semantic Scholar batch response)" in proc.stderr
