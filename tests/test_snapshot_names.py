"""Snapshot readers take native files whatever their names (harvests made by other tools), and an OAI-PMH file of a
verb that holds no records is a bad file with that reason, never a silent zero."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.test_arxiv_api import entry, feed
from tests.test_arxiv_api import parse as parse_feeds
from tests.test_citations import parse as parse_citations
from tests.test_citations import s2_record, write_papers
from tests.test_oai_pmh import parse_dirs, record_xml
from workflow_scripts.sources import oai_pmh


def oai_response(verb: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">'
        f'<responseDate>2024-02-01T00:00:00Z</responseDate><request verb="{verb}">http://x/oai</request>'
        f"<{verb}>{body}</{verb}></OAI-PMH>"
    )


def test_oai_pmh_reads_list_records_and_get_record_files_of_any_name(tmp_path):
    snap = tmp_path / "metha-harvest"
    (snap / "2024" / "cs").mkdir(parents=True)
    # metha-style gzipped pages, a flat name of another tool, and one GetRecord answer holding one record
    (snap / "2024" / "cs" / "2024-02-01-00000000.xml.gz").write_bytes(
        gzip.compress(oai_response("ListRecords", record_xml("2401.00001") + record_xml("2401.00002")).encode()))
    (snap / "listrecords_cs_2.xml").write_text(oai_response("ListRecords", record_xml("2401.00003")))
    (snap / "GetRecord-2401.00004.xml").write_text(oai_response("GetRecord", record_xml("2401.00004")))
    (snap / "notes.txt").write_text("not a response: ignored by its name")
    (snap / ".page-00009.xml.tmp").write_text("an unfinished atomic write: hidden, ignored")

    df, rejects, summary = parse_dirs(tmp_path, snap)
    assert sorted(df["arxiv_id"]) == ["2401.00001", "2401.00002", "2401.00003", "2401.00004"]
    assert (summary["pages"], summary["records"], rejects) == (3, 4, [])


@pytest.mark.parametrize("verb, body", [
    ("Identify", "<repositoryName>arXiv</repositoryName>"),
    ("ListIdentifiers", "<header><identifier>oai:arXiv.org:2401.00005</identifier></header>"),
    ("ListSets", "<set><setSpec>cs</setSpec><setName>Computer Science</setName></set>"),
])
def test_an_oai_pmh_file_of_another_verb_is_a_bad_file_with_its_reason(tmp_path, verb, body):
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "page-00001.xml").write_text(oai_response("ListRecords", record_xml("2401.00001")))
    other = snap / f"{verb}.xml"
    other.write_text(oai_response(verb, body))
    with pytest.raises(oai_pmh.BadFileError, match=rf"{verb}.xml \(no records: an OAI-PMH {verb} response: only "
                                                   "ListRecords and GetRecord responses hold records"):
        parse_dirs(tmp_path, snap)
    df, rejects, summary = parse_dirs(tmp_path, snap, extra=("--quarantine-bad-files", "--max-lost-fraction", "1"))
    assert df["arxiv_id"].to_list() == ["2401.00001"]
    assert [(r["file"], r["reason"].split(":")[0]) for r in rejects] == [(str(other), "bad file (no records)")]


def test_a_truncated_gzip_page_is_a_bad_file(tmp_path):
    snap = tmp_path / "snap"
    snap.mkdir()
    data = gzip.compress(oai_response("ListRecords", record_xml("2401.00001")).encode())
    (snap / "part-1.xml.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(oai_pmh.BadFileError, match=r"part-1.xml.gz \(malformed: not a complete gzip file"):
        parse_dirs(tmp_path, snap)


def test_arxiv_api_feeds_of_any_name(tmp_path):
    feeds = tmp_path / "feeds"
    (feeds / "by-month").mkdir(parents=True)
    (feeds / "query_results.xml").write_text(feed([entry(1), entry(2)], 3, 0))
    (feeds / "by-month" / "2025-01.atom.xml.gz").write_bytes(gzip.compress(feed([entry(3)], 3, 2).encode()))
    df, rejects, summary = parse_feeds(tmp_path, feeds)
    assert sorted(df["arxiv_id"]) == ["2501.00001", "2501.00002", "2501.00003"]
    assert (summary["pages"], rejects) == (2, [])


def test_citation_responses_of_any_name_and_depth(tmp_path):
    papers = write_papers(tmp_path / "papers.parquet", ["2101.00001", "2101.00002", "2101.00003"])
    raw = tmp_path / "s2-export"
    (raw / "2025" / "12").mkdir(parents=True)
    (raw / "response.json").write_text(json.dumps([s2_record("2101.00001", 5)]))
    (raw / "2025" / "12" / "chunk_7.json.gz").write_bytes(
        gzip.compress(json.dumps([s2_record("2101.00002", 6), s2_record("2101.00003", 7)]).encode()))
    frame, report, rejects = parse_citations(tmp_path, "semantic_scholar", raw, papers)
    assert frame.select("arxiv_id", "citation_count").rows() == [("2101.00001", 5), ("2101.00002", 6), ("2101.00003", 7)]
    assert (report["files_read"], report["without_count"], rejects) == (2, 0, [])
