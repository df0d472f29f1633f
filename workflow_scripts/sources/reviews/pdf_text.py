"""PDF to text: a directory of PDFs (OpenReview submissions, named ``<paper_id>.pdf``) -> ``{heading, text}``
sections per paper, the shape of PeerRead's parsed PDFs, in one parquet file.

    python -m workflow_scripts.sources.reviews.pdf_text --pdfs DIR --out text.parquet --rejects R.jsonl \
        --summary S.json [--drop-lines JSON] [--min-chars 500] [--workers 4]

The library is pypdf: pure Python (no native library to build or ship, so it installs from PyPI on any machine, in
CI and in conda envs alike), maintained, and it says when a file is encrypted instead of returning nothing, so an
encrypted PDF becomes a reject with that reason. pdfplumber and pypdfium2 wrap native code (PDFium) for layout
detail this step does not need: the sections come from the text lines themselves.

Per page: the text lines, without the lines matching ``--drop-lines`` (venue headers such as "Under review as a
conference paper at ICLR 2020" or "Published as ...", which would leak the decision), the page number closing the
page, and margin line numbers (text.py). Then the lines are cut into sections at heading lines ("3.1 Method",
"2 RELATED WORK", "Abstract", "References", "A Proofs"), and wrapped lines are joined into paragraphs. Front matter
before "Abstract" (title and authors: the table has them) and the reference list are left out, as in PeerRead's
``sections``. A PDF that is empty, not a PDF, encrypted with a password, unreadable, or holds less than
``--min-chars`` characters of text (a scan without a text layer) is a bad file: a rejects row with the reason, under
the shared bad-file policy (bad_input.py).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import polars as pl
import pypdf

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.bad_input import BadInput, add_bad_input_args, sniff
from workflow_scripts.sources.errors import BadFileError, UnusableFile, run_main
from workflow_scripts.sources.reviews.tables import SECTION
from workflow_scripts.sources.reviews.text import compile_patterns, drop_matching, strip_margin_numbers, unwrap

log = logging.getLogger(__name__)

PDF_TEXT_SCHEMA = {
    "paper_id": pl.String,
    "sha256": pl.String,
    "pages": pl.Int32,
    "chars": pl.Int64,
    "sections": pl.List(SECTION),
}
DEFAULT_MIN_CHARS = 500
_NUMBERED = re.compile(r"^(?P<num>\d{1,2}(?:\.\d{1,2}){0,3}|[A-H](?:\.\d{1,2}){0,3})\.?\s+(?P<title>\S.*)$")
_NAMED = {"abstract", "introduction", "references", "bibliography", "acknowledgments", "acknowledgements",
          "acknowledgment", "acknowledgement", "appendix", "conclusion", "conclusions", "related work"}
_REFERENCES = {"references", "bibliography"}
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "via", "with",
                "vs", "vs."}
MAX_HEADING_WORDS = 12
MAX_HEADING_CHARS = 90


@dataclass
class PdfText:
    sections: list[dict]
    pages: int
    chars: int


def heading(line: str) -> str | None:
    """The line itself when it looks like a section heading, else None.

    A heading is a known name ("Abstract", "References", ...) alone on its line, or a section number ("3", "3.1",
    appendix "A.2") followed by a short title in Title Case or capitals, without closing punctuation; wrapped body
    lines that start with a number ("3 steps. The ...") are not in Title Case.
    """
    text = " ".join(line.split())
    if text.lower().rstrip(".:") in _NAMED:
        return text.rstrip(".:")
    m = _NUMBERED.match(text)
    if not m or len(text) > MAX_HEADING_CHARS:
        return None
    words = m.group("title").split()
    if len(words) > MAX_HEADING_WORDS or words[-1][-1] in ".,;:" or not words[0][0].isupper():
        return None
    alphabetic = [w for w in words if any(c.isalpha() for c in w)]
    if not alphabetic or len(alphabetic) < len(words) / 2:
        return None
    capitalized = [w for w in alphabetic if w[0].isupper() or w.lower() in _SMALL_WORDS]
    return text if len(capitalized) == len(alphabetic) else None


def sections_of(lines: Sequence[str]) -> list[dict]:
    """Lines of a whole paper cut into ``{heading, text}`` sections (see the module docstring)."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in lines:
        title = heading(line)
        if title is None:
            blocks[-1][1].append(line)
        else:
            blocks.append((title, []))
    if any(h is not None and h.lower() == "abstract" for h, _ in blocks):
        blocks = blocks[1:]  # the title and author block before the abstract
    sections = []
    for title, body in blocks:
        if title is not None and title.lower() in _REFERENCES:
            continue
        text = unwrap(body)
        if text or title is not None:
            sections.append({"heading": title, "text": text})
    return sections


def check_pdf(data: bytes) -> None:
    """UnusableFile unless ``data`` looks like a PDF (empty, an HTML error page, no header)."""
    sniff(data)
    if b"%PDF-" not in data[:1024]:  # the header may follow some bytes of junk, within the first 1024
        raise UnusableFile("not a pdf", f"no %PDF- header; starts with {data.lstrip()[:20]!r}")


