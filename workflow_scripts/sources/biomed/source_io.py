"""What the biomedical source modules share around their own parsing: per-article native files fetched once into a
snapshot (harvest side), the files of a snapshot read under the bad-file policy and turned into the three tables
of tables.py + rejects + summary (parse side), and the ``harvest`` / ``parse`` command line around both.

One article is one native file (a JATS XML, a review PDF), so a bad file loses exactly one article: the summary's
loss is counted, never estimated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import polars as pl
from tqdm import tqdm

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import (Rejects, append_jsonl, read_jsonl_tolerant, write_bytes_atomic,
                                        write_json_atomic, write_parquet_atomic)
from workflow_scripts.sources.bad_input import BadInput, add_bad_input_args, read_native, sniff
from workflow_scripts.sources.biomed import jats, tables
from workflow_scripts.sources.errors import UnusableFile
from workflow_scripts.sources.http import HarvestError, PoliteClient, add_policy_args, quiet_http_logs
from workflow_scripts.sources.reader_io import XML_SUFFIXES, list_pages, remove_stale_temp_files

log = logging.getLogger(__name__)
T = TypeVar("T")

# --------------------------------------------------------------------------------------------------------------------
# harvest side


def file_key(doi: str) -> str:
    """A DOI as a file name: '10.1371/journal.pbio.3001234' -> '10.1371_journal.pbio.3001234' (a DOI has no '_'
    before its first '/', and the rest keeps its characters, so the name is readable and unique)."""
    return doi.replace("/", "_")


def date_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from None


def add_window_args(p: argparse.ArgumentParser, until_required: bool) -> None:
    """The publication window of a harvest."""
    p.add_argument("--from-date", required=True, type=date_arg, help="first publication date, YYYY-MM-DD")
    p.add_argument("--until-date", required=until_required, type=date_arg,
                   help="last publication date, included" + ("" if until_required else " (default: open)"))


def read_answer(resp, read: Callable[[Any], T], where: str) -> T:
    """``read`` (raising UnusableFile) of a JSON answer the harvester is about to save; HarvestError naming ``where``
    when it is not JSON or ``read`` refuses it: never saved, so a rerun asks for it again."""
    try:
        return read(json.loads(resp.content))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HarvestError(f"{where}: answer is not JSON (truncated?): {exc}; rerun to fetch it again") from None
    except UnusableFile as problem:
        raise HarvestError(f"{where}: {problem.kind}: {problem.detail}") from None


GONE_FILE = "rejects.jsonl"


class Gone:
    """The files a server answered 404 or 410 for: that article does not exist there (withdrawn, never published in
    that form, no open full text), a final answer about one article, never a reason to stop the harvest. Each is a
    rejects row (file, record = the article's DOI or id, reason with the HTTP status; plus url and status) appended to
    ``path``, which the harvests into that directory share: a file listed there is never asked for again (delete its
    row, or the file, to ask again)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows = read_jsonl_tolerant(self.path)
        self.names = {row.get("file") for row in self.rows}
        self.new = 0  # added by this run
        self.skipped = 0  # not asked for because an earlier run recorded it

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def skip(self, name: str) -> bool:
        """True (and counted) when ``name`` is listed: the caller does not ask for it."""
        if name in self.names:
            self.skipped += 1
            return True
        return False

    def add(self, name: str, record: str, url: str, exc: HarvestError) -> None:
        row = {"file": name, "record": record, "reason": f"HTTP {exc.status} (gone): {exc}", "raw": None,
               "url": url, "status": exc.status}
        append_jsonl(self.path, row)
        self.rows.append(row)
        self.names.add(name)
        self.new += 1
        log.warning("%s: HTTP %s, %s does not exist there: a final rejects row in %s, not asked again", url,
                    exc.status, record, self.path)


@dataclass
class Fetches:
    """Per-article files of one harvest run: fetched, already on disk, failed (url + reason, also in
    ``failures.jsonl``), gone. A failed article is asked again by the next run, since its file is not on disk; one
    the server answered 404 / 410 for is gone (:class:`Gone`, ``rejects_path``, by default ``rejects.jsonl`` beside
    the failures): final, never asked again, and the harvest goes on."""

    failures_path: Path
    rejects_path: Path | None = None
    fetched: int = 0
    on_disk: int = 0
    failed: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.failures_path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.failures_path, b"")  # this run's failures only
        self.gone = Gone(self.rejects_path or self.failures_path.with_name(GONE_FILE))

    def _name(self, target: Path) -> str:
        """The target as the rejects rows name it: relative to their directory where it lies under it."""
        try:
            return target.relative_to(self.gone.path.parent).as_posix()
        except ValueError:
            return target.as_posix()

    def is_gone(self, target: Path) -> bool:
        return self._name(target) in self.gone

    def get(self, client: PoliteClient, url: str, target: Path, check=None, record: str | None = None) -> bytes | None:
        """``target``'s bytes: read from disk when a run before saved it, else fetched, checked and saved atomically.
        None when the request failed after its retries or ``check`` (bytes -> None, raising UnusableFile) refused
        the answer (recorded, asked again by the next run), and when the server answered 404 / 410 for it, now or in
        an earlier run (a rejects row naming ``record``, default the file's stem; never asked again). The harvest
        goes on with the next article either way."""
        if target.exists():
            self.on_disk += 1
            return target.read_bytes()
        name = self._name(target)
        if self.gone.skip(name):
            return None
        try:
            data = client.get(url).content
            if check is not None:
                check(data)
        except HarvestError as exc:
            if exc.gone:
                self.gone.add(name, record or target.stem, url, exc)
            else:
                self._failed(url, target, exc)
            return None
        except UnusableFile as exc:
            self._failed(url, target, exc)
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(target.parent)
        write_bytes_atomic(target, data)
        self.fetched += 1
        return data

    def _failed(self, url: str, target: Path, exc: Exception) -> None:
        failure = {"url": url, "file": target.name, "reason": str(exc)}
        self.failed.append(failure)
        append_jsonl(self.failures_path, failure)
        log.warning("%s: %s (asked again by the next run)", url, exc)

    def summary(self) -> dict:
        return {"fetched": self.fetched, "on_disk": self.on_disk, "failed": len(self.failed),
                "gone": self.gone.new + self.gone.skipped}


