"""What the three arXiv readers (oai_pmh, arxiv_dump, arxiv_api) share: output arguments, strict XML loading under the
bad-file policy (bad_input.py), and writing the deduplicated paper table + rejects + summary."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Iterable

import polars as pl
from lxml import etree

from workflow_scripts.common.cli import json_arg
from workflow_scripts.common.io import write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.bad_input import BadInput, add_bad_input_args, read_native, sniff
from workflow_scripts.sources.duplicates import latest_papers
from workflow_scripts.sources.errors import BadFileError, RecordError, UnusableFile
from workflow_scripts.sources.records import FieldMapper, parse_date, records_frame

log = logging.getLogger(__name__)


def field_name(text: str) -> str | None:
    """argparse type for ``--unmapped-field``: JSON (null or "Others", as rules pass config values) or a bare name."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text or None
    if value is not None and not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected a field name or null, got {text!r}")
    return value


def add_table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="papers parquet (PAPER_SCHEMA)")
    p.add_argument("--rejects", required=True, type=Path, help="rejected records, JSON lines (file, record, reason)")
    p.add_argument("--fields", required=True, type=json_arg, help="JSON: field -> list of archive globs")
    p.add_argument("--unmapped-field", required=True, type=field_name,
                   help="field of unmatched categories, or null (JSON or bare name)")
    p.add_argument("--summary", type=Path, help="JSON file with counts")
    add_bad_input_args(p)


def field_mapper(args: argparse.Namespace) -> FieldMapper:
    return FieldMapper(args.fields, args.unmapped_field)


XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)


def load_xml(path: Path, bad: BadInput, root_tag: str):
    """Strictly parse one XML file whose root must be ``root_tag``; None (and a bad-file reject) when it is unusable."""
    data = b""
    try:
        data = read_native(path)
        sniff(data)
        try:
            # from bytes, not from the path: lxml reports bad encoding bytes in a file as OSError, in bytes as syntax
            root = etree.fromstring(data, XML_PARSER)
        except etree.XMLSyntaxError as exc:
            raise UnusableFile("malformed", f"not well-formed XML (truncated?): {exc}") from None
        if etree.QName(root).localname.lower() == "html":
            raise UnusableFile("html", "an XHTML page, not a response of the source")
        if root.tag != root_tag:
            raise UnusableFile("wrong source", f"root element is {root.tag}, expected {root_tag}")
    except UnusableFile as problem:
        bad.add(path, problem, raw=data[:500])
        return None
    return root


XML_SUFFIXES = (".xml", ".xml.gz")


def list_pages(dirs: Iterable[Path], suffixes: tuple[str, ...] = XML_SUFFIXES) -> list[Path]:
    """Every file named *.xml or *.xml.gz anywhere under the given dirs, whatever the rest of its name (our harvests
    write page-NNNNN.xml, other tools other names), sorted per dir so that the order (and dedupe ties) is fixed.
    Hidden files are skipped: atomic writes keep their temporary files hidden."""
    out: list[Path] = []
    for d in dirs:
        if not Path(d).is_dir():
            raise BadFileError(f"{d}: not a directory")
        found = (p for p in Path(d).rglob("*") if p.name.endswith(suffixes) and p.is_file())
        out.extend(sorted(p for p in found if not p.name.startswith(".")))
    return out


def date_of(value: str | None, what: str):
    """parse_date, with the field named in the error (the rejects count key is the text before ':')."""
    try:
        return parse_date(value)
    except RecordError:
        raise RecordError(f"unparseable {what} date: {value!r}") from None


def lost_to_bad_pages(bad_pages: int, largest_page: int) -> int | None:
    """Records lost with the bad pages, estimated as the largest readable page each; None when no page was readable."""
    if not bad_pages:
        return 0
    return bad_pages * largest_page if largest_page else None


def write_table(frames: list[pl.DataFrame], bad: BadInput, args: argparse.Namespace, summary: dict,
                lost: int | None = 0, estimated: bool = True) -> tuple[pl.DataFrame, dict]:
    """Concat, resolve duplicates (one rule, see duplicates.py), and write parquet + rejects + summary unless the
    bad-file policy stops the step; the log ends with the data-quality summary."""
    df = pl.concat(frames, how="vertical") if frames else records_frame([])
    df, duplicates = latest_papers(df)
    rejects = bad.rejects
    expected = summary["records"] + (lost or 0)
    summary = {**summary, "papers": df.height, **duplicates.summary(), "rejected": len(rejects),
               "rejects": rejects.counts(), **bad.summary(lost, expected, estimated)}

    def write_outputs():
        write_parquet_atomic(df, args.out)
        rejects.write(args.rejects)
        log.info("%s: %d papers written to %s", summary["source"], df.height, args.out)
        if args.summary:
            write_json_atomic(args.summary, summary)

    bad.conclude(summary["source"], summary, write_outputs)
    return df, summary


def remove_stale_temp_files(out_dir: Path) -> None:
    # a SIGKILL inside an atomic write leaves its hidden temp file behind; nothing reads them, so just tidy up
    for tmp in out_dir.glob(".*.tmp"):
        tmp.unlink()


def xml_text(el, path: str, ns: dict) -> str | None:
    found = el.find(path, ns)
    return found.text if found is not None else None
