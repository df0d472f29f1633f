"""Citation counts: the resumable batch harvester both citation sources share, and the parser of their responses.

Harvest (``semantic_scholar fetch`` / ``openalex fetch``) keeps every raw response as a numbered file in one directory
plus a ``manifest.jsonl`` line per file ({file, fetched_at, ids}). The manifest is the resume state: ids it lists are
never requested again, and a file written just before a kill (no manifest line yet) is kept and its ids re-requested
into a new file, so a kill costs at most one batch and loses nothing.

Parse (``citations parse``) reads such a directory, or any directory of native responses (local-snapshot mode), into
``citations.parquet``: one row per paper with a count, the latest fetch winning when a paper was seen twice (the
shared duplicate rule, duplicates.py). Papers are named by arXiv id (``--id-kind arxiv``, the default) or by DOI
(``--id-kind doi``, e.g. bioRxiv preprints); the id kind picks the column of both tables (:data:`ID_KINDS`). A
response file that is empty, truncated, an HTML or error page or the other source's is a bad file (bad_input.py);
the papers it held are counted as lost, exactly when the manifest lists them.

    python -m workflow_scripts.sources.citations parse --source semantic_scholar --responses DIR \
        --papers papers.parquet --out citations.parquet --report report.json --rejects rejects.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl
from tqdm import tqdm

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import (
    Rejects,
    append_jsonl,
    read_jsonl_tolerant,
    write_bytes_atomic,
    write_json_atomic,
    write_parquet_atomic,
)
from workflow_scripts.sources.bad_input import BadInput, add_bad_input_args, load_json_file
from workflow_scripts.sources.doi import normalize_doi
from workflow_scripts.sources.duplicates import keep_latest
from workflow_scripts.sources.errors import BadFileError, RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import HarvestError, PoliteClient, RetryPolicy
from workflow_scripts.sources.records import versionless_id

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
SOURCES = ("semantic_scholar", "openalex")
MISSING_SAMPLE = 20


@dataclass(frozen=True)
class IdKind:
    """How a harvest names its papers: the id column of papers.parquet (and of citations.parquet), and the normal
    form by which papers and response records are matched (RecordError for a bad id)."""

    column: str
    normalize: Callable[[str], str]


ID_KINDS = {"arxiv": IdKind("arxiv_id", versionless_id), "doi": IdKind("doi", normalize_doi)}


def citation_schema(id_kind: str = "arxiv") -> dict[str, pl.DataType]:
    return {ID_KINDS[id_kind].column: pl.String, "citation_count": pl.Int64, "source": pl.String,
            "fetched_at": pl.Datetime("us", "UTC")}


CITATION_SCHEMA = citation_schema()


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------------------------------------------------
# harvest: batches + manifest + resume


class BatchFetcher:
    """Base of a citation harvester. A subclass sets ``name``/``prefix`` and implements :meth:`responses`."""

    name = ""
    prefix = ""  # response files are <prefix>-000001.json, ...
    max_batch = 1

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.id_kind = args.id_kind
        # the key is read here and only handed to the HTTP layer; it never reaches a log line or a file
        self.api_key = (os.environ.get(args.api_key_env) or None) if args.api_key_env else None

    def client(self) -> PoliteClient:
        a = self.args
        policy = RetryPolicy(a.min_interval_s, a.max_retries, a.backoff_base_s, a.backoff_max_s, a.timeout_s)
        return PoliteClient(policy, headers=self.headers())

    def headers(self) -> dict[str, str]:
        return {}

    def responses(self, client: PoliteClient, ids: list[str]) -> Iterator[bytes]:
        """Yield the raw body of each response for one batch of ids (several when the source pages).

        Check the body after the yield (the caller has saved it by then, as evidence) and raise HarvestError when it
        is not what the source promises: the batch then gets no manifest line and is requested again next run.
        """
        raise NotImplementedError

    def run(self) -> dict:
        a = self.args
        out = Path(a.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        column = ID_KINDS[self.id_kind].column
        ids = sorted(set(pl.scan_parquet(a.papers).select(column).collect()[column].drop_nulls().to_list()))
        manifest = read_jsonl_tolerant(out / MANIFEST)
        done = {i for row in manifest for i in row["ids"]}
        todo = [i for i in ids if i not in done]
        number = _highest_number(out, self.prefix, manifest)
        batches = [todo[k : k + a.batch_size] for k in range(0, len(todo), a.batch_size)]
        log.info(
            "%s: %d papers, %d already fetched, %d to request in %d batch(es) of <= %d; api key %s",
            self.name, len(ids), len(ids) - len(todo), len(todo), len(batches), a.batch_size,
            "set" if self.api_key else "not set (lower rate limit)",
        )
        written = []
        with self.client() as client, tqdm(total=len(todo), unit="id", desc=self.name, file=sys.stderr, mininterval=5) as bar:
            for batch in batches:
                files = []
                for body in self.responses(client, batch):
                    number += 1
                    files.append((f"{self.prefix}-{number:06d}.json", utc_now()))
                    write_bytes_atomic(out / files[-1][0], body)
                    log.debug("saved %s (%d ids)", files[-1][0], len(batch))
                # manifest lines only once every page of the batch is on disk: a kill before this re-requests the batch
                for name, fetched_at in files:
                    append_jsonl(out / MANIFEST, {"file": name, "fetched_at": fetched_at, "ids": batch})
                written += [name for name, _ in files]
                bar.update(len(batch))
        summary = {
            "source": self.name,
            "papers": len(ids),
            "already_fetched": len(ids) - len(todo),
            "requested": len(todo),
            "batches": len(batches),
            "files_written": written,
            "api_key_set": self.api_key is not None,
            "finished_at": utc_now(),
        }
        log.info("%s: done, %d id(s) requested, %d file(s) written to %s", self.name, len(todo), len(written), out)
        return summary


def _highest_number(out: Path, prefix: str, manifest: list[dict]) -> int:
    # files on disk count too: one written just before a kill has no manifest line but must not be overwritten
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.json$")
    names = [p.name for p in out.iterdir()] + [row["file"] for row in manifest]
    return max((int(m.group(1)) for m in map(pattern.match, names) if m), default=0)


def checked_json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarvestError(f"{what}: response is not JSON ({exc}); the batch will be requested again next run") from None


def fetch_main(fetcher_cls: type[BatchFetcher], description: str, argv: list[str] | None, defaults: dict, extra=None) -> int:
    """Command line shared by the harvesters: ``fetch`` with the same options, per-source defaults."""
    p = parser(description)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="harvest counts for papers.parquet", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--papers", required=True,
                   help="papers.parquet (column arxiv_id, versionless; doi with --id-kind doi)")
    add_id_kind_arg(f)
    f.add_argument("--out-dir", required=True, help="raw responses + manifest.jsonl; kept across kills")
    f.add_argument("--base-url", default=defaults["base_url"])
    f.add_argument("--batch-size", type=int, default=defaults["batch_size"], help=f"ids per request, 1..{fetcher_cls.max_batch}")
    f.add_argument("--api-key-env", default=defaults["api_key_env"], help="name of the environment variable holding the key")
    f.add_argument("--min-interval-s", type=float, default=defaults["min_interval_s"])
    f.add_argument("--max-retries", type=int, default=8)
    f.add_argument("--backoff-base-s", type=float, default=2.0)
    f.add_argument("--backoff-max-s", type=float, default=300.0)
    f.add_argument("--timeout-s", type=float, default=120.0)
    f.add_argument("--done", help="JSON summary written at the end (the file Snakemake tracks)")
    if extra:
        extra(f)
    args = p.parse_args(argv)
    if not 1 <= args.batch_size <= fetcher_cls.max_batch:
        p.error(f"--batch-size must be in 1..{fetcher_cls.max_batch}")
    setup_logging(args.verbose)
    # httpx logs every URL at INFO; OpenAlex carries its key in the query string
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    summary = fetcher_cls(args).run()
    if args.done:
        write_json_atomic(args.done, summary)
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# parse


# Each source module provides, for parse:
#   records(obj) -> list: the paper records of one parsed response (UnusableFile if it is not that source's)
#   id_and_count(record, id_kind) -> (raw id, count): either may be None; RecordError for a record of the wrong shape
#   ALIGNED: whether a response lists one record per requested id, in request order (null where none was found)


def add_id_kind_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id-kind", choices=sorted(ID_KINDS), default="arxiv",
                   help="how papers are named: versionless arXiv ids (column arxiv_id) or DOIs (column doi)")


def source_module(source: str):
    # imported by name: the source modules import this one for the harvester base
    if source not in SOURCES:
        raise ValueError(f"unknown citation source {source!r}; expected one of {SOURCES}")
    return importlib.import_module(f"workflow_scripts.sources.{source}")


RESPONSE_SUFFIXES = (".json", ".json.gz")


def response_files(responses: Path) -> list[Path]:
    """Every *.json or *.json.gz response anywhere under the directory, whatever the rest of its name (harvests of
    other tools), in path order (temp files of atomic writes start with '.')."""
    if not responses.is_dir():
        raise BadFileError(f"responses directory {responses} does not exist")
    found = (p for p in responses.rglob("*") if p.name.endswith(RESPONSE_SUFFIXES) and p.is_file())
    return sorted((p for p in found if not p.name.startswith(".")), key=lambda p: file_key(responses, p))


def file_key(responses: Path, path: Path) -> str:
    """A response file as the manifest names it: its path under the directory (the harvester writes flat names)."""
    return path.relative_to(responses).as_posix()


def read_manifest(responses: Path) -> dict[str, dict]:
    """file name -> {fetched_at, ids} of the harvester's manifest (empty for a snapshot without one)."""
    listed = {}
    for row in read_jsonl_tolerant(responses / MANIFEST):
        try:
            fetched_at = dt.datetime.fromisoformat(row["fetched_at"]).astimezone(dt.timezone.utc)
            listed[row["file"]] = {"fetched_at": fetched_at, "ids": list(row.get("ids") or [])}
        except (KeyError, TypeError, ValueError):
            log.warning("%s: manifest line without a usable file/fetched_at, ignored: %s", responses / MANIFEST, row)
    return listed


