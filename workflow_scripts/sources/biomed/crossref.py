"""Crossref ``/works`` listings: the discovery step of the sources whose journals have no listing API of their own
(F1000Research and its sister platforms, PeerJ, the Nature portfolio).

``GET {base}/works?filter=k:v,k:v&rows=N&cursor=*&mailto=...`` answers ``{"status": "ok", "message-type":
"work-list", "message": {"next-cursor", "total-results", "items-per-page", "items": [work, ...]}}``; the next request
sends the answer's ``next-cursor``, and the listing ends at an answer with no items. Cursor paging only: offset paging
(``offset=``) stops at 10,000 results. A cursor expires five minutes after its last use, so a resumed harvest whose
cursor is older than that starts the listing again from ``*`` (pages rewritten under the same numbers, stale ones
removed at the end). The e-mail address goes in both the ``mailto`` parameter and the User-Agent (the polite pool).

Every answer is saved verbatim as ``out_dir/pages/page-NNNNN.json``, then ``out_dir/state.json`` (next cursor, counts):
a kill between the two fetches that page again under the same number. ``read_works`` reads saved pages of any name.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import polars as pl

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import Rejects, write_bytes_atomic, write_json_atomic
from workflow_scripts.sources.bad_input import BadInput, error_answer, load_json_file
from workflow_scripts.sources.biomed import source_io
from workflow_scripts.sources.biomed.source_io import add_window_args
from workflow_scripts.sources.doi import normalize_doi
from workflow_scripts.sources.duplicates import keep_latest
from workflow_scripts.sources.errors import RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import (USER_AGENT, HarvestError, PoliteClient, RetryPolicy, add_policy_args,
                                           policy_of, quiet_http_logs)
from workflow_scripts.sources.reader_io import list_pages, remove_stale_temp_files
from workflow_scripts.sources.records import clean_text

log = logging.getLogger(__name__)

BASE_URL = "https://api.crossref.org"
CURSOR_TTL_S = 240.0  # Crossref: a cursor expires 5 minutes after its last use; a margin for the request in flight
MAX_ROWS = 1000  # the API's largest page
RESERVED_PARAMS = ("filter", "rows", "cursor", "mailto", "offset")
PAGE_SUFFIXES = (".json", ".json.gz")
WORK_SCHEMA: dict[str, pl.DataType] = {
    "doi": pl.String,  # lowercased
    "title": pl.String,
    "container_title": pl.String,
    "published": pl.Date,  # the work's earliest publication date Crossref has ("published", else "issued", ...)
    "type": pl.String,
    "license_urls": pl.List(pl.String),
    "url": pl.String,  # the landing page (resource.primary.URL), else the DOI link
}
DATE_FIELDS = ("published", "issued", "published-online", "published-print", "created")


def polite_client(policy: RetryPolicy | None, mailto: str | None) -> PoliteClient:
    """A client in Crossref's polite pool: the contact address in the User-Agent too."""
    agent = f"{USER_AGENT} (mailto:{mailto})" if mailto else USER_AGENT
    return PoliteClient(policy, headers={"User-Agent": agent})


# --------------------------------------------------------------------------------------------------------------------
# one answer: shared by the harvester (before saving) and the reader


def read_answer(obj: Any) -> dict:
    """The ``message`` of a work-list answer; UnusableFile (kind + reason) when ``obj`` is not a usable one."""
    if not isinstance(obj, dict):
        raise UnusableFile("wrong source", f"a JSON {type(obj).__name__}, not a Crossref work-list answer")
    status = obj.get("status")
    if status is None and error_answer(obj) is not None:
        raise UnusableFile("error response", f"the API answered {error_answer(obj)!r} instead of a work list")
    if status != "ok":
        detail = json.dumps(obj.get("message"))[:200] if obj.get("message") is not None else ""
        raise UnusableFile("error response", f"status {status!r}{f': {detail}' if detail else ''}")
    if obj.get("message-type") != "work-list":
        raise UnusableFile("wrong source", f"message-type {obj.get('message-type')!r}, not 'work-list'")
    message = obj.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("items"), list):
        raise UnusableFile("malformed", "no message.items list (truncated?)")
    per_page = message.get("items-per-page")
    if isinstance(per_page, int) and len(message["items"]) > per_page:
        raise UnusableFile("malformed", f"{len(message['items'])} items but items-per-page {per_page}")
    return message


