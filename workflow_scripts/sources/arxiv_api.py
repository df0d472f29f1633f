"""arXiv API (Atom feeds) for incremental updates: a resumable query fetcher and the parser of its feeds.

``fetch`` runs each configured query (a category and a submission-date window, or an id list) with the ``arxiv``
package's Client/Search paging, but every page request goes through PoliteClient (interval, retries, Retry-After)
and each page's raw Atom bytes are saved as DIR/<query name>/page-NNNNN.xml, with DIR/<query name>/state.json
updated after each page. ``parse`` reads such directories, or any local snapshot of Atom feed files, the same way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import arxiv
from arxiv import _feed as arxiv_feed
from lxml import etree

from workflow_scripts.common.cli import json_arg, parser, setup_logging
from workflow_scripts.common.io import Rejects, write_bytes_atomic, write_json_atomic
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.errors import BadFileError, RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import HarvestError, PoliteClient, RetryPolicy
from workflow_scripts.sources.reader_io import (
    add_table_args,
    date_of,
    field_mapper,
    list_pages,
    load_xml,
    lost_to_bad_pages,
    remove_stale_temp_files,
    write_table,
    xml_text,
)
from workflow_scripts.sources.records import FieldMapper, make_record, records_frame

log = logging.getLogger(__name__)

ATOM = "http://www.w3.org/2005/Atom"
NS = {"atom": ATOM, "arxiv": "http://arxiv.org/schemas/atom", "opensearch": "http://a9.com/-/spec/opensearch/1.1/"}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_STRICT = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


# --------------------------------------------------------------------------------------------------------------------
# fetch


def search_of(query: dict) -> arxiv.Search:
    """Config query -> arxiv.Search. Submission-date order keeps start/max_results paging stable between requests."""
    order = dict(sort_by=arxiv.SortCriterion.SubmittedDate, sort_order=arxiv.SortOrder.Ascending, max_results=None)
    if query.get("id_list"):
        return arxiv.Search(id_list=list(query["id_list"]), **order)
    if query.get("category") and query.get("from_date") and query.get("until_date"):
        lo = dt.date.fromisoformat(query["from_date"]).strftime("%Y%m%d")
        hi = dt.date.fromisoformat(query["until_date"]).strftime("%Y%m%d")
        return arxiv.Search(query=f"cat:{query['category']} AND submittedDate:[{lo}0000 TO {hi}2359]", **order)
    raise ValueError(f"query {query.get('name')!r} needs id_list, or category + from_date + until_date: {query}")


if not callable(getattr(arxiv.Client, "_parse_feed", None)):
    # SavingClient overrides this private method; if a new arxiv release renames it, pages would silently go unsaved
    raise ImportError(f"arxiv {arxiv.__version__}: arxiv.Client._parse_feed is gone; "
                      "adapt SavingClient (written for arxiv 4.x)")


class SavingClient(arxiv.Client):
    """arxiv.Client whose page fetch (``_parse_feed``, the one method all paging goes through) uses PoliteClient and
    saves each page verbatim before handing the parsed feed back to the package's paging loop."""

    def __init__(
        self, base_url: str, http: PoliteClient, query_dir: Path, state: dict, page_size: int, num_retries: int
    ):
        # delay 0: PoliteClient spaces the requests (and honours Retry-After, which the package does not)
        super().__init__(page_size=page_size, delay_seconds=0.0, num_retries=num_retries)
        self.query_url_format = base_url + ("&" if "?" in base_url else "?") + "{}"
        self.http, self.query_dir, self.state = http, query_dir, state

    def _parse_feed(self, url: str, first_page: bool = True, _try_index: int = 0) -> arxiv_feed.ParsedFeed:
        problem = ""
        for attempt in range(self.num_retries + 1):
            body = self.http.get(url).content
            try:
                # the package's parser silently recovers from a truncated body; a saved page must be whole
                etree.fromstring(body, _STRICT)
            except etree.XMLSyntaxError as exc:
                problem = f"response is not well-formed XML: {exc}"
            else:
                feed = arxiv_feed.parse(body)
                if feed.results or first_page:
                    break
                # the API sporadically answers a later page with zero entries; asking again usually fixes it
                problem = "page unexpectedly empty"
            log.warning("%s: %s (attempt %d/%d)", url, problem, attempt + 1, self.num_retries + 1)
        else:
            raise HarvestError(f"{url}: {problem} after {self.num_retries + 1} attempts")
        self._save(url, body, feed)
        return feed

    def _save(self, url: str, body: bytes, feed: arxiv_feed.ParsedFeed) -> None:
        st = self.state
        n = st["pages"] + 1
        write_bytes_atomic(self.query_dir / f"page-{n:05d}.xml", body)  # page first, then state (kill-safe)
        start = int(parse_qs(urlsplit(url).query).get("start", ["0"])[0])
        # same arithmetic as the package's paging loop, so a resumed run asks for exactly the next page
        st.update(pages=n, records=st["records"] + len(feed.results), next_start=start + len(feed.results),
                  total_results=feed.header.total_results)
        write_json_atomic(self.query_dir / "state.json", st)
        log.info("%s: page %d saved (%d entries, %d/%d)",
                 self.query_dir.name, n, len(feed.results), st["next_start"], st["total_results"])


