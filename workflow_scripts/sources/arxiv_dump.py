"""arXiv metadata dump (Kaggle ``arxiv-metadata-oai-snapshot.json``, JSON lines, optionally gzipped) -> paper table.

The dump is several GB, so it is streamed in binary line by line and turned into one polars frame per chunk of
lines; only the normalized columns are kept in memory. Every line that cannot be used (not UTF-8, not JSON, e.g. a
truncated last line, or a record that fails validation) becomes a rejects row with its line number.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import multiprocessing
import os
import zlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import IO, Iterator

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import Rejects
from workflow_scripts.sources.bad_input import BadInput, sniff
from workflow_scripts.sources.errors import RecordError, UnusableFile, run_main
from workflow_scripts.sources.reader_io import add_table_args, date_of, field_mapper, write_table
from workflow_scripts.sources.records import FieldMapper, make_record, records_frame

log = logging.getLogger(__name__)


def open_dump(path: Path) -> IO[bytes]:
    """Binary stream of the dump; gzip is recognized by its magic bytes, whatever the file is called."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _authors(obj: dict) -> list[str]:
    parsed = obj.get("authors_parsed")
    if parsed:
        out = []
        for a in parsed:  # [keyname, forenames, suffix, ...] -> "Forenames Keyname Suffix"
            if not isinstance(a, list):
                raise TypeError(f"authors_parsed entry is not a list: {a!r}")
            out.append(" ".join(p.strip() for p in (a[1:2] + a[:1] + a[2:3]) if p and p.strip()))
        return out
    text = obj.get("authors") or ""
    return [a for a in (s.strip() for s in text.replace(" and ", ",").split(",")) if a]


def _published(versions) -> str | None:
    if not versions:
        return None
    v1 = next((v for v in versions if v.get("version") == "v1"), versions[0])
    return v1.get("created")


def _str_or_none(obj: dict, key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"{key} is not a string: {type(value).__name__}")
    return value


def record_of(obj, field_of: FieldMapper) -> dict:
    """One decoded dump line -> normalized record (RecordError names the bad field)."""
    if not isinstance(obj, dict):
        raise RecordError(f"not a JSON object: {type(obj).__name__}")
    cats = obj.get("categories") or ""
    return make_record(
        raw_id=str(obj.get("id") or ""),
        title=_str_or_none(obj, "title"),
        abstract=_str_or_none(obj, "abstract"),
        authors=_authors(obj),
        categories=cats.split() if isinstance(cats, str) else [str(c) for c in cats],
        published=date_of(_published(obj.get("versions")), "v1 created"),
        updated=date_of(obj.get("update_date"), "update_date"),
        doi=_str_or_none(obj, "doi"),
        journal_ref=_str_or_none(obj, "journal-ref"),
        source="dump",
        field_of=field_of,
    )


def parse_chunk(
    path: str, first_lineno: int, lines: list[bytes], field_of: FieldMapper
) -> tuple[pl.DataFrame, list[dict]]:
    """Lines -> (frame, rejects rows). A top-level function so that worker processes can run it."""
    rejects = Rejects()
    rows = []
    for lineno, raw in enumerate(lines, first_lineno):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            rejects.add(path, lineno, f"not UTF-8: {exc}", raw=raw)
            continue
        except json.JSONDecodeError as exc:
            rejects.add(path, lineno, f"invalid JSON: {exc}", raw=raw)
            continue
        ident = obj.get("id") if isinstance(obj, dict) else None
        where = f"line {lineno}: {ident}" if ident else lineno
        try:
            rows.append(record_of(obj, field_of))
        except RecordError as exc:
            rejects.add(path, where, str(exc), raw=raw)
        except (TypeError, AttributeError) as exc:  # a value of an unexpected JSON type, e.g. versions as a string
            rejects.add(path, where, f"malformed record: {type(exc).__name__}: {exc}", raw=raw)
    return records_frame(rows), rejects.rows


def _chunks(path: Path, chunk_lines: int, bad: BadInput) -> Iterator[tuple[int, list[bytes]]]:
    """(first line number, lines) per chunk, read lazily in binary: the dump never sits in memory whole. A dump that
    is empty, an HTML page or a broken gzip stream is a bad file; a gzip stream cut short keeps the lines before."""
    first, lines = 1, []
    try:
        with open_dump(path) as fh:
            head = fh.read(4096)
            sniff(head)
            fh.seek(0)
            for raw in fh:
                lines.append(raw)
                if len(lines) == chunk_lines:
                    yield first, lines
                    first, lines = first + len(lines), []
    except UnusableFile as problem:
        bad.add(path, problem, raw=head[:500])
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        bad.add(path, UnusableFile("malformed", f"gzip stream broken after line {first + len(lines) - 1} "
                                                f"(truncated download?): {exc}"))
    if lines:
        yield first, lines


def _add_rejects(rejects: Rejects, rows: list[dict]) -> None:
    for r in rows:  # rows come back from a chunk (maybe from a worker process) in file order
        rejects.add(r["file"], r["record"], r["reason"], raw=r["raw"])


def default_workers() -> int:
    # the CPUs this process may use (a SLURM/cgroup allocation), not the machine's count
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def read_dump(
    path: Path, field_of: FieldMapper, bad: BadInput, chunk_lines: int = 200_000, workers: int = 1
) -> Iterator[pl.DataFrame]:
    """Yield one frame per chunk, in file order; bad lines go to the rejects with their 1-based line number, a bad
    file through ``bad``.

    With workers > 1 the chunks are parsed in worker processes (JSON decoding and validation are CPU-bound Python);
    at most workers + 1 chunks are in flight, which bounds memory.
    """
    name, rejects = str(path), bad.rejects
    chunks = _chunks(path, chunk_lines, bad)
    head = list(itertools.islice(chunks, 2))
    chunks = itertools.chain(head, chunks)
    if workers <= 1 or len(head) < 2:  # a single chunk is not worth starting worker processes for
        for first, lines in chunks:
            frame, bad = parse_chunk(name, first, lines, field_of)
            _add_rejects(rejects, bad)
            log.info("%s: %d lines read", path, first + len(lines) - 1)
            yield frame
        return
    # spawn, not fork: forking a process that has polars' thread pool running can deadlock the child
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque = deque()

        def take():
            fut, last = pending.popleft()
            frame, bad = fut.result()
            _add_rejects(rejects, bad)
            log.info("%s: %d lines read", path, last)
            return frame

        for first, lines in chunks:
            pending.append((pool.submit(parse_chunk, name, first, lines, field_of), first + len(lines) - 1))
            if len(pending) > workers:
                yield take()
        while pending:
            yield take()


def main(argv: list[str] | None = None) -> None:
    # one operation, so no subcommand: python -m workflow_scripts.sources.arxiv_dump --dump FILE --out ...
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dump", required=True, type=Path, help="arxiv-metadata-oai-snapshot.json (or .gz)")
    p.add_argument("--chunk-lines", type=int, default=200_000, help="lines per in-memory frame (and per worker task)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="worker processes; default: the CPUs this job may use, at most 8")
    add_table_args(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)

    bad = BadInput.from_args(args, Rejects())
    frames = list(read_dump(args.dump, field_mapper(args), bad, args.chunk_lines, args.workers))
    records = sum(f.height for f in frames) + len(bad.rejects) - len(bad)
    # the dump is one file: what a bad one held cannot be counted, so it fails the step even when quarantined
    write_table(frames, bad, args, {"source": "dump", "file": str(args.dump), "records": records},
                lost=None if len(bad) else 0)


if __name__ == "__main__":
    run_main(main)