def fetched_times(responses: Path, files: list[Path], listed: dict[str, dict]) -> tuple[dict[str, dt.datetime], int]:
    """fetched_at per file key: its manifest line, else the file's mtime (snapshots without a manifest)."""
    times, from_mtime = {}, []
    for path in files:
        key = file_key(responses, path)
        if key in listed:
            times[key] = listed[key]["fetched_at"]
        else:
            times[key] = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
            from_mtime.append(key)
    if from_mtime:
        log.info("fetched_at from file mtime (no manifest line) for %d file(s), e.g. %s", len(from_mtime), from_mtime[:5])
    return times, len(from_mtime)


def load_response(path: Path, module) -> list:
    """The records of one response file; UnusableFile when the file is empty, an HTML or error page, truncated
    (not JSON) or another source's response."""
    return module.records(load_json_file(path))


def parse(source: str, responses: Path, papers_path: Path, bad: BadInput,
          id_kind: str = "arxiv") -> tuple[pl.DataFrame, dict]:
    module = source_module(source)
    kind, column = ID_KINDS[id_kind], ID_KINDS[id_kind].column
    rejects = bad.rejects
    papers = pl.scan_parquet(papers_path).select(column, "published").unique(column).collect()
    # ids are matched case-insensitively: OpenAlex lowercases DOIs ('math.AG/...' -> 'math.ag/...'), and DOIs are
    # case-insensitive names
    known = {i.lower(): i for i in papers[column].to_list()}
    files = response_files(responses)
    if not files:
        log.warning("%s: no response files (*.json, *.json.gz); every paper will be without a count", responses)
    listed = read_manifest(responses)
    times, n_mtime = fetched_times(responses, files, listed)
    rows, unknown, bad_names, superseded, largest, renamed = [], 0, [], [], 0, 0
    for order, path in enumerate(files):
        key = file_key(responses, path)
        try:
            records = load_response(path, module)
        except UnusableFile as problem:
            if listed and key not in listed:
                # the harvester saves a body before checking it and requests a refused batch again: an unlisted file
                # is such evidence, superseded by a later file, and costs no paper
                log.warning("%s: %s: %s; not in %s, so its batch was requested again: skipped",
                            path, problem.kind, problem.detail, MANIFEST)
                superseded.append(key)
                continue
            bad.add(path, problem, raw=path.read_bytes()[:500])
            bad_names.append(key)
            continue
        largest = max(largest, len(records))
        requested = aligned_ids(module, listed.get(key), records)
        for idx, record in enumerate(records):
            if record is None:  # S2 answers null for a paper it does not know: no count, nothing wrong
                continue
            try:
                raw_id, count = module.id_and_count(record, id_kind)
                if requested is not None:
                    renamed += not _same_id(raw_id, requested[idx], kind)
                    raw_id = requested[idx]
                paper_id = _record_id(raw_id, kind)
                count = _record_count(count)
            except RecordError as exc:
                rejects.add(path, idx, str(exc), raw=record)
                continue
            if paper_id.lower() not in known:
                unknown += 1
                continue
            rows.append((known[paper_id.lower()], count, times[key]))
    if renamed:
        log.info("%d record(s) of request-aligned responses name another id than the one requested (e.g. a preprint "
                 "merged with its journal version): counted for the requested paper", renamed)
    schema = citation_schema(id_kind)
    frame = pl.DataFrame(rows, schema={k: schema[k] for k in (column, "citation_count", "fetched_at")}, orient="row")
    out, duplicates = keep_latest(frame, column, "fetched_at", ["citation_count"])
    out = out.with_columns(source=pl.lit(source)).select(list(schema)).cast(schema)
    counted = set(out[column].to_list())
    missing = missing_report(papers.rename({column: "id"}), counted)
    lost, estimated = lost_to_bad_files(bad_names, listed, known, counted, largest, missing["without_count"])
    report = {
        "source": source,
        "files_read": len(files),
        "files_rejected": len(bad_names),
        "files_superseded": superseded,
        "fetched_at_from_mtime": n_mtime,
        "records_with_count": len(rows),
        **duplicates.summary(),
        "unknown_ids": unknown,
        **missing,
        "rejected": len(rejects),
        "rejects": rejects.counts(),
        **bad.summary(lost, papers.height, estimated),
    }
    return out, report


