"""arXiv over OAI-PMH: a resumable ListRecords harvester and the parser of its pages into the paper table.

``harvest`` writes every response page verbatim (native OAI-PMH XML) as DIR/page-00001.xml, page-00002.xml, ... and
after each page the state DIR/state.json (next resumption token, counts). Killed at any point and re-run, it goes on
from the state: a page written before its state update is simply fetched again under the same number. A local
snapshot is just such a directory, so ``parse`` reads downloads and snapshots the same way; it also reads harvests
made by other tools: every *.xml or *.xml.gz file under the directories, ListRecords pages and GetRecord answers
alike (any other verb holds no records, and its file is a bad file with that reason).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from lxml import etree
from tqdm import tqdm

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import Rejects, write_bytes_atomic, write_json_atomic
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.errors import BadFileError, RecordError, UnusableFile, run_main
from workflow_scripts.sources.http import HarvestError, PoliteClient, RetryPolicy
from workflow_scripts.sources.reader_io import (
    XML_PARSER,
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

OAI = "http://www.openarchives.org/OAI/2.0/"
ARXIV = "http://arxiv.org/OAI/arXiv/"
NS = {"oai": OAI, "a": ARXIV}
MAX_TOKEN_RESTARTS = 3  # an expired token restarts the set; a server that always expires them must not loop forever

__all__ = ["harvest", "parse_pages", "BadFileError", "HarvestError"]


# --------------------------------------------------------------------------------------------------------------------
# harvest


def _state_path(out_dir: Path) -> Path:
    return out_dir / "state.json"


def _fresh_state(request: dict) -> dict:
    return {"request": request, "next_token": None, "pages": 0, "records": 0, "deleted": 0,
            "complete": False, "complete_list_size": None}


def _load_state(out_dir: Path, request: dict) -> dict:
    path = _state_path(out_dir)
    if not path.exists():
        return _fresh_state(request)
    state = json.loads(path.read_text(encoding="utf-8"))  # written atomically: whole or absent, never torn
    if state.get("request") != request:
        # pages of another set or date window must not mix with this one: start over in this directory
        log.warning("%s holds a harvest of %s, not %s: removing its pages and starting over",
                    out_dir, state.get("request"), request)
        for page in out_dir.glob("page-*.xml"):
            page.unlink()
        return _fresh_state(request)
    return state


def _page_path(out_dir: Path, n: int) -> Path:
    return out_dir / f"page-{n:05d}.xml"


def harvest(
    base_url: str,
    set_spec: str,
    out_dir: Path,
    from_date: str | None = None,
    until_date: str | None = None,
    metadata_prefix: str = "arXiv",
    policy: RetryPolicy | None = None,
    done: Path | None = None,
) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir)
    request = {"set": set_spec, "from": from_date, "until": until_date, "metadata_prefix": metadata_prefix}
    state = _load_state(out_dir, request)
    if state["complete"]:
        log.info("%s: harvest of set %s already complete (%d pages)", out_dir, set_spec, state["pages"])
    elif state["pages"]:
        log.info("%s: resuming set %s after page %d (%d records so far)",
                 out_dir, set_spec, state["pages"], state["records"])

    first = {"verb": "ListRecords", "metadataPrefix": metadata_prefix, "set": set_spec}
    first.update({k: v for k, v in (("from", from_date), ("until", until_date)) if v})
    restarts = 0
    with PoliteClient(policy) as client, tqdm(
        total=state["complete_list_size"], initial=state["records"], unit="rec", desc=f"oai {set_spec}",
        file=sys.stderr, disable=state["complete"],
    ) as bar:
        while not state["complete"]:
            # resumed requests carry only the token (OAI-PMH 3.5: resumptionToken is an exclusive argument)
            sent = state["next_token"]
            params = first if sent is None else {"verb": "ListRecords", "resumptionToken": sent}
            resp = client.get(base_url, params=params)
            try:
                root = etree.fromstring(resp.content, XML_PARSER)
            except etree.XMLSyntaxError as exc:
                raise HarvestError(f"{resp.url}: response is not well-formed XML: {exc}") from None
            if root.tag != f"{{{OAI}}}OAI-PMH":  # e.g. a proxy's HTML page with status 200: never save it as a page
                raise HarvestError(f"{resp.url}: not an OAI-PMH response (root element {root.tag})")
            error = root.find("oai:error", NS)
            if error is not None:
                code = error.get("code")
                if code == "noRecordsMatch":
                    log.info("set %s: noRecordsMatch, nothing to harvest in this window", set_spec)
                    state.update(next_token=None, complete=True)
                elif code == "badResumptionToken" and sent is not None:
                    restarts += 1
                    if restarts > MAX_TOKEN_RESTARTS:
                        raise HarvestError(f"{resp.url}: badResumptionToken {restarts} times, giving up")
                    log.warning("set %s: resumption token expired at page %d (%s); restarting the set from the "
                                "first request (pages are overwritten, parse dedupes)",
                                set_spec, state["pages"] + 1, (error.text or "").strip())
                    state = _fresh_state(request)
                    bar.reset(total=None)
                else:
                    raise HarvestError(f"{resp.url}: OAI-PMH error {code}: {(error.text or '').strip()}")
                write_json_atomic(_state_path(out_dir), state)
                continue

            if root.find("oai:ListRecords", NS) is None:
                raise HarvestError(f"{resp.url}: OAI-PMH response without ListRecords or error")
            records = root.findall("oai:ListRecords/oai:record", NS)
            deleted = len(root.findall("oai:ListRecords/oai:record/oai:header[@status='deleted']", NS))
            token_el = root.find("oai:ListRecords/oai:resumptionToken", NS)
            token = (token_el.text or "").strip() if token_el is not None else ""
            size = token_el.get("completeListSize") if token_el is not None else None

            n = state["pages"] + 1
            # page first, then state: a kill in between fetches this page again under the same number
            write_bytes_atomic(_page_path(out_dir, n), resp.content)
            state.update(pages=n, records=state["records"] + len(records), deleted=state["deleted"] + deleted,
                         next_token=token or None, complete=not token)
            if size and size.isdigit():
                state["complete_list_size"] = int(size)
                bar.total = int(size)
            write_json_atomic(_state_path(out_dir), state)
            bar.update(len(records))

    # an expired-token restart can end with fewer pages than the first pass wrote: drop the stale tail
    for page in sorted(out_dir.glob("page-*.xml")):
        if page.stem[5:].isdigit() and int(page.stem[5:]) > state["pages"]:
            log.info("removing stale %s (beyond the %d pages of the finished harvest)", page, state["pages"])
            page.unlink()

    summary = {"set": set_spec, "from": from_date, "until": until_date, "pages": state["pages"],
               "records": state["records"], "deleted": state["deleted"]}
    log.info("set %s complete: %d pages, %d records (%d deleted)",
             set_spec, state["pages"], state["records"], state["deleted"])
    if done:
        write_json_atomic(done, summary)
    return summary


# --------------------------------------------------------------------------------------------------------------------
# parse


def _text(el, path: str) -> str | None:
    return xml_text(el, path, NS)


def _record(rec, field_of: FieldMapper) -> dict:
    meta = rec.find("oai:metadata/a:arXiv", NS)
    if meta is None:
        raise RecordError("missing metadata (no arXiv element)")
    authors = []
    for a in meta.iterfind("a:authors/a:author", NS):
        parts = [_text(a, f"a:{p}") for p in ("forenames", "keyname", "suffix")]
        authors.append(" ".join(p.strip() for p in parts if p and p.strip()))
    created = date_of(_text(meta, "a:created"), "created")
    return make_record(
        raw_id=_text(meta, "a:id") or _text(rec, "oai:header/oai:identifier") or "",
        title=_text(meta, "a:title"),
        abstract=_text(meta, "a:abstract"),
        authors=authors,
        categories=(_text(meta, "a:categories") or "").split(),
        published=created,
        updated=date_of(_text(meta, "a:updated"), "updated"),  # absent: make_record uses the created date
        doi=_text(meta, "a:doi"),
        journal_ref=_text(meta, "a:journal-ref"),
        source="oai_pmh",
        field_of=field_of,
    )


RECORD_VERBS = ("ListRecords", "GetRecord")
_ENVELOPE = {"responseDate", "request", "error"}


def response_verb(root) -> str | None:
    """The verb of a response: the name of its element after responseDate and request (ListRecords, GetRecord,
    Identify, ListIdentifiers, ...)."""
    for child in root:
        if isinstance(child.tag, str) and etree.QName(child).localname not in _ENVELOPE:
            return etree.QName(child).localname
    return None


def in_sets(set_specs: list[str], sets: list[str]) -> bool:
    """A record belongs when one of its setSpecs is a configured set or lies under one ('physics:hep-th' under
    'physics')."""
    return any(spec == s or spec.startswith(s + ":") for spec in set_specs for s in sets)


def parse_pages(dirs: list[Path], field_of: FieldMapper, bad: BadInput, sets: list[str] | None = None):
    """-> (frames, counts). Deleted records and records outside ``sets`` are counted, bad records and bad pages go to
    the rejects (bad pages through ``bad``)."""
    frames = []
    counts = {"pages": 0, "records": 0, "deleted": 0, "outside_sets": 0, "largest_page": 0}
    outside_examples = []
    for path in list_pages(dirs):
        root = load_xml(path, bad, f"{{{OAI}}}OAI-PMH")
        counts["pages"] += 1
        if root is None:
            continue
        error = root.find("oai:error", NS)
        if error is not None and error.get("code") != "noRecordsMatch":
            text = f"OAI-PMH error {error.get('code')}: {(error.text or '').strip()}"
            bad.add(path, UnusableFile("error response", text), raw=etree.tostring(error, encoding="unicode"))
            continue
        verb = response_verb(root)
        if error is None and verb not in RECORD_VERBS:
            what = f"an OAI-PMH {verb} response" if verb else "an OAI-PMH response without a verb element"
            bad.add(path, UnusableFile("no records", f"{what}: only ListRecords and GetRecord responses hold records"),
                    raw=etree.tostring(root, encoding="unicode")[:500])
            continue
        rows = []
        page_records = root.findall(f"oai:{verb}/oai:record", NS) if verb else []
        counts["largest_page"] = max(counts["largest_page"], len(page_records))
        for i, rec in enumerate(page_records, 1):
            counts["records"] += 1
            header = rec.find("oai:header", NS)
            ident = (_text(header, "oai:identifier") if header is not None else None) or f"record {i}"
            if header is not None and header.get("status") == "deleted":
                counts["deleted"] += 1
                continue
            specs = [s.text.strip() for s in rec.iterfind("oai:header/oai:setSpec", NS) if s.text]
            if sets and not in_sets(specs, sets):
                counts["outside_sets"] += 1
                outside_examples.append(f"{ident} {specs}")
                continue
            try:
                rows.append(_record(rec, field_of))
            except RecordError as exc:
                bad.rejects.add(path, ident, str(exc), raw=etree.tostring(rec, encoding="unicode"))
        frames.append(records_frame(rows))
    log.info("%d pages, %d records, %d deleted records (not papers, not rejects)",
             counts["pages"], counts["records"], counts["deleted"])
    if counts["outside_sets"]:
        log.info("%d record(s) outside the configured sets %s excluded, e.g. %s",
                 counts["outside_sets"], sets, outside_examples[:5])
    return frames, counts


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    h = sub.add_parser("harvest", help="ListRecords of one set into DIR/page-NNNNN.xml (resumable)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    h.add_argument("--base-url", required=True, help="OAI-PMH endpoint, e.g. https://oaipmh.arxiv.org/oai")
    h.add_argument("--set", required=True, dest="set_spec", help="OAI set, e.g. cs or physics:hep-ph")
    h.add_argument("--out-dir", required=True, type=Path, help="page-NNNNN.xml files and state.json")
    h.add_argument("--from", dest="from_date", help="YYYY-MM-DD, first request only")
    h.add_argument("--until", dest="until_date", help="YYYY-MM-DD, first request only")
    h.add_argument("--metadata-prefix", default="arXiv", help="metadata format")
    h.add_argument("--min-interval-s", type=float, default=3.0, help="seconds between requests (arXiv asks >= 3)")
    h.add_argument("--max-retries", type=int, default=8, help="retries on 429/5xx/network errors")
    h.add_argument("--backoff-base-s", type=float, default=2.0, help="exponential backoff base without Retry-After")
    h.add_argument("--backoff-max-s", type=float, default=300.0, help="backoff cap")
    h.add_argument("--timeout-s", type=float, default=120.0, help="per-request timeout")
    h.add_argument("--done", type=Path, help="JSON summary written when the set is complete (the Snakemake output)")

    s = sub.add_parser("parse", help="pages -> papers parquet + rejects",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--pages", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.xml (or *.xml.gz) responses, any name")
    s.add_argument("--sets", nargs="+", metavar="SET",
                   help="keep records whose header setSpec is one of these sets or under one (physics:hep-th is "
                        "under physics); default: all")
    add_table_args(s)

    args = p.parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "harvest":
        policy = RetryPolicy(args.min_interval_s, args.max_retries, args.backoff_base_s, args.backoff_max_s,
                             args.timeout_s)
        harvest(args.base_url, args.set_spec, args.out_dir, args.from_date, args.until_date, args.metadata_prefix,
                policy, args.done)
    else:
        bad = BadInput.from_args(args, Rejects())
        frames, counts = parse_pages(args.pages, field_mapper(args), bad, args.sets)
        lost = lost_to_bad_pages(len(bad), counts.pop("largest_page"))
        write_table(frames, bad, args, {"source": "oai_pmh", **counts}, lost)


if __name__ == "__main__":
    run_main(main)
