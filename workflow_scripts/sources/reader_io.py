"""What the three arXiv readers (oai_pmh, arxiv_dump, arxiv_api) share: output arguments, strict XML loading with the
malformed-file policy, and writing the deduped paper table + rejects + summary."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Iterable

import polars as pl
from lxml import etree

from workflow_scripts.common.cli import json_arg
from workflow_scripts.common.io import Rejects, write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.http import HarvestError
from workflow_scripts.sources.records import FieldMapper, RecordError, dedupe_latest, parse_date, records_frame

log = logging.getLogger(__name__)




class BadFileError(ValueError):
    """A whole input file that cannot be read; the message names the file."""


def field_name(text: str) -> str | None:
    """argparse type for ``--unmapped-field``: JSON (null or "Others", as rules pass config values) or a bare name."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text or None
    if value is not None and not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected a field name or null, got {text!r}")
    return value


def add_table_args(p: argparse.ArgumentParser, xml: bool = True) -> None:
    p.add_argument("--out", required=True, type=Path, help="papers parquet (PAPER_SCHEMA)")
    p.add_argument("--rejects", required=True, type=Path, help="rejected records, JSON lines (file, record, reason)")
    p.add_argument("--fields", required=True, type=json_arg, help="JSON: field -> list of archive globs")
    p.add_argument("--unmapped-field", required=True, type=field_name,
                   help="field of unmatched categories, or null (JSON or bare name)")
    p.add_argument("--summary", type=Path, help="JSON file with counts")
    if xml:
        p.add_argument(
            "--quarantine-bad-files",
            action="store_true",
            help="a file that is not well-formed XML becomes one rejects row ('malformed file') instead of an error",
        )


def field_mapper(args: argparse.Namespace) -> FieldMapper:
    return FieldMapper(args.fields, args.unmapped_field)


XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=False)


def bad_file(path: Path, problem: str, rejects: Rejects, quarantine: bool) -> None:
    """A file that cannot be used at all: BadFileError naming it, or (quarantine) one 'malformed file' rejects row."""
    if not quarantine:
        raise BadFileError(f"{path}: {problem}")
    log.error("%s: %s; quarantined (--quarantine-bad-files)", path, problem)
    rejects.add(path, "*", f"malformed file: {problem}")


def load_xml(path: Path, rejects: Rejects, quarantine: bool, root_tag: str):
    """Strictly parse one XML file whose root must be ``root_tag``; None when it was quarantined."""
    try:
        # from bytes, not from the path: lxml reports bad encoding bytes in a file as OSError, in bytes as syntax
        root = etree.fromstring(Path(path).read_bytes(), XML_PARSER)
    except etree.XMLSyntaxError as exc:
        return bad_file(path, f"malformed XML: {exc}", rejects, quarantine)
    if root.tag != root_tag:
        return bad_file(path, f"root element is {root.tag}, expected {root_tag}", rejects, quarantine)
    return root


def list_pages(dirs: Iterable[Path]) -> list[Path]:
    """page-*.xml anywhere under the given dirs, sorted per dir so that the order (and dedupe ties) is fixed."""
    out: list[Path] = []
    for d in dirs:
        if not Path(d).is_dir():
            raise BadFileError(f"{d}: not a directory")
        out.extend(sorted(Path(d).rglob("page-*.xml")))
    return out


def date_of(value: str | None, what: str):
    """parse_date, with the field named in the error (the rejects count key is the text before ':')."""
    try:
        return parse_date(value)
    except RecordError:
        raise RecordError(f"unparseable {what} date: {value!r}") from None


def write_table(
    frames: list[pl.DataFrame], rejects: Rejects, args: argparse.Namespace, summary: dict
) -> tuple[pl.DataFrame, dict]:
    """Concat, dedupe (latest update wins), sort, write parquet + rejects + summary; log the counts."""
    df = pl.concat(frames, how="vertical") if frames else records_frame([])
    df, duplicates = dedupe_latest(df)
    df = df.sort("arxiv_id")
    write_parquet_atomic(df, args.out)
    rejects.write(args.rejects)
    summary = {**summary, "papers": df.height, "duplicates": duplicates, "rejected": len(rejects),
               "rejects": rejects.counts()}
    log.info(
        "%s: %d papers written to %s; %d duplicate row(s) dropped (older versions or repeats); %d rejected",
        summary.get("source"),
        df.height,
        args.out,
        duplicates,
        len(rejects),
    )
    if args.summary:
        write_json_atomic(args.summary, summary)
    return df, summary


def remove_stale_temp_files(out_dir: Path) -> None:
    # a SIGKILL inside an atomic write leaves its hidden temp file behind; nothing reads them, so just tidy up
    for tmp in out_dir.glob(".*.tmp"):
        tmp.unlink()


def run_main(main) -> None:
    """Known failures end with one clear line (file or URL named) and exit status 1, not a traceback."""
    try:
        main()
    except (BadFileError, HarvestError) as exc:
        log.error("%s", exc)
        sys.exit(1)


def xml_text(el, path: str, ns: dict) -> str | None:
    found = el.find(path, ns)
    return found.text if found is not None else None