def lost_to_bad_files(bad_names: list[str], listed: dict[str, dict], known: dict[str, str], counted: set[str],
                      largest: int, without_count: int) -> tuple[int | None, bool]:
    """(papers left without a count because their response was bad, whether that is an estimate).

    A bad file the manifest lists lost exactly its requested ids that got no count from another file. A bad file of
    a snapshot without a manifest held as many records as the largest readable file, at most the papers still
    without a count; with no readable file at all the loss cannot be counted (None).
    """
    exact, unlisted = set(), 0
    for name in bad_names:
        if name in listed:
            exact.update(known[i.lower()] for i in listed[name]["ids"] if i.lower() in known)
        else:
            unlisted += 1
    lost = len(exact - counted)
    if not unlisted:
        return lost, False
    if not largest:
        return None, True
    return lost + min(unlisted * largest, without_count - lost), True


def aligned_ids(module, listed: dict | None, records: list) -> list[str] | None:
    """The requested ids of a response that answers them one by one in request order (Semantic Scholar's batch), when
    the manifest lists its file and the lengths agree; else None and each record names its paper itself.

    The request is the better name: Semantic Scholar merges a bioRxiv preprint with its journal version and then
    reports the journal's DOI for the preprint's DOI that was asked for."""
    if not module.ALIGNED or listed is None or len(listed["ids"]) != len(records):
        return None
    return listed["ids"]