def log_failures(step: str, fetches: Fetches) -> None:
    if fetches.failed:
        log.warning("%s: %d file(s) could not be fetched (listed in %s); a rerun asks for them again", step,
                    len(fetches.failed), fetches.failures_path)
    if fetches.gone.new or fetches.gone.skipped:
        log.warning("%s: %d article(s) answered 404 / 410, %d of them by an earlier run: rejects rows in %s, never "
                    "asked again", step, fetches.gone.new + fetches.gone.skipped, fetches.gone.skipped,
                    fetches.gone.path)


# --------------------------------------------------------------------------------------------------------------------
# parse side


def native_files(dirs: Iterable[Path], suffixes: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """(file, its directory argument) for every file with one of ``suffixes`` anywhere under ``dirs``, whatever its
    name, in a fixed order (reader_io.list_pages)."""
    out = []
    for d in dirs:
        out.extend((path, Path(d)) for path in list_pages([Path(d)], suffixes))
    return out


def relative_name(path: Path, root: Path) -> str:
    """The file as the articles table records it: relative to the snapshot directory it was found under."""
    return path.relative_to(root).as_posix()


def read_bytes(path: Path) -> bytes:
    """A native file's bytes (gunzipped for .gz); UnusableFile when the file cannot be read at all."""
    try:
        return read_native(path)
    except OSError as exc:
        raise UnusableFile("unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from None


def jats_of(data: bytes, file: str) -> jats.JatsArticle:
    """The article in ``data`` through jats.read_jats; UnusableFile (empty, html, malformed) when it is not one."""
    sniff(data)
    try:
        return jats.read_jats(data, file=file)
    except jats.JatsError as exc:  # its reason without the file, which the rejects row names already
        raise UnusableFile("malformed", exc.reason) from None


def check_jats(data: bytes) -> None:
    """What a harvester refuses to save as an article file (a Fetches.get check): an empty answer, an HTML page,
    anything the parser could not read (a cut download, XML without an <article>)."""
    jats_of(data, "the answer")


def read_jats_file(path: Path) -> jats.JatsArticle:
    """A native JATS file; UnusableFile (unreadable, empty, html, malformed) when unusable."""
    return jats_of(read_bytes(path), str(path))


@dataclass
class Counts:
    """What every source's parse counts; each source adds its own counts in a subclass. All go to the summary but
    ``files``, the files read, against which the articles lost to bad files are measured."""

    files: int = 0
    duplicates: int = 0  # an article read again: the file read later is kept


def jats_files(dirs: Iterable[Path], bad: BadInput, counts: Counts,
               progress: str | None = None) -> Iterator[tuple[jats.JatsArticle, Path, str]]:
    """(article, path, file name relative to its snapshot directory) of every *.xml / *.xml.gz under ``dirs`` that
    reads as JATS; each file counted in ``counts.files``, each unusable one a bad file. ``progress``: the label of a
    progress bar on stderr."""
    files = native_files(dirs, XML_SUFFIXES)
    for path, root in tqdm(files, unit="file", desc=progress, file=sys.stderr, disable=progress is None):
        counts.files += 1
        try:
            article = read_jats_file(path)
        except UnusableFile as problem:
            bad.add(path, problem)
            continue
        yield article, path, relative_name(path, root)


_WS_LINES = re.compile(r"[ \t]+")


def clean_block(text: str) -> str:
    """A block of running text: spaces collapsed within lines, at most one blank line between paragraphs."""
    lines = [_WS_LINES.sub(" ", line).strip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def add_output_args(p: argparse.ArgumentParser, extra_tables: tuple[str, ...] = ()) -> None:
    """The table outputs of a ``parse`` command: the three of tables.py and the source's own ``extra_tables``."""
    p.add_argument("--articles", required=True, type=Path, help="articles parquet (tables.ARTICLE_SCHEMA)")
    p.add_argument("--reports", required=True, type=Path, help="reviewer reports parquet (tables.REPORT_SCHEMA)")
    p.add_argument("--responses", required=True, type=Path, help="author responses parquet (tables.RESPONSE_SCHEMA)")
    for name in extra_tables:
        p.add_argument(f"--{name}", required=True, type=Path, help=f"{name} parquet (the source module's schema)")


@dataclass
class Parsed:
    """What a source's parse hands the shared writer: the rows of the three tables, its counts and any ``extra``
    tables of its own, each written to the option of its name."""

    articles: list[dict]
    reports: list[dict]
    responses: list[dict]
    counts: Counts
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)


def write_tables(source: str, parsed: Parsed, bad: BadInput, args: argparse.Namespace) -> dict:
    """The tables, the rejects and the summary, unless the bad-file policy stops the step (bad_input.py); the log
    ends with the data-quality summary either way. Each bad file is one article lost."""
    frames = {"articles": tables.articles_frame(parsed.articles), "reports": tables.reports_frame(parsed.reports),
              "responses": tables.responses_frame(parsed.responses), **parsed.extra}
    files = parsed.counts.files
    summary = {
        "source": source, "files": files, **{k: v for k, v in vars(parsed.counts).items() if k != "files"},
        **{name: frame.height for name, frame in frames.items()},
        "reports_per_round": _per_round(frames["reports"]),
        "rejected": len(bad.rejects), "rejects": bad.rejects.counts(),
        **bad.summary(len(bad), files),
    }

    def write_outputs() -> None:
        for name, frame in frames.items():
            write_parquet_atomic(frame, getattr(args, name))
        bad.rejects.write(args.rejects)
        write_json_atomic(args.summary, summary)
        log.info("%s: %s -> %s", source, ", ".join(f"{frame.height} {name}" for name, frame in frames.items()),
                 args.articles.parent)

    bad.conclude(source, summary, write_outputs)
    return summary


def _per_round(reports: pl.DataFrame) -> dict[str, int]:
    counts = reports.group_by("round").len().sort("round")
    return {str(r): n for r, n in counts.iter_rows()}


def jats_article_row(article, *, source: str, article_id: str, family_id: str, review_style: str, file: str) -> dict:
    """An articles row from a ``jats.JatsArticle`` (read_jats)."""
    return {
        "article_id": article_id, "family_id": family_id, "source": source, "journal": article.journal,
        "doi": article.doi, "version": article.version or 1, "title": article.title, "abstract": article.abstract,
        "sections": article.sections, "figure_captions": article.figure_captions, "published": article.published,
        "license": article.license, "review_style": review_style, "file": file,
    }


# --------------------------------------------------------------------------------------------------------------------
# command line


def source_cli(doc: str, *, harvest_help: str, parse_help: str, out_dir_help: str, min_interval_s: float,
               interval_what: str = "requests") -> tuple[argparse.ArgumentParser, ...]:
    """(parser, harvest, parse) of a source module: the options every source has are added (harvest: --out-dir,
    --done, the request policy; parse: --rejects, --summary, the bad-file policy), the module adds its own."""
    p = parser(doc.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("harvest", help=harvest_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    h.add_argument("--out-dir", required=True, type=Path, help=out_dir_help)
    h.add_argument("--done", type=Path, help="JSON summary written when the harvest is complete")
    add_policy_args(h, min_interval_s, interval_what)
    s = sub.add_parser("parse", help=parse_help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--rejects", required=True, type=Path, help="rejected files and records, JSON lines")
    s.add_argument("--summary", required=True, type=Path, help="JSON summary (counts)")
    add_bad_input_args(s)
    return p, h, s


def run_source_cli(p: argparse.ArgumentParser, argv: list[str] | None,
                   harvest: Callable[[argparse.Namespace], dict],
                   parse: Callable[[argparse.Namespace, BadInput], None]) -> None:
    """Run the sub-command of ``argv``: ``harvest(args)`` returns the summary that --done receives once the harvest
    is complete; ``parse(args, bad)`` reads and writes under the bad-file policy of the options."""
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "harvest":
        quiet_http_logs()
        summary = harvest(args)
        if args.done:
            write_json_atomic(args.done, summary)
    else:
        parse(args, BadInput.from_args(args, Rejects()))
