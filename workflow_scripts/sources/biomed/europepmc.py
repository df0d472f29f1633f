"""Europe PMC: an article's PMCID found by its DOI through the REST search, and its JATS full text fetched, resumably
and verbatim; the body text of sources that publish their reviews apart from the article (the Nature portfolio).

Search: ``GET {base}/search?query=DOI:"<doi>"&format=json&resultType=lite&pageSize=N&cursorMark=*`` answers
``{"hitCount", "nextCursorMark", "resultList": {"result": [{"pmcid", "doi", "isOpenAccess", "inEPMC", ...}]}}``; the
next page sends the answer's ``nextCursorMark``, and the listing ends at an answer with no results (or the same cursor
again; Europe PMC also ends a listing by leaving ``nextCursorMark`` out). Full text: ``GET
{base}/{PMCID}/fullTextXML``, a JATS ``<article>``, served for the open access subset only: ``inEPMC`` "Y" says
Europe PMC shows the text on its site, which includes articles outside that subset, and for those (as for any
record without a full text) the endpoint answers 404. So it is asked for records with a PMCID, ``inEPMC`` "Y" and
``isOpenAccess`` "Y"; a 404 that still comes is a final rejects row (OUT/rejects.jsonl), never asked again.

``harvest`` saves each DOI's search answers as OUT/search/<doi with / as _>/page-NNNNN.json, then that DOI's
state.json (next cursor, counts; a page saved before its state is asked again under the same number), and each full
text as OUT/fulltext/<PMCID>.xml, never asked for again once on disk. ``parse`` reads saved search answers (any
*.json / *.json.gz under the given directories) into one row per DOI (:data:`IDS_SCHEMA`); bad files are rejects.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl

from workflow_scripts.common.io import write_bytes_atomic, write_json_atomic, write_parquet_atomic
from workflow_scripts.sources.bad_input import BadInput, error_answer, load_json_file
from workflow_scripts.sources.biomed import source_io
from workflow_scripts.sources.biomed.source_io import (Fetches, check_jats, file_key, log_failures, run_source_cli,
                                                       source_cli)
from workflow_scripts.sources.doi import normalize_doi
from workflow_scripts.sources.errors import RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import PoliteClient, policy_of
from workflow_scripts.sources.reader_io import list_pages, remove_stale_temp_files

log = logging.getLogger(__name__)

BASE_URL = "https://www.ebi.ac.uk/europepmc/webservices/rest"
PAGE_SUFFIXES = (".json", ".json.gz")
IDS_SCHEMA: dict[str, pl.DataType] = {
    "doi": pl.String,  # lowercased
    "pmcid": pl.String,  # null: Europe PMC knows the article but holds no PMC copy
    "pmid": pl.String,
    "title": pl.String,
    "journal": pl.String,
    "open_access": pl.Boolean,  # isOpenAccess "Y"
    "full_text": pl.Boolean,  # a PMCID, inEPMC "Y" and isOpenAccess "Y": fullTextXML serves it
}

# --------------------------------------------------------------------------------------------------------------------
# one search answer: shared by the harvester (before saving) and the reader


def read_answer(obj: Any) -> tuple[list[dict], str | None, int | None]:
    """(results, nextCursorMark, hitCount) of a search answer; UnusableFile when ``obj`` is not one."""
    if not isinstance(obj, dict):
        raise UnusableFile("wrong source", f"a JSON {type(obj).__name__}, not a Europe PMC search answer")
    result_list = obj.get("resultList")
    if result_list is None:
        message = error_answer(obj) or obj.get("errMsg")
        if message:
            raise UnusableFile("error response", f"the API answered {message!r} instead of search results")
        raise UnusableFile("wrong source", "no 'resultList': not a Europe PMC search answer")
    results = result_list.get("result") if isinstance(result_list, dict) else None
    if not isinstance(results, list):
        raise UnusableFile("malformed", "resultList without a 'result' list (truncated?)")
    hits = obj.get("hitCount")
    cursor = obj.get("nextCursorMark")
    return results, cursor if isinstance(cursor, str) and cursor else None, hits if isinstance(hits, int) else None


def doi_query(doi: str) -> str:
    return f'DOI:"{doi}"'


# --------------------------------------------------------------------------------------------------------------------
# harvest


def search(client: PoliteClient, base_url: str, query: str, out_dir: Path, page_size: int = 25) -> dict:
    """Every page of one query into ``out_dir`` (page-NNNNN.json, then state.json); resumes from the state.
    Returns the state once complete (pages, records, hits)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir)
    state_path = out_dir / "state.json"
    fresh = {"query": query, "cursor": "*", "pages": 0, "records": 0, "hits": None, "complete": False}
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else fresh
    if state.get("query") != query:  # a directory of another query: start over
        state = fresh
    url = f"{base_url.rstrip('/')}/search"
    while not state["complete"]:
        params = {"query": query, "format": "json", "resultType": "lite", "pageSize": str(page_size),
                  "cursorMark": state["cursor"]}
        resp = client.get(url, params=params)
        where = f"GET {url} ({query}, cursorMark {state['cursor']})"
        results, next_cursor, hits = source_io.read_answer(resp, read_answer, where)
        n = state["pages"] + 1
        write_bytes_atomic(out_dir / f"page-{n:05d}.json", resp.content)  # page first, then state
        records = state["records"] + len(results)
        ended = not results or next_cursor in (None, state["cursor"]) or (hits is not None and records >= hits)
        state.update(pages=n, records=records, hits=hits, cursor=next_cursor or state["cursor"], complete=ended)
        write_json_atomic(state_path, state)
    return state