def pdf_pages(data: bytes) -> list[str]:
    """The text of each page of a PDF (pypdf); UnusableFile (kind: empty, not a pdf, encrypted, malformed)
    otherwise."""
    check_pdf(data)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnusableFile("encrypted", "the PDF needs a password to be read")
        return [page.extract_text() or "" for page in reader.pages]
    except UnusableFile:
        raise
    except Exception as exc:  # pypdf raises many types on broken files; each such file is one reject, not a crash
        raise UnusableFile("malformed", f"pypdf cannot read it: {type(exc).__name__}: {exc}") from None


def extract(data: bytes, drop: Sequence[re.Pattern], min_chars: int = DEFAULT_MIN_CHARS) -> PdfText:
    """The sections of one PDF; UnusableFile (kind: empty, not a pdf, encrypted, malformed, no text) otherwise."""
    pages = pdf_pages(data)
    lines: list[str] = []
    for text in pages:
        page_lines = drop_matching(text.split("\n"), drop)
        while page_lines and not page_lines[-1].strip():
            page_lines.pop()
        if page_lines and page_lines[-1].strip().isdigit():  # the page number
            page_lines.pop()
        lines.extend(strip_margin_numbers(page_lines))
    sections = sections_of(lines)
    chars = sum(len(s["text"]) for s in sections)
    if chars < min_chars:
        raise UnusableFile("no text", f"{chars} characters of text in {len(pages)} page(s) (fewer than {min_chars}: "
                                      "a scan without a text layer?)")
    return PdfText(sections, len(pages), chars)


def _extract_file(job: tuple[str, list[str], int]) -> dict:
    """Worker: one PDF file -> a row, or the reason it is unusable (returned, not raised: it crosses processes)."""
    path, patterns, min_chars = job
    data = Path(path).read_bytes()
    row = {"paper_id": Path(path).stem, "sha256": hashlib.sha256(data).hexdigest()}
    try:
        found = extract(data, compile_patterns(patterns), min_chars)
    except UnusableFile as problem:
        return {**row, "problem": (problem.kind, problem.detail)}
    return {**row, "pages": found.pages, "chars": found.chars, "sections": found.sections}


def extract_dir(pdf_dir: Path, patterns: list[str], min_chars: int, workers: int, bad: BadInput) -> tuple[pl.DataFrame, dict]:
    if not pdf_dir.is_dir():
        raise BadFileError(f"{pdf_dir}: no such directory of PDFs")
    paths = sorted(p for p in pdf_dir.glob("*.pdf") if not p.name.startswith("."))
    jobs = [(str(p), patterns, min_chars) for p in paths]
    if workers > 1 and len(jobs) > 1:
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_extract_file, jobs, chunksize=4))
    else:
        results = [_extract_file(job) for job in jobs]
    rows = []
    for path, result in zip(paths, results):
        if "problem" in result:
            bad.add(path, UnusableFile(*result["problem"]))
        else:
            rows.append(result)
    frame = pl.DataFrame(rows, schema=PDF_TEXT_SCHEMA, orient="row").sort("paper_id")
    summary = {"pdfs": len(paths), "with_text": frame.height, "pages": int(frame["pages"].sum() or 0),
               "chars": int(frame["chars"].sum() or 0)}
    return frame, summary


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--pdfs", required=True, type=Path, help="directory of <paper_id>.pdf files")
    p.add_argument("--out", required=True, type=Path, help="parquet: paper_id, sha256, pages, chars, sections")
    p.add_argument("--rejects", required=True, type=Path)
    p.add_argument("--summary", required=True, type=Path)
    p.add_argument("--drop-lines", type=json_arg, default=[], help="JSON list of regular expressions of lines to drop")
    p.add_argument("--min-chars", type=int, default=DEFAULT_MIN_CHARS, help="less text than this: a bad file")
    p.add_argument("--workers", type=int, default=1, help="processes extracting in parallel")
    add_bad_input_args(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings on odd files: every unusable one is a reject
    compile_patterns(args.drop_lines)  # a bad pattern fails here, not in a worker
    bad = BadInput.from_args(args, Rejects())
    frame, counts = extract_dir(args.pdfs, args.drop_lines, args.min_chars, args.workers, bad)
    summary = {"source": "pdf_text", **counts, "rejected": len(bad.rejects), "rejects": bad.rejects.counts(),
               **bad.summary(len(bad), counts["pdfs"])}

    def write_outputs() -> None:
        write_parquet_atomic(frame, args.out)
        bad.rejects.write(args.rejects)
        write_json_atomic(args.summary, summary)
        log.info("pdf_text: %d of %d PDF(s) with text (%d pages) -> %s", frame.height, counts["pdfs"],
                 counts["pages"], args.out)

    bad.conclude("pdf_text", summary, write_outputs)


if __name__ == "__main__":
    run_main(main)