def _load_state(query_dir: Path, query: dict) -> dict:
    path = query_dir / "state.json"
    fresh = {"query": query, "pages": 0, "records": 0, "next_start": 0, "total_results": None, "complete": False}
    if not path.exists():
        return fresh
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("query") != query:
        # another window or id list under the same name: its pages must not mix with this query's
        log.warning("%s holds query %s, not %s: removing it and starting over", query_dir, state.get("query"), query)
        shutil.rmtree(query_dir)
        query_dir.mkdir(parents=True)
        return fresh
    return state


def fetch(
    queries: list[dict],
    out_dir: Path,
    base_url: str = "https://export.arxiv.org/api/query",
    page_size: int = 500,
    delay_s: float = 3.0,
    num_retries: int = 5,
    done: Path | None = None,
) -> dict:
    names = [q.get("name") for q in queries]
    bad = [n for n in names if not isinstance(n, str) or not _NAME_RE.match(n)]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"query names must be unique and match {_NAME_RE.pattern}: {names}")
    summary = {"queries": {}, "pages": 0, "records": 0}
    with PoliteClient(RetryPolicy(min_interval_s=delay_s, max_retries=num_retries)) as http:
        for query in queries:
            search = search_of(query)  # validates the query before anything is written
            query_dir = Path(out_dir) / query["name"]
            query_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(query_dir)
            state = _load_state(query_dir, query)
            if state["complete"]:
                log.info("%s: already complete (%d pages)", query["name"], state["pages"])
            else:
                if state["pages"]:
                    log.info("%s: resuming at result %d after page %d",
                             query["name"], state["next_start"], state["pages"])
                client = SavingClient(base_url, http, query_dir, state, page_size, num_retries)
                before = state["records"]
                yielded = sum(1 for _ in client.results(search, offset=state["next_start"]))  # pages land on disk
                if yielded != state["records"] - before:
                    saved = state["records"] - before
                    raise HarvestError(f"{query['name']}: {yielded} results fetched but {saved} saved")
                state["complete"] = True
                write_json_atomic(query_dir / "state.json", state)
            summary["queries"][query["name"]] = {k: state[k] for k in ("pages", "records", "total_results")}
            summary["pages"] += state["pages"]
            summary["records"] += state["records"]
    log.info("%d queries complete: %d pages, %d entries", len(queries), summary["pages"], summary["records"])
    if done:
        write_json_atomic(done, summary)
    return summary


# --------------------------------------------------------------------------------------------------------------------
# parse


def _text(el, path: str) -> str | None:
    return xml_text(el, path, NS)