def matching(results: list[dict], doi: str) -> dict | None:
    """The result whose DOI is ``doi`` (a DOI query may also find records that only cite it), PMC copies first."""
    same = [r for r in results if isinstance(r, dict) and str(r.get("doi") or "").lower() == doi.lower()]
    same.sort(key=lambda r: not r.get("pmcid"))
    return same[0] if same else None


def saved_results(out_dir: Path) -> list[dict]:
    return [r for page in sorted(out_dir.glob("page-*.json")) for r in read_answer(json.loads(page.read_bytes()))[0]]


def harvest(dois: list[str], client: PoliteClient, base_url: str, out_dir: Path, page_size: int = 25) -> dict:
    """Each DOI's search answers, then the full text of the matching record where Europe PMC holds it."""
    fetches = Fetches(out_dir / "failures.jsonl")
    counts = {"dois": 0, "not_found": 0, "no_pmcid": 0, "no_full_text": 0, "not_open_access": 0, "full_texts": 0}
    for doi in dict.fromkeys(d.lower() for d in dois):
        counts["dois"] += 1
        doi_dir = out_dir / "search" / file_key(doi)
        search(client, base_url, doi_query(doi), doi_dir, page_size)
        found = matching(saved_results(doi_dir), doi)
        if found is None:
            counts["not_found"] += 1
        elif not found.get("pmcid"):
            counts["no_pmcid"] += 1
        elif found.get("inEPMC") != "Y":
            counts["no_full_text"] += 1
        elif found.get("isOpenAccess") != "Y":  # shown on the site, but fullTextXML serves open access only
            counts["not_open_access"] += 1
        else:
            pmcid = found["pmcid"]
            url = f"{base_url.rstrip('/')}/{pmcid}/fullTextXML"
            if fetches.get(client, url, out_dir / "fulltext" / f"{pmcid}.xml", check_jats,
                           record=f"{doi} {pmcid}") is not None:
                counts["full_texts"] += 1
    log_failures("europepmc", fetches)
    log.info("europepmc: %s", counts)
    return {"source": "europepmc", **counts, **fetches.summary()}


# --------------------------------------------------------------------------------------------------------------------
# parse


