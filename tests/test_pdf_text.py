"""PDF to text on PDFs made here with fpdf2 (the demo's writer): sections, venue headers and page numbers out,
margin line numbers out, and every unusable PDF a reject with its reason."""

from __future__ import annotations

import json

import polars as pl
import pytest
from fpdf import FPDF

from workflow_scripts.common.config import schema_defaults
from workflow_scripts.demo.reviews import World, render_pdf
from workflow_scripts.sources.errors import BadFileError, RecordError, UnusableFile
from workflow_scripts.sources.reviews import pdf_text
from workflow_scripts.sources.reviews.text import compile_patterns, score, strip_margin_numbers, unwrap

DROP_LINES = schema_defaults()["reviewer"]["pdf_text"]["drop_lines"]
HEADINGS = ["Abstract", "1 INTRODUCTION", "2 RELATED WORK", "3 METHOD", "3.1 Training Objective", "4 EXPERIMENTS",
            "5 CONCLUSION"]


@pytest.fixture(scope="module")
def paper():
    return World(3, "pdf-text-test").paper("iclr_2020", 2020, "note1")


def pdf_of(paper, header="Under review as a conference paper at ICLR 2020", authors=("Anonymous authors",), **kw):
    return render_pdf(paper, header, list(authors), **kw)


def kind_of(data: bytes) -> str:
    with pytest.raises(UnusableFile) as err:
        pdf_text.extract(data, compile_patterns(DROP_LINES))
    return err.value.kind


def test_sections_as_in_peerread_without_front_matter_headers_page_numbers_or_references(paper):
    found = pdf_text.extract(pdf_of(paper), compile_patterns(DROP_LINES))
    assert found.pages >= 2
    assert [s["heading"] for s in found.sections] == HEADINGS
    text = "\n".join(s["text"] for s in found.sections)
    assert "conference paper at ICLR" not in text and "Anonymous authors" not in text
    assert "An earlier paper" not in text  # the reference list
    assert found.sections[0]["text"].startswith(paper.abstract[:60])
    # wrapped lines joined back: every body sentence of the paper comes out whole
    for heading, body in paper.sections:
        sentence = body.split(". ")[1]
        assert sentence in text, (heading, sentence)
    assert not any(line.strip().isdigit() for line in text.splitlines())  # page numbers


def test_a_camera_ready_header_and_author_block_do_not_leak_the_decision(paper):
    data = pdf_of(paper, "Published as a conference paper at ICLR 2019", authors=("Jane Smith", "Wei Zhang"))
    text = " ".join(s["text"] for s in pdf_text.extract(data, compile_patterns(DROP_LINES)).sections)
    assert "Published as" not in text and "Jane Smith" not in text


def test_unusable_pdfs_say_why(paper):
    good = pdf_of(paper)
    assert kind_of(b"") == "empty"
    assert kind_of(b"<!DOCTYPE html><html><title>Challenge</title></html>") == "html"
    assert kind_of(b'{"name": "NotFoundError"}') == "not a pdf"
    assert kind_of(good[: len(good) // 2]) == "malformed"
    assert kind_of(pdf_of(paper, password="secret")) == "encrypted"
    blank = FPDF()
    blank.add_page()
    assert kind_of(bytes(blank.output())) == "no text"


def test_a_pdf_encrypted_only_against_editing_is_read(paper):
    # many real PDFs carry an owner password and an empty user password: readable by anyone
    found = pdf_text.extract(render_pdf(paper, "x", ["y"], password=""), compile_patterns(DROP_LINES))
    assert [s["heading"] for s in found.sections] == HEADINGS


@pytest.mark.parametrize("line, is_heading", [
    ("1 INTRODUCTION", True), ("3.1 Data Collection", True), ("A Proofs of the Main Theorem", True),
    ("Abstract", True), ("REFERENCES", True), ("Acknowledgments.", True),
    ("3 steps. The model uses a gate", False), ("0.5 and converges in three steps", False), ("12 0.5 0.3", False),
    ("1 000", False), ("A gate is used to filter the noise", False), ("2 Results of the method are shown in", False),
])
def test_heading_lines(line, is_heading):
    assert (pdf_text.heading(line) is not None) == is_heading


def test_margin_line_numbers_and_wrapped_lines():
    lines = ["1 000", *(f"{k:03d}" for k in range(11, 50)), "The ability to capture time is essential. It is tempo-",
             "2", *(f"{k:03d}" for k in range(101, 150)), "ral in nature.", "A table: 101", "102"]
    assert strip_margin_numbers(lines) == [
        "The ability to capture time is essential. It is temporal in nature.", "A table: 101", "102"]
    assert unwrap(["A line that runs across the whole column of the page", "and goes on here as well until the",
                   "end.", "A new paragraph starts and runs across the column", "to its end."]) == (
        "A line that runs across the whole column of the page and goes on here as well until the end.\n"
        "A new paragraph starts and runs across the column to its end.")


@pytest.mark.parametrize("value, expected", [
    (4, 4.0), ("4", 4.0), ("6: Marginally above acceptance threshold", 6.0), ("", None), (None, None), (2.5, 2.5),
])
def test_scores_as_numbers(value, expected):
    assert score(value, "RECOMMENDATION") == expected


@pytest.mark.parametrize("value", ["strong accept", True, float("nan"), [4]])
def test_a_score_that_is_no_number_names_the_score(value):
    with pytest.raises(RecordError, match="bad score: RECOMMENDATION"):
        score(value, "RECOMMENDATION")


def test_step_writes_text_and_rejects_each_bad_pdf_with_its_reason(paper, tmp_path):
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    (pdfs / "good1.pdf").write_bytes(pdf_of(paper))
    (pdfs / "good2.pdf").write_bytes(pdf_of(paper, "Published as a conference paper at ICLR 2021"))
    (pdfs / "locked.pdf").write_bytes(pdf_of(paper, password="secret"))
    (pdfs / "empty.pdf").write_bytes(b"")
    out = tmp_path / "text.parquet"
    args = ["--pdfs", str(pdfs), "--out", str(out), "--rejects", str(tmp_path / "rejects.jsonl"),
            "--summary", str(tmp_path / "summary.json"), "--drop-lines", json.dumps(DROP_LINES), "--workers", "2",
            "--quarantine-bad-files", "--max-lost-fraction", "0.5"]
    pdf_text.main(args)
    frame = pl.read_parquet(out)
    assert frame["paper_id"].to_list() == ["good1", "good2"]
    assert frame["sections"].to_list()[0] == frame["sections"].to_list()[1]  # the header made no difference
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert {(r["file"].rsplit("/", 1)[1], r["reason"].split(":")[0]) for r in rejects} == {
        ("locked.pdf", "bad file (encrypted)"), ("empty.pdf", "bad file (empty)")}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["pdfs"] == 4 and summary["with_text"] == 2 and summary["papers_lost"] == 2
    # strict: the step fails naming both files, and writes nothing
    (tmp_path / "strict.parquet").unlink(missing_ok=True)
    strict = [a if a != str(out) else str(tmp_path / "strict.parquet") for a in args if a != "--quarantine-bad-files"]
    with pytest.raises(BadFileError, match="locked.pdf") as err:
        pdf_text.main(strict)
    assert "empty.pdf" in str(err.value) and not (tmp_path / "strict.parquet").exists()
