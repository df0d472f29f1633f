"""bioRxiv preprints from the api.biorxiv.org ``details`` endpoint: a resumable harvester of date windows, and the
parser of its answers into the bioRxiv paper table (one row per DOI).

The endpoint (https://api.biorxiv.org/details/help): ``GET {base}/details/{server}/{from}/{until}/{cursor}/json`` lists
every version posted in the window, 100 records a call from offset ``cursor``. An answer is ``{"messages": [{"status":
"ok", "interval", "cursor", "count", "count_new_papers", "total"}], "collection": [record, ...]}`` (numbers sometimes
as strings); a window without posts answers status "no posts found". A record has doi, title, authors ("Last, F.;
Last, F."), date (of this version), version, type, license, category, abstract, published (the journal DOI or "NA"),
server, jatsxml. The cursor advances by the records an answer holds, never by an assumed page size: some deployments
serve 30 a call, and a cursor out of step still answers 200.

``harvest`` saves every answer verbatim as OUT/pages/<server>_<from>_<until>/page-NNNNN.json and after it the window's
state OUT/state/<server>_<from>_<until>.json (next cursor, total, counts). Killed at any point and re-run, it goes on
from the state: a page written before its state update is fetched again under the same number, so no record is
duplicated or lost. ``parse`` reads every *.json or *.json.gz file under the given directories, whatever its name
(harvests of other tools too): our page directories or a local snapshot alike.

One row per DOI: the latest version's title, abstract and category, the first version's date (``published``). A paper
whose first version is not in the files was first posted before the harvested windows: it is excluded and counted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_bytes_atomic, write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.bad_input import BadInput, add_bad_input_args, error_answer, load_json_file
from workflow_scripts.sources.doi import normalize_doi
from workflow_scripts.sources.duplicates import keep_latest
from workflow_scripts.sources.errors import RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import (HarvestError, PoliteClient, RetryPolicy, add_policy_args, policy_of,
                                           quiet_http_logs)
from workflow_scripts.sources.reader_io import date_of, list_pages, lost_to_bad_pages, remove_stale_temp_files
from workflow_scripts.sources.records import clean_text

log = logging.getLogger(__name__)

NO_POSTS = "no posts found"
PAGE_SUFFIXES = (".json", ".json.gz")
PAPER_SCHEMA: dict[str, pl.DataType] = {
    "doi": pl.String,  # lowercased (doi.py)
    "title": pl.String,  # of the latest version
    "abstract": pl.String,  # of the latest version
    "authors": pl.List(pl.String),
    "category": pl.String,  # bioRxiv subject collection, lowercased ("cell biology")
    "published": pl.Date,  # date of version 1
    "updated": pl.Date,  # date of the latest version
    "version": pl.Int32,  # the latest version
    "server": pl.String,
    "type": pl.String,
    "license": pl.String,
    "published_doi": pl.String,  # the journal version's DOI, when bioRxiv knows one
}
VERSION_COLUMNS = [c for c in PAPER_SCHEMA if c not in ("published", "updated")] + ["date"]


# --------------------------------------------------------------------------------------------------------------------
# one answer of the details endpoint: shared by the harvester (before saving a page) and the parser


@dataclass
class Answer:
    status: str
    cursor: int | None
    total: int | None
    collection: list


def _number(value: Any, what: str) -> int | None:
    """A count of the messages block: an int or a string of digits (the API sends both); None when absent."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise UnusableFile("malformed", f"messages {what} is not a count: {value!r}")