def id_row(result: Any) -> dict:
    if not isinstance(result, dict):
        raise RecordError(f"malformed result: expected an object, got {type(result).__name__}")
    if not isinstance(result.get("doi"), str):
        raise RecordError("missing doi")
    pmcid = result.get("pmcid") or None
    return {"doi": normalize_doi(result["doi"]), "pmcid": pmcid, "pmid": result.get("pmid") or None,
            "title": result.get("title"), "journal": result.get("journalTitle"),
            "open_access": result.get("isOpenAccess") == "Y",
            "full_text": bool(pmcid) and result.get("inEPMC") == "Y" and result.get("isOpenAccess") == "Y"}


def read_ids(dirs: list[Path], bad: BadInput) -> pl.DataFrame:
    """One row per DOI of the saved search answers under ``dirs`` (a record with a PMCID preferred; then the one read
    later). Results without a DOI are rejects."""
    rows: dict[str, dict] = {}
    for path in list_pages(dirs, PAGE_SUFFIXES):
        if path.name == "state.json":  # the harvester's own bookkeeping next to the answers
            continue
        try:
            results = read_answer(load_json_file(path))[0]
        except UnusableFile as problem:
            bad.add(path, problem, raw=path.read_bytes()[:500])
            continue
        for idx, result in enumerate(results):
            try:
                row = id_row(result)
            except RecordError as exc:
                bad.rejects.add(path, result.get("id", idx) if isinstance(result, dict) else idx, str(exc), raw=result)
                continue
            if row["pmcid"] or not (rows.get(row["doi"]) or {}).get("pmcid"):
                rows[row["doi"]] = row
    return pl.DataFrame(list(rows.values()), schema=IDS_SCHEMA, orient="row").sort("doi")


# --------------------------------------------------------------------------------------------------------------------
# command line


def dois_of(path: Path) -> list[str]:
    """DOIs from a text file, one a line (blank lines and # comments skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def write_ids(ids: pl.DataFrame, bad: BadInput, args) -> None:
    """The ids table, the rejects and the summary, unless the bad-file policy stops the step (bad_input.py); a bad
    answer's records cannot be counted, so the loss is estimated as a record each."""
    summary = {"source": "europepmc", "dois": ids.height, "with_pmcid": int(ids["pmcid"].is_not_null().sum()),
               "full_text": int(ids["full_text"].sum()), "rejected": len(bad.rejects),
               "rejects": bad.rejects.counts(), **bad.summary(len(bad), ids.height + len(bad), estimated=True)}

    def write_outputs() -> None:
        write_parquet_atomic(ids, args.out)
        bad.rejects.write(args.rejects)
        write_json_atomic(args.summary, summary)

    bad.conclude("europepmc", summary, write_outputs)


def main(argv: list[str] | None = None) -> None:
    p, h, s = source_cli(__doc__, harvest_help="search answers + full texts of DOIs into OUT (resumable)",
                         parse_help="saved search answers -> one row per DOI (IDS_SCHEMA)",
                         out_dir_help="search/, fulltext/, failures.jsonl, rejects.jsonl", min_interval_s=1.0)
    h.add_argument("--base-url", default=BASE_URL, help="the REST API root")
    h.add_argument("--doi", action="append", dest="dois", default=[], help="a DOI (repeat for several)")
    h.add_argument("--dois-file", type=Path, help="a text file of DOIs, one a line")
    h.add_argument("--page-size", type=int, default=25, help="results a search page")
    s.add_argument("--search", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.json / *.json.gz search answers, any name")
    s.add_argument("--out", required=True, type=Path, help="ids parquet")

    def harvest_dois(args) -> dict:
        dois = args.dois + (dois_of(args.dois_file) if args.dois_file else [])
        if not dois:
            p.error("harvest: give --doi or --dois-file")
        with PoliteClient(policy_of(args)) as client:
            return harvest(dois, client, args.base_url, args.out_dir, args.page_size)

    run_source_cli(p, argv, harvest_dois, lambda args, bad: write_ids(read_ids(args.search, bad), bad, args))


if __name__ == "__main__":
    run_main(main)