def _same_id(raw_id: Any, wanted: str, kind: IdKind) -> bool:
    try:
        return _record_id(raw_id, kind).lower() == kind.normalize(wanted).lower()
    except RecordError:
        return False


def _record_id(raw_id: Any, kind: IdKind) -> str:
    if raw_id is None or raw_id == "":
        raise RecordError("missing id")
    if not isinstance(raw_id, str):
        raise RecordError(f"bad id: {raw_id!r}")
    try:
        return kind.normalize(raw_id)
    except RecordError as exc:
        raise RecordError(f"bad id: {exc}") from None


def _record_count(count: Any) -> int:
    if count is None:
        raise RecordError("missing count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise RecordError(f"bad count: {count!r}")
    return count


def missing_report(papers: pl.DataFrame, counted: set[str]) -> dict:
    """How many papers (id, published) got no count, a sample of their ids, and the missing share per year of first
    version."""
    flagged = papers.with_columns(
        missing=~pl.col("id").is_in(list(counted)),
        year=pl.col("published").dt.year().cast(pl.String).fill_null("unknown"),
    )
    missing = flagged.filter("missing")["id"].sort().to_list()
    per_year = flagged.group_by("year").agg(papers=pl.len(), missing=pl.col("missing").sum()).sort("year")
    if missing:
        log.warning("%d of %d paper(s) without a citation count, e.g. %s", len(missing), papers.height, missing[:5])
    return {
        "papers_total": papers.height,
        "with_count": papers.height - len(missing),
        "without_count": len(missing),
        "missing_sample": missing[:MISSING_SAMPLE],
        "missing_by_year": {
            r["year"]: {"papers": r["papers"], "missing": r["missing"], "share": round(r["missing"] / r["papers"], 6)}
            for r in per_year.iter_rows(named=True)
        },
    }


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("parse", help="responses directory -> citations.parquet", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c.add_argument("--source", required=True, choices=SOURCES)
    c.add_argument("--responses", required=True, help="directory of native responses (a harvest dir or a snapshot)")
    c.add_argument("--papers", required=True, help="papers.parquet (arxiv_id or doi, published)")
    add_id_kind_arg(c)
    c.add_argument("--out", required=True, help="citations.parquet")
    c.add_argument("--report", required=True, help="JSON report")
    c.add_argument("--rejects", required=True, help="rejected files and records, JSON lines")
    add_bad_input_args(c)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    bad = BadInput.from_args(args, Rejects())
    out, report = parse(args.source, Path(args.responses), Path(args.papers), bad, args.id_kind)

    def write_outputs():
        write_parquet_atomic(out, args.out)
        write_json_atomic(args.report, report)
        bad.rejects.write(args.rejects)
        log.info("%s: %d of %d paper(s) with a count -> %s (%d unknown id(s))",
                 args.source, report["with_count"], report["papers_total"], args.out, report["unknown_ids"])

    bad.conclude(f"citations ({args.source})", report, write_outputs)


if __name__ == "__main__":
    run_main(main)