def read_answer(obj: Any) -> Answer:
    """The parts of a details answer; UnusableFile (kind + reason) when ``obj`` is not a usable one."""
    if isinstance(obj, list):
        raise UnusableFile("wrong source", "a JSON array (a Semantic Scholar batch?), not a bioRxiv details answer")
    if not isinstance(obj, dict):
        raise UnusableFile("malformed", f"expected a JSON object, got {type(obj).__name__}")
    messages, collection = obj.get("messages"), obj.get("collection")
    if collection is None and error_answer(obj) is not None:
        raise UnusableFile("error response", f"the API answered {error_answer(obj)!r} instead of a details answer")
    if not (isinstance(messages, list) and messages and isinstance(messages[0], dict)):
        what = "an OpenAlex works page" if "results" in obj else "an object without a 'messages' list"
        raise UnusableFile("wrong source", f"{what}, not a bioRxiv details answer")
    if not isinstance(collection, list):
        raise UnusableFile("malformed", "no 'collection' list (truncated?)")
    head = messages[0]
    status = str(head.get("status") or "").strip()
    if status.lower() == NO_POSTS:
        if collection:
            raise UnusableFile("malformed", f"status {status!r} with {len(collection)} record(s)")
    elif status.lower() != "ok":
        raise UnusableFile("error response", f"messages status {status!r}")
    count = _number(head.get("count"), "count")
    if count is not None and count != len(collection):
        raise UnusableFile("malformed", f"messages count {count} but the collection holds {len(collection)} "
                                        "record(s) (truncated?)")
    total = _number(head.get("total"), "total")
    if status.lower() == "ok" and total is None:
        raise UnusableFile("malformed", "messages without a total")
    return Answer(status, _number(head.get("cursor"), "cursor"), total, collection)


# --------------------------------------------------------------------------------------------------------------------
# harvest


