"""Kaggle arXiv metadata dump reader: native JSON-lines fixture, bad lines, duplicates, gzip, chunking, workers."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from workflow_scripts.sources import arxiv_dump
from workflow_scripts.sources.errors import BadFileError
from workflow_scripts.sources.records import PAPER_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
DUMP = Path(__file__).parent / "fixtures" / "arxiv" / "arxiv-metadata-oai-snapshot.json"
FIELDS = {"CS": ["cs"], "Math": ["math"], "Physics": ["hep-*", "quant-ph"], "Others": ["stat"]}


def run(tmp_path: Path, dump: Path, *extra: str, name: str = "papers") -> tuple[pl.DataFrame, list[dict], dict]:
    out, rej, summ = tmp_path / f"{name}.parquet", tmp_path / f"{name}.rejects.jsonl", tmp_path / f"{name}.summary.json"
    arxiv_dump.main(["--dump", str(dump), "--out", str(out), "--rejects", str(rej), "--fields",
                     json.dumps(FIELDS), "--unmapped-field", "null", "--summary", str(summ), "--workers", "1", *extra])
    return pl.read_parquet(out), [json.loads(x) for x in rej.read_text().splitlines()], json.loads(summ.read_text())


def line(**kw) -> bytes:
    obj = {"id": "2301.00001", "submitter": "S", "authors": "A. One, B. Two", "title": "T", "comments": None,
           "journal-ref": None, "doi": None, "report-no": None, "categories": "cs.LG", "license": None,
           "abstract": "An abstract.", "versions": [{"version": "v1", "created": "Sun, 1 Jan 2023 10:00:00 GMT"}],
           "update_date": "2023-01-02", "authors_parsed": [["One", "A.", ""], ["Two", "B.", ""]]}
    obj.update(kw)
    return (json.dumps(obj) + "\n").encode()


def test_native_fixture(tmp_path):
    df, rejects, summary = run(tmp_path, DUMP)
    assert df.schema == pl.Schema(PAPER_SCHEMA)
    assert df["arxiv_id"].to_list() == ["0704.0001", "0704.0002", "cs/0112017"]
    first = df.row(0, named=True)
    assert first["authors"] == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]  # from authors_parsed
    assert first["title"] == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert (first["published"], first["updated"]) == (dt.date(2007, 4, 2), dt.date(2008, 11, 13))  # v1 created
    assert (first["field"], first["doi"], first["source"]) == ("Physics", "10.1103/PhysRevD.76.013009", "dump")

    # 0704.0002 appears twice (once as 0704.0002v1 with older metadata): one row, the latest update kept
    second = df.row(1, named=True)
    assert second["title"] == "Sparsity-certifying Graph Decompositions" and second["updated"] == dt.date(2008, 12, 13)
    assert second["authors"] == ["Ileana Streinu", "Louis Theran"]  # empty authors_parsed: the authors string
    assert second["categories"] == ["math.CO", "cs.CG"] and second["field"] == "Math"

    assert [(r["record"], r["reason"]) for r in rejects] == [("line 5: 0704.0006", "missing abstract")]
    assert summary == {"source": "dump", "file": str(DUMP), "records": 5, "papers": 3, "duplicates": 1,
                       "duplicates_conflicting": 1, "rejected": 1, "rejects": {"missing abstract": 1}, "bad_files": [],
                       "papers_lost": 0, "papers_lost_estimated": False, "lost_fraction": 0.0}


def test_bad_lines_go_to_rejects_with_line_numbers(tmp_path):
    dump = tmp_path / "dump.json"
    good = line(id="2301.00001")
    dump.write_bytes(
        good
        + line(id="2301.00002", title="Caf\u00e9").replace(b"Caf\\u00e9", b"Caf\xe9")  # latin-1 byte, not UTF-8
        + b"\n"  # blank lines are skipped, not rejected
        + line(id="2301.00003", abstract=None)
        + line(id="2301.00004", versions=[{"version": "v1", "created": "Someday"}])
        + line(id="not-an-id")
        + line(id="2301.00006", categories="zz.XX")  # matches no field and --unmapped-field is null
        + line(id="2301.00007", versions="v1")  # wrong JSON type
        + b"[1, 2]\n"
        + line(id="2301.00009")[:40]  # truncated last line, no newline
    )
    df, rejects, summary = run(tmp_path, dump)
    assert df["arxiv_id"].to_list() == ["2301.00001"]
    got = {r["record"]: r["reason"].split(":")[0] for r in rejects}
    assert got == {
        "2": "not UTF-8",
        "line 4: 2301.00003": "missing abstract",
        "line 5: 2301.00004": "unparseable v1 created date",
        "line 6: not-an-id": "bad arXiv identifier",
        "line 7: 2301.00006": "unmapped primary category",
        "line 8: 2301.00007": "malformed record",
        "9": "not a JSON object",
        "10": "invalid JSON",
    }
    assert summary["rejected"] == 8 and summary["records"] == 9 and sum(summary["rejects"].values()) == 8
    assert all(r["file"] == str(dump) and r["raw"] for r in rejects)

    # an unmapped category is kept when config names a field for it (as JSON, the way rules pass it, or bare)
    for value in ('"Others"', "Others"):
        arxiv_dump.main(["--dump", str(dump), "--out", str(tmp_path / "o.parquet"), "--rejects",
                         str(tmp_path / "o.jsonl"), "--fields", json.dumps(FIELDS), "--unmapped-field", value])
        out = pl.read_parquet(tmp_path / "o.parquet").filter(pl.col("arxiv_id") == "2301.00006")
        assert out["field"].to_list() == ["Others"]


def test_versions_and_repeats_dedupe_to_latest(tmp_path):
    dump = tmp_path / "dump.json"
    dump.write_bytes(
        line(id="2301.00001v1", title="Old", update_date="2023-01-02")
        + line(id="2301.00001v3", title="Newest", update_date="2023-03-01")
        + line(id="2301.00001", title="Middle", update_date="2023-02-01")
        + line(id="2301.00002", title="Only")
        + line(id="2301.00003", title="First", update_date="2023-01-05")
        + line(id="2301.00003", title="Read later", update_date="2023-01-05")  # a tie: the line read later wins
        + line(id="2301.00004", title="Repeat") * 2
    )
    df, _, summary = run(tmp_path, dump)
    assert df.select("arxiv_id", "title").rows() == [
        ("2301.00001", "Newest"), ("2301.00002", "Only"), ("2301.00003", "Read later"), ("2301.00004", "Repeat"),
    ]
    assert (summary["duplicates"], summary["duplicates_conflicting"]) == (4, 3)  # an exact repeat is no conflict


def test_gzip_chunks_and_workers_give_identical_output(tmp_path):
    extra = [line(id=f"2302.{i:05d}", update_date=f"2023-02-{i % 28 + 1:02d}") for i in range(1, 40)]
    raw = DUMP.read_bytes() + b"".join(extra)
    plain, gz = tmp_path / "dump.json", tmp_path / "dump.json.gz"
    plain.write_bytes(raw)
    gz.write_bytes(gzip.compress(raw))
    ref, ref_rejects, _ = run(tmp_path, plain, name="ref")
    _, gz_rejects, _ = run(tmp_path, gz, name="gz")
    _, _, summary = run(tmp_path, plain, "--chunk-lines", "7", "--workers", "2", name="par")
    assert ref.height == 42
    assert (tmp_path / "gz.parquet").read_bytes() == (tmp_path / "ref.parquet").read_bytes()
    assert (tmp_path / "par.parquet").read_bytes() == (tmp_path / "ref.parquet").read_bytes()
    assert [r["record"] for r in gz_rejects] == [r["record"] for r in ref_rejects] == ["line 5: 0704.0006"]
    assert summary["rejected"] == 1


GZ_CUT = "cut"  # the gzip of a few good lines, cut short


@pytest.mark.parametrize("kind,body", [
    ("empty", b""),
    ("empty", b"\n  \n"),
    ("html", b"<!DOCTYPE html><html><head><title>Kaggle - Sign in</title></head><body></body></html>"),
    ("malformed", GZ_CUT),
])
def test_bad_dump_file_fails_even_quarantined(tmp_path, kind, body):
    dump = tmp_path / "dump.json"
    dump.write_bytes(gzip.compress(line(id="2301.00001") * 3000)[:200] if body == GZ_CUT else body)
    for extra in ((), ("--quarantine-bad-files", "--max-lost-fraction", "1")):  # what the dump held cannot be counted
        with pytest.raises(BadFileError, match=rf"{dump} \({kind}:"):
            run(tmp_path, dump, *extra)
    assert not (tmp_path / "papers.parquet").exists()

    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.sources.arxiv_dump", "--dump", str(dump), "--out",
                           str(tmp_path / "p.parquet"), "--rejects", str(tmp_path / "r.jsonl"), "--fields",
                           json.dumps(FIELDS), "--unmapped-field", "null"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"dump data quality: 1 reject(s) by reason {{'bad file ({kind})': 1}}; 1 bad file(s): {dump} ({kind}); " \
           "an unknown number of papers lost to them" in proc.stderr


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        run(tmp_path, tmp_path / "nope.json")


def test_cli_help():
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.sources.arxiv_dump", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--chunk-lines" in proc.stdout