# --------------------------------------------------------------------------------------------------------------------
# harvest


def _request_of(filters: dict[str, str], rows: int, query: dict | None) -> dict:
    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be 1..{MAX_ROWS}, got {rows}")
    clash = sorted(set(query or {}) & set(RESERVED_PARAMS))
    if clash:
        raise ValueError(f"query parameters {clash} are set by the harvester (offset paging is never used)")
    bad = sorted(k for k, v in filters.items() if "," in k or "," in str(v))
    if bad:
        raise ValueError(f"filter value(s) of {bad} contain ',', which separates Crossref filters")
    return {"filter": ",".join(f"{k}:{v}" for k, v in filters.items()), "rows": str(rows), **(query or {})}


def _fresh_state(request: dict) -> dict:
    return {"request": request, "cursor": "*", "cursor_at": None, "pages": 0, "records": 0, "total": None,
            "complete": False}


def _load_state(path: Path, request: dict, cursor_ttl_s: float) -> dict:
    if not path.exists():
        return _fresh_state(request)
    state = json.loads(path.read_text(encoding="utf-8"))  # written atomically: whole or absent
    if state.get("request") != request:
        log.info("%s: an earlier listing of other parameters (%s); listing again", path, state.get("request"))
        return _fresh_state(request)
    if state["complete"] or state["cursor"] == "*":
        return state
    age = time.time() - state["cursor_at"]
    if age > cursor_ttl_s:
        log.info("%s: the cursor after page %d is %.0f s old (Crossref keeps it 5 minutes); listing again from the "
                 "start, pages rewritten under the same numbers", path, state["pages"], age)
        return _fresh_state(request)
    log.info("%s: resuming after page %d", path, state["pages"])
    return state


def harvest_works(client: PoliteClient, base_url: str, *, filters: dict[str, str], out_dir: Path,
                  mailto: str | None, rows: int = MAX_ROWS, query: dict | None = None,
                  cursor_ttl_s: float = CURSOR_TTL_S) -> dict:
    """Page through the works matching ``filters`` into ``out_dir``; resumes from ``out_dir/state.json``.
    Returns the state (pages, records, total) once the listing is complete."""
    out_dir = Path(out_dir)
    pages_dir, state_path = out_dir / "pages", out_dir / "state.json"
    pages_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(pages_dir)
    remove_stale_temp_files(out_dir)
    request = _request_of(filters, rows, query)
    state = _load_state(state_path, request, cursor_ttl_s)
    url = f"{base_url.rstrip('/')}/works"
    # mailto travels in params, never in the url string that logs and errors show
    params = {**request, **({"mailto": mailto} if mailto else {})}
    while not state["complete"]:
        n = state["pages"] + 1
        resp = client.get(url, params={**params, "cursor": state["cursor"]})
        where = f"GET {url} page {n} (filter {request['filter']})"
        message = source_io.read_answer(resp, read_answer, where)
        items, next_cursor = message["items"], message.get("next-cursor")
        if items and not (isinstance(next_cursor, str) and next_cursor):
            # without it the server did not page by cursor: going on would repeat the first page or skip records
            raise HarvestError(f"{where}: {len(items)} item(s) but no next-cursor in the answer")
        write_bytes_atomic(pages_dir / f"page-{n:05d}.json", resp.content)
        total = message.get("total-results")
        state.update(pages=n, cursor=next_cursor if items else state["cursor"], cursor_at=time.time(),
                     records=state["records"] + len(items), complete=not items,
                     total=total if isinstance(total, int) else state["total"])
        write_json_atomic(state_path, state)
        log.info("%s: page %d, %d of %s work(s)", request["filter"], n, state["records"], state["total"])
    for page in sorted(pages_dir.glob("page-*.json")):  # beyond the finished listing: left by an earlier one
        if page.stem[5:].isdigit() and int(page.stem[5:]) > state["pages"]:
            log.info("removing stale %s (beyond the %d pages of the finished listing)", page, state["pages"])
            page.unlink()
    if state["total"] is not None and state["records"] != state["total"]:
        log.warning("%s: the listing ended with %d work(s) of the %d its total-results announced",
                    request["filter"], state["records"], state["total"])
    return state