@dataclass(frozen=True)
class Window:
    from_date: str
    until_date: str

    @classmethod
    def parse(cls, text: str) -> "Window":
        """'2023-01-01:2023-01-31' (both days included)."""
        try:
            start, end = (dt.date.fromisoformat(part.strip()) for part in text.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected FROM:UNTIL as YYYY-MM-DD:YYYY-MM-DD, got {text!r}") from None
        if end < start:
            raise argparse.ArgumentTypeError(f"window {text!r} ends before it starts")
        return cls(start.isoformat(), end.isoformat())

    def slug(self, server: str) -> str:
        return f"{server}_{self.from_date}_{self.until_date}"


def page_dirs(out_dir: str | Path, server: str, windows: list[Window]) -> list[Path]:
    """The page directory of each window of a harvest into ``out_dir`` (what parse reads, in window order)."""
    return [Path(out_dir) / "pages" / w.slug(server) for w in windows]


def _fresh_state() -> dict:
    return {"cursor": 0, "pages": 0, "records": 0, "total": None, "shortfall": 0, "complete": False}


def harvest_window(client: PoliteClient, base_url: str, server: str, window: Window, out_dir: Path) -> dict:
    pages_dir, state_path = page_dirs(out_dir, server, [window])[0], out_dir / "state" / f"{window.slug(server)}.json"
    pages_dir.mkdir(parents=True, exist_ok=True)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(pages_dir)
    remove_stale_temp_files(state_path.parent)
    # written atomically: whole or absent, never torn
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else _fresh_state()
    if state["pages"] and not state["complete"]:
        log.info("%s: resuming at cursor %d after page %d", window.slug(server), state["cursor"], state["pages"])
    with tqdm(total=state["total"], initial=state["cursor"], unit="rec", desc=window.slug(server), file=sys.stderr,
              disable=state["complete"]) as bar:
        while not state["complete"]:
            cursor = state["cursor"]
            url = f"{base_url.rstrip('/')}/details/{server}/{window.from_date}/{window.until_date}/{cursor}/json"
            resp = client.get(url)
            try:
                answer = read_answer(json.loads(resp.content))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise HarvestError(f"{url}: answer is not JSON (truncated?): {exc}; rerun to fetch it again") from None
            except UnusableFile as problem:  # never saved as a page: a rerun asks for it again
                raise HarvestError(f"{url}: {problem.kind}: {problem.detail}") from None
            if answer.cursor is not None and answer.cursor != cursor:
                raise HarvestError(f"{url}: the answer starts at cursor {answer.cursor}, not {cursor}")
            n = state["pages"] + 1
            # page first, then state: a kill in between fetches this page again under the same number
            write_bytes_atomic(pages_dir / f"page-{n:05d}.json", resp.content)
            got = len(answer.collection)
            # "no posts found" carries no total: the one announced before, if any, still says what was due
            total = answer.total if answer.total is not None else (state["total"] or cursor)
            state.update(pages=n, cursor=cursor + got, records=state["records"] + got, total=total,
                         complete=not got or cursor + got >= total)
            if not got and cursor < total:
                state["shortfall"] = total - cursor
                log.warning("%s: the listing ended at cursor %d of the %d records its total announced: %d record(s) "
                            "were not served", window.slug(server), cursor, total, total - cursor)
            write_json_atomic(state_path, state)
            bar.total = total
            bar.update(got)
    for page in sorted(pages_dir.glob("page-*.json")):  # beyond the finished harvest: left by an earlier listing
        if page.stem[5:].isdigit() and int(page.stem[5:]) > state["pages"]:
            log.info("removing stale %s (beyond the %d pages of the finished window)", page, state["pages"])
            page.unlink()
    log.info("%s complete: %d page(s), %d record(s) of %s announced", window.slug(server), state["pages"],
             state["records"], state["total"])
    return {"from": window.from_date, "until": window.until_date, "pages": state["pages"],
            "records": state["records"], "total": state["total"], "shortfall": state["shortfall"]}


def harvest(base_url: str, server: str, windows: list[Window], out_dir: Path, policy: RetryPolicy | None = None,
            done: Path | None = None) -> dict:
    out_dir = Path(out_dir)
    with PoliteClient(policy) as client:
        per_window = [harvest_window(client, base_url, server, w, out_dir) for w in windows]
    summary = {"server": server, "windows": per_window, "records": sum(w["records"] for w in per_window),
               "shortfall": sum(w["shortfall"] for w in per_window)}
    if done:
        write_json_atomic(done, summary)
    return summary


# --------------------------------------------------------------------------------------------------------------------
# parse


def category_name(text: str) -> str:
    """'Cell_Biology' -> 'cell biology': the API's query form and its records' form compare equal."""
    return " ".join(text.replace("_", " ").split()).lower()


def _text(record: dict, key: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise RecordError(f"bad {key}: {value!r}")
    return clean_text(value)


def version_row(record: Any) -> dict:
    """One posted version, normalized; RecordError naming the missing or bad field."""
    if not isinstance(record, dict):
        raise RecordError(f"malformed record: expected an object, got {type(record).__name__}")
    raw_doi = _text(record, "doi")
    if not raw_doi:
        raise RecordError("missing doi")
    try:
        doi = normalize_doi(raw_doi)
    except RecordError as exc:
        raise RecordError(f"bad doi: {exc}") from None
    version = record.get("version")
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RecordError("missing version" if version in (None, "") else f"bad version: {version!r}")
    date = date_of(_text(record, "date"), "posting")
    row = {"doi": doi, "version": version, "date": date, "title": _text(record, "title"),
           "abstract": _text(record, "abstract"), "category": category_name(_text(record, "category") or "") or None}
    for key in ("date", "title", "abstract", "category"):
        if row[key] is None:
            raise RecordError(f"missing {key}")
    published = _text(record, "published")
    row.update(
        authors=[a for a in (clean_text(x) for x in (_text(record, "authors") or "").split(";")) if a],
        server=(_text(record, "server") or "").lower() or None, type=_text(record, "type"),
        license=_text(record, "license"),
        published_doi=None if published is None or published.upper() == "NA" else published,
    )
    return row


def read_versions(dirs: list[Path], bad: BadInput) -> tuple[pl.DataFrame, dict]:
    """Every posted version in the answers under ``dirs``, in read order; bad files and records go to ``bad``."""
    rows, counts = [], {"pages": 0, "records": 0, "largest_page": 0}
    for path in list_pages(dirs, PAGE_SUFFIXES):
        counts["pages"] += 1
        try:
            answer = read_answer(load_json_file(path))
        except UnusableFile as problem:
            bad.add(path, problem, raw=path.read_bytes()[:500])
            continue
        counts["largest_page"] = max(counts["largest_page"], len(answer.collection))
        for idx, record in enumerate(answer.collection):
            counts["records"] += 1
            try:
                rows.append(version_row(record))
            except RecordError as exc:
                name = record.get("doi") if isinstance(record, dict) and isinstance(record.get("doi"), str) else idx
                bad.rejects.add(path, name or idx, str(exc), raw=record)
    schema = {**{c: PAPER_SCHEMA[c] for c in VERSION_COLUMNS if c != "date"}, "date": pl.Date}
    return pl.DataFrame(rows, schema=schema), counts


def papers_of(versions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per DOI: the latest version's text, the first version's date; the DOIs whose version 1 is missing)."""
    first = versions.filter(pl.col("version") == 1).select("doi", pl.col("date").alias("published"))
    latest = versions.sort("doi", "version").unique("doi", keep="last", maintain_order=True)
    papers = latest.join(first, on="doi", how="inner").rename({"date": "updated"})
    return papers.select(list(PAPER_SCHEMA)).sort("doi"), latest.join(first, on="doi", how="anti")


def parse(dirs: list[Path], server: str, categories: list[str] | None, bad: BadInput) -> tuple[pl.DataFrame, dict]:
    versions, counts = read_versions(dirs, bad)
    other_server = versions.filter(pl.col("server").is_not_null() & (pl.col("server") != server.lower()))
    versions = versions.join(other_server.select("doi"), on="doi", how="anti")
    # a version listed twice (overlapping windows, a page fetched twice): the one rule of duplicates.py
    keyed = versions.with_columns(_key=pl.col("doi") + pl.lit("v") + pl.col("version").cast(pl.String))
    versions, duplicates = keep_latest(keyed, "_key", "date", VERSION_COLUMNS)
    papers, older = papers_of(versions.drop("_key"))
    wanted = [category_name(c) for c in categories] if categories else None
    outside = papers.filter(~pl.col("category").is_in(wanted)) if wanted else papers.clear()
    papers = papers.join(outside.select("doi"), on="doi", how="anti")
    if older.height:
        log.info("%d DOI(s) with no version 1 in the files (first posted before the windows), excluded, e.g. %s",
                 older.height, older["doi"].head(5).to_list())
    if outside.height:
        log.info("%d paper(s) outside the configured categories %s excluded", outside.height, wanted)
    per_category = papers.group_by("category").len().sort("category")
    summary = {
        "source": "biorxiv", "server": server, **counts, **duplicates.summary(),
        "records_other_server": other_server.height,
        "first_version_not_in_files": older.height,
        "outside_categories": outside.height,
        "papers": papers.height,
        "per_category": dict(zip(per_category["category"], per_category["len"])),
    }
    return papers, summary


def write(papers: pl.DataFrame, summary: dict, bad: BadInput, out: Path, rejects: Path, summary_path: Path | None):
    lost = lost_to_bad_pages(len(bad), summary.pop("largest_page"))
    summary = {**summary, "rejected": len(bad.rejects), "rejects": bad.rejects.counts(),
               **bad.summary(lost, summary["records"] + (lost or 0), estimated=True)}

    def write_outputs():
        write_parquet_atomic(papers, out)
        bad.rejects.write(rejects)
        log.info("biorxiv: %d papers written to %s, per category %s", papers.height, out, summary["per_category"])
        if summary_path:
            write_json_atomic(summary_path, summary)

    bad.conclude("biorxiv", summary, write_outputs)


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    h = sub.add_parser("harvest", help="details of date windows into OUT/pages/<window>/page-NNNNN.json (resumable)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    h.add_argument("--base-url", default="https://api.biorxiv.org", help="the API root")
    h.add_argument("--server", default="biorxiv", choices=["biorxiv", "medrxiv"])
    h.add_argument("--window", required=True, action="append", type=Window.parse, dest="windows",
                   help="FROM:UNTIL posting dates, both included (repeat for several windows)")
    h.add_argument("--out-dir", required=True, type=Path, help="pages/ and state/ of every window")
    add_policy_args(h, 1.0)
    h.add_argument("--done", type=Path, help="JSON summary written when every window is complete (the Snakemake output)")

    s = sub.add_parser("parse", help="answers -> papers parquet + rejects",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--pages", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.json (or *.json.gz) details answers, any name")
    s.add_argument("--server", default="biorxiv", help="records of another server are excluded (counted)")
    s.add_argument("--categories", type=json_arg, default=None,
                   help="JSON list of bioRxiv categories to keep (case-insensitive), or null for all")
    s.add_argument("--out", required=True, type=Path, help="papers parquet (PAPER_SCHEMA of this module)")
    s.add_argument("--rejects", required=True, type=Path, help="rejected records and files, JSON lines")
    s.add_argument("--summary", type=Path, help="JSON file with counts")
    add_bad_input_args(s)

    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "harvest":
        quiet_http_logs()  # the progress bar says as much
        harvest(args.base_url, args.server, args.windows, args.out_dir, policy_of(args), args.done)
    else:
        bad = BadInput.from_args(args, Rejects())
        papers, summary = parse(args.pages, args.server, args.categories, bad)
        write(papers, summary, bad, args.out, args.rejects, args.summary)


if __name__ == "__main__":
    run_main(main)