def _record(entry, field_of: FieldMapper) -> dict:
    raw_id = (_text(entry, "atom:id") or "").strip()
    raw_id = raw_id.split("/abs/", 1)[1] if "/abs/" in raw_id else raw_id  # http://arxiv.org/abs/2501.00001v2
    primary_el = entry.find("arxiv:primary_category", NS)
    primary = primary_el.get("term") if primary_el is not None else None
    cats = [c.get("term") for c in entry.iterfind("atom:category", NS) if c.get("term")]
    if primary:  # the primary category leads, as in the other readers
        cats = [primary] + [c for c in cats if c != primary]
    return make_record(
        raw_id=raw_id,
        title=_text(entry, "atom:title"),
        abstract=_text(entry, "atom:summary"),
        authors=[_text(a, "atom:name") or "" for a in entry.iterfind("atom:author", NS)],
        categories=cats,
        published=date_of(_text(entry, "atom:published"), "published"),
        updated=date_of(_text(entry, "atom:updated"), "updated"),
        doi=_text(entry, "arxiv:doi"),
        journal_ref=_text(entry, "arxiv:journal_ref"),
        source="api",
        field_of=field_of,
    )


def api_error(root) -> str | None:
    """The message of an error feed: the API answers a bad query with 200 and one entry whose id is .../api/errors#..."""
    for entry in root.iterfind("atom:entry", NS):
        if "/api/errors" in (_text(entry, "atom:id") or ""):
            return " ".join((_text(entry, "atom:summary") or _text(entry, "atom:title") or "error").split())
    return None


def parse_feeds(dirs: list[Path], field_of: FieldMapper, bad: BadInput):
    frames, counts = [], {"pages": 0, "records": 0, "largest_page": 0}
    for path in list_pages(dirs):
        root = load_xml(path, bad, f"{{{ATOM}}}feed")
        counts["pages"] += 1
        if root is None:
            continue
        error = api_error(root)
        if error is not None:
            bad.add(path, UnusableFile("error response", f"arXiv API error feed: {error}"))
            continue
        rows = []
        entries = root.findall("atom:entry", NS)
        counts["largest_page"] = max(counts["largest_page"], len(entries))
        for i, entry in enumerate(entries, 1):
            counts["records"] += 1
            try:
                rows.append(_record(entry, field_of))
            except RecordError as exc:
                bad.rejects.add(path, (_text(entry, "atom:id") or "").strip() or f"entry {i}", str(exc),
                                raw=etree.tostring(entry, encoding="unicode"))
        frames.append(records_frame(rows))
    log.info("%d feed pages, %d entries", counts["pages"], counts["records"])
    return frames, counts


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="run the queries, saving Atom pages under DIR/<query name>/ (resumable)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    f.add_argument("--out-dir", required=True, type=Path, help="one sub-directory per query")
    f.add_argument("--query-json", required=True, type=json_arg,
                   help='JSON list of {"name", "category", "from_date", "until_date"} or {"name", "id_list"}')
    f.add_argument("--base-url", default="https://export.arxiv.org/api/query", help="API query endpoint")
    f.add_argument("--page-size", type=int, default=500, help="max_results per request (API limit 2000)")
    f.add_argument("--delay-s", type=float, default=3.0, help="seconds between requests (arXiv asks >= 3)")
    f.add_argument("--num-retries", type=int, default=5, help="retries per page (HTTP errors, empty or broken pages)")
    f.add_argument("--done", type=Path, help="JSON summary written when every query is complete (the Snakemake output)")

    s = sub.add_parser("parse", help="Atom feeds -> papers parquet + rejects",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--feeds", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.xml (or *.xml.gz) feeds, any name")
    add_table_args(s)

    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "fetch":
        fetch(args.query_json, args.out_dir, args.base_url, args.page_size, args.delay_s, args.num_retries, args.done)
    else:
        bad = BadInput.from_args(args, Rejects())
        frames, counts = parse_feeds(args.feeds, field_mapper(args), bad)
        lost = lost_to_bad_pages(len(bad), counts.pop("largest_page"))
        write_table(frames, bad, args, {"source": "api", **counts}, lost)


if __name__ == "__main__":
    run_main(main)