# --------------------------------------------------------------------------------------------------------------------
# read


def _first(value: Any) -> str | None:
    """Crossref gives titles as lists of strings."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    return clean_text(value) if isinstance(value, str) else None


def date_of(work: dict):
    """The first of DATE_FIELDS with a usable ``date-parts`` (a year alone, or year and month, count as the 1st)."""
    for name in DATE_FIELDS:
        parts = ((work.get(name) or {}).get("date-parts") or [[]])[0]
        if parts and isinstance(parts[0], int):
            year, month, day = (list(parts) + [1, 1])[:3]
            try:
                return dt.date(year, month or 1, day or 1)
            except (TypeError, ValueError):
                raise RecordError(f"bad {name} date-parts: {parts!r}") from None
    return None


def work_row(work: Any) -> dict:
    """One work, normalized; RecordError naming the missing or bad field."""
    if not isinstance(work, dict):
        raise RecordError(f"malformed work: expected an object, got {type(work).__name__}")
    if not isinstance(work.get("DOI"), str):
        raise RecordError("missing DOI")
    licenses = work.get("license") or []
    resource = ((work.get("resource") or {}).get("primary") or {}).get("URL")
    return {
        "doi": normalize_doi(work["DOI"]),
        "title": _first(work.get("title")),
        "container_title": _first(work.get("container-title")),
        "published": date_of(work),
        "type": work.get("type") if isinstance(work.get("type"), str) else None,
        "license_urls": [lic["URL"] for lic in licenses if isinstance(lic, dict) and isinstance(lic.get("URL"), str)],
        "url": resource if isinstance(resource, str) else work.get("URL"),
        "_indexed": ((work.get("indexed") or {}).get("date-time")),
    }


def _files(paths: list[Path]) -> list[Path]:
    files, dirs = [Path(p) for p in paths if Path(p).is_file()], [Path(p) for p in paths if not Path(p).is_file()]
    return files + list_pages(dirs, PAGE_SUFFIXES)


def read_works(paths: list[Path], bad: BadInput) -> pl.DataFrame:
    """Every work in the saved answers (files, or directories searched for *.json / *.json.gz of any name), one row
    per DOI (duplicates.py's rule: the most recently indexed copy, on a tie the one read later). Bad files and works
    go to ``bad``."""
    rows = []
    for path in _files(paths):
        try:
            message = read_answer(load_json_file(path))
        except UnusableFile as problem:
            bad.add(path, problem, raw=path.read_bytes()[:500])
            continue
        for idx, work in enumerate(message["items"]):
            try:
                rows.append(work_row(work))
            except RecordError as exc:
                name = work.get("DOI") if isinstance(work, dict) and isinstance(work.get("DOI"), str) else idx
                bad.rejects.add(path, name, str(exc), raw=work)
    frame = pl.DataFrame(rows, schema={**WORK_SCHEMA, "_indexed": pl.String}, orient="row")
    works, duplicates = keep_latest(frame, "doi", "_indexed", list(WORK_SCHEMA))
    if duplicates.dropped:
        log.info("crossref: %d work(s) listed more than once, kept once", duplicates.dropped)
    return works.drop("_indexed")


def listed_works(out_dir: Path) -> pl.DataFrame:
    """The works of a finished ``harvest_works`` into ``out_dir``, for the harvester that goes on to fetch them: its
    own pages were checked before they were saved, so a bad one now stops the harvest (HarvestError naming it)."""
    bad = BadInput(Rejects())
    works = read_works([Path(out_dir) / "pages"], bad)
    if len(bad):
        raise HarvestError(f"{out_dir}: unreadable listing page(s) {[f.file for f in bad.files]}; remove "
                           f"{Path(out_dir) / 'state.json'} to list again")
    if bad.rejects:
        log.warning("%s: %d listed work(s) without a usable DOI, not fetched: %s", out_dir, len(bad.rejects),
                    bad.rejects.counts())
    return works


def list_articles(client: PoliteClient, base_url: str, out_dir: Path, filters: dict[str, str], *,
                  from_date: dt.date, until_date: dt.date | None, mailto: str | None, rows: int) -> pl.DataFrame:
    """The journal articles matching ``filters`` published from ``from_date`` to ``until_date`` (None: open), listed
    into ``out_dir`` (resumable) and read back by listed_works: the discovery step of a source's harvester."""
    window = {"from-pub-date": from_date.isoformat(),
              **({"until-pub-date": until_date.isoformat()} if until_date else {})}
    harvest_works(client, base_url, filters={**filters, **window, "type": "journal-article"}, out_dir=out_dir,
                  mailto=mailto, rows=rows)
    return listed_works(out_dir)


# --------------------------------------------------------------------------------------------------------------------
# command line


def filter_arg(text: str) -> tuple[str, str]:
    """'container-title=PeerJ' -> ('container-title', 'PeerJ')."""
    key, sep, value = text.partition("=")
    if not (sep and key.strip() and value.strip()):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return key.strip(), value.strip()


def add_mailto_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mailto-env", default="CROSSREF_MAILTO", help="environment variable with the polite-pool email")


def add_listing_args(p: argparse.ArgumentParser, until_required: bool, own_interval: bool = True) -> None:
    """The options of a harvester whose articles come from a Crossref listing (list_articles); ``own_interval``:
    the listing's requests keep an interval of their own, --crossref-min-interval-s."""
    p.add_argument("--crossref-url", default=BASE_URL, help="the Crossref API root")
    add_mailto_arg(p)
    p.add_argument("--rows", type=int, default=MAX_ROWS, help="Crossref works a page")
    add_window_args(p, until_required)
    if own_interval:
        p.add_argument("--crossref-min-interval-s", type=float, default=1.0, help="seconds between Crossref requests")


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("harvest", help="one listing into OUT/pages/page-NNNNN.json + OUT/state.json (resumable)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    h.add_argument("--base-url", default=BASE_URL, help="the API root")
    h.add_argument("--filter", required=True, action="append", type=filter_arg, dest="filters",
                   help="NAME=VALUE Crossref filter, e.g. container-title=PeerJ (repeat for several)")
    h.add_argument("--rows", type=int, default=MAX_ROWS, help="works per page")
    add_mailto_arg(h)
    h.add_argument("--out-dir", required=True, type=Path)
    h.add_argument("--done", type=Path, help="JSON summary written when the listing is complete")
    add_policy_args(h, 1.0)

    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "harvest":
        quiet_http_logs()
        mailto = mailto_of(args.mailto_env)
        with polite_client(policy_of(args), mailto) as client:
            state = harvest_works(client, args.base_url, filters=dict(args.filters), out_dir=args.out_dir,
                                  mailto=mailto, rows=args.rows)
        if args.done:
            write_json_atomic(args.done, {k: state[k] for k in ("pages", "records", "total")})


def mailto_of(env_name: str | None) -> str | None:
    mailto = os.environ.get(env_name) if env_name else None
    if not mailto:
        log.warning("no contact address in %s: Crossref serves requests without one from its slower public pool",
                    env_name)
    return mailto or None


if __name__ == "__main__":
    run_main(main)
