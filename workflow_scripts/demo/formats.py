"""Renderers of the demo corpus into the native formats of each source, as ``{relative path: bytes}``.

Each renderer follows what the real service returns (element order of the arXiv OAI schema, wrapped titles and
abstracts, RFC 2822 version dates in the Kaggle dump, Atom + OpenSearch for the arXiv API, the raw JSON bodies of
Semantic Scholar and OpenAlex), so the readers are exercised on the same shapes they meet on downloads.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from typing import Iterable, Sequence
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from workflow_scripts.demo.corpus import Corpus, Paper, corpus_id, openalex_id, s2_paper_id

OAI = "http://www.openarchives.org/OAI/2.0/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ARXIV = "http://arxiv.org/OAI/arXiv/"
ATOM = "http://www.w3.org/2005/Atom"
OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"
ARXIV_ATOM = "http://arxiv.org/schemas/atom"
OAI_BASE_URL = "https://oaipmh.arxiv.org/oai"
XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
API_PAGE_SIZE = 100

# archives of the physics OAI set (its records carry setSpec "physics:<archive>")
PHYSICS_ARCHIVES = ("astro-ph", "cond-mat", "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math-ph", "nlin",
                    "nucl-ex", "nucl-th", "physics", "quant-ph")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def oai_set(category: str) -> tuple[str, str]:
    """category -> (OAI set harvested, setSpec label in the record header): 'hep-th' -> ('physics', 'physics:hep-th')."""
    archive = category.split(".", 1)[0]
    if archive in PHYSICS_ARCHIVES:
        return "physics", f"physics:{archive}"
    return archive, archive


def rfc2822(t: dt.datetime) -> str:
    """'Mon, 2 Apr 2007 19:18:42 GMT' as in the Kaggle dump (day not zero-padded; English names, no locale)."""
    return f"{_DAYS[t.weekday()]}, {t.day} {_MONTHS[t.month - 1]} {t.year} {t:%H:%M:%S} GMT"


def iso_z(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=None)
def _lines(text: str, width: int) -> tuple[str, ...]:
    """Greedy word wrap (textwrap is ~20x slower and this runs for every paper in every format)."""
    lines, cur = [], ""
    for word in text.split():
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(cur)
    return tuple(lines)


def wrap_title(text: str) -> str:
    return "\n  ".join(_lines(text, 70))


def wrap_abstract(text: str) -> str:
    # arXiv keeps the submitter's line breaks and a two-space indent; readers must collapse them
    return "  " + "\n".join(_lines(text, 78)) + "\n"


def full_name(author: tuple[str, str]) -> str:
    keyname, forenames = author
    return f"{forenames} {keyname}"


def _sub(parent, tag: str, text: str | None = None, **attrib):
    el = etree.SubElement(parent, tag, {k.replace("_", "-"): v for k, v in attrib.items()})
    if text is not None:
        el.text = text
    return el


def _xml_bytes(root) -> bytes:
    return XML_DECL + etree.tostring(root, encoding="unicode").encode("utf-8") + b"\n"


def _token(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------------------------
# OAI-PMH ListRecords, metadataPrefix=arXiv


# Pages are assembled as strings (lxml element building was half the run time); the tests parse every page with lxml.


def _x(tag: str, text: str | None = None, **attrib: str) -> str:
    attrs = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrib.items())
    return f"<{tag}{attrs}/>" if text is None else f"<{tag}{attrs}>{escape(text)}</{tag}>"


def _oai_record(p: Paper) -> str:
    sets = "".join(_x("setSpec", label) for label in dict.fromkeys(oai_set(c)[1] for c in p.categories))
    header = (f"<header>{_x('identifier', f'oai:arXiv.org:{p.arxiv_id}')}{_x('datestamp', p.datestamp.isoformat())}"
              f"{sets}</header>")
    authors = "".join(f"<author>{_x('keyname', k)}{_x('forenames', f)}</author>" for k, f in p.authors)
    parts = [
        _x("id", p.arxiv_id),
        _x("created", p.versions[0].date().isoformat()),
        _x("updated", p.versions[-1].date().isoformat()) if len(p.versions) > 1 else "",
        f"<authors>{authors}</authors>",
        _x("title", wrap_title(p.title)),
        _x("categories", " ".join(p.categories)),
        # optional elements are omitted, not empty, as on arXiv (schema order: comments, report-no, journal-ref, doi)
        _x("comments", p.comments) if p.comments else "",
        _x("report-no", p.report_no) if p.report_no else "",
        _x("journal-ref", p.journal_ref) if p.journal_ref else "",
        _x("doi", p.doi) if p.doi else "",
        _x("license", p.license) if p.license else "",
        _x("abstract", wrap_abstract(p.abstract)),
    ]
    arxiv = (f'<arXiv xmlns="{ARXIV}" xsi:schemaLocation="{ARXIV} http://arxiv.org/OAI/arXiv.xsd">'
             f'{"".join(parts)}</arXiv>')
    return f"<record>{header}<metadata>{arxiv}</metadata></record>"


def _oai_deleted(arxiv_id: str, datestamp: dt.date, label: str) -> str:
    return (f'<record><header status="deleted">{_x("identifier", f"oai:arXiv.org:{arxiv_id}")}'
            f'{_x("datestamp", datestamp.isoformat())}{_x("setSpec", label)}</header></record>')


def oai_pages(corpus: Corpus, sets: Sequence[str], page_size: int, seed: int) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    open_root = (f'<OAI-PMH xmlns="{OAI}" xmlns:xsi="{XSI}" '
                 f'xsi:schemaLocation="{OAI} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">')
    for set_name in sets:
        items: list[tuple[str, str]] = [
            (p.arxiv_id, _oai_record(p)) for p in corpus.papers if any(oai_set(c)[0] == set_name for c in p.categories)
        ]
        items += [(i, _oai_deleted(i, d, oai_set(c)[1])) for i, d, c in corpus.deleted if oai_set(c)[0] == set_name]
        items.sort(key=lambda kv: kv[0])
        total = len(items)
        chunks = [items[k : k + page_size] for k in range(0, total, page_size)] or [[]]
        for n, chunk in enumerate(chunks, 1):
            cursor = (n - 1) * page_size
            body = [open_root, _x("responseDate", iso_z(corpus.fetched_at + dt.timedelta(seconds=5 * (n - 1))))]
            if n == 1:
                body.append(_x("request", OAI_BASE_URL, verb="ListRecords", metadataPrefix="arXiv", set=set_name))
            else:
                body.append(_x("request", OAI_BASE_URL, verb="ListRecords",
                               resumptionToken=f"{_token(seed, set_name)}|{cursor + 1}"))
            if not total:  # what the server answers for an empty set: an error element, no ListRecords
                body.append(_x("error", "The combination of the values of the from, until, set and metadataPrefix "
                               "arguments results in an empty list.", code="noRecordsMatch"))
            else:
                body.append("<ListRecords>")
                body.extend(record for _, record in chunk)
                # the last page carries an empty token: the list is complete
                last = n == len(chunks)
                body.append(_x("resumptionToken", None if last else f"{_token(seed, set_name)}|{cursor + page_size + 1}",
                               cursor=str(cursor), completeListSize=str(total)))
                body.append("</ListRecords>")
            body.append("</OAI-PMH>\n")
            out[f"oai_pmh/{set_name}/page-{n:05d}.xml"] = XML_DECL + "".join(body).encode("utf-8")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Kaggle metadata dump (arxiv-metadata-oai-snapshot.json): the state of each paper at the dump date


def dump_lines(corpus: Corpus) -> bytes:
    lines = []
    for p in corpus.papers:
        if not corpus.in_dump(p):
            continue
        versions = corpus.dump_versions(p)
        has_journal = p.journal_ref is not None and p.journal_version < len(versions)
        names = [full_name(a) for a in p.authors]
        authors = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        abstract = wrap_abstract(p.abstract)
        if p.arxiv_id in corpus.dump_empty_abstract:
            abstract = "" if corpus.dump_empty_abstract.index(p.arxiv_id) < 2 else "  \n"
        obj = {
            "id": p.arxiv_id,
            "submitter": full_name(p.authors[0]),
            "authors": authors,
            "title": wrap_title(p.title),
            "comments": p.comments,
            "journal-ref": p.journal_ref if has_journal else None,
            "doi": p.doi if has_journal else None,
            "report-no": p.report_no,
            "categories": " ".join(p.categories),
            "license": p.license,
            "abstract": abstract,
            "versions": [{"version": f"v{k}", "created": rfc2822(v)} for k, v in enumerate(versions, 1)],
            "update_date": versions[-1].date().isoformat(),
            "authors_parsed": [[k, f, ""] for k, f in p.authors],
        }
        lines.append(json.dumps(obj))
        if p.arxiv_id == corpus.dump_versioned_duplicate:
            # the same paper once more under a versioned id, as the dump occasionally has
            lines.append(json.dumps({**obj, "id": f"{p.arxiv_id}v{len(versions)}"}))
    return ("\n".join(lines) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------------------------------
# arXiv API (export.arxiv.org/api/query): Atom feed pages of one query


def _api_entry(feed, p: Paper) -> None:
    e = _sub(feed, f"{{{ATOM}}}entry")
    version = len(p.versions)
    _sub(e, f"{{{ATOM}}}id", f"http://arxiv.org/abs/{p.arxiv_id}v{version}")
    _sub(e, f"{{{ATOM}}}updated", iso_z(p.versions[-1]))
    _sub(e, f"{{{ATOM}}}published", iso_z(p.versions[0]))
    _sub(e, f"{{{ATOM}}}title", wrap_title(p.title))
    _sub(e, f"{{{ATOM}}}summary", wrap_abstract(p.abstract))
    for author in p.authors:
        au = _sub(e, f"{{{ATOM}}}author")
        _sub(au, f"{{{ATOM}}}name", full_name(author))
    if p.doi:
        _sub(e, f"{{{ARXIV_ATOM}}}doi", p.doi)
        _sub(e, f"{{{ATOM}}}link", title="doi", href=f"http://dx.doi.org/{p.doi}", rel="related")
    if p.comments:
        _sub(e, f"{{{ARXIV_ATOM}}}comment", p.comments)
    if p.journal_ref:
        _sub(e, f"{{{ARXIV_ATOM}}}journal_ref", p.journal_ref)
    _sub(e, f"{{{ATOM}}}link", href=f"http://arxiv.org/abs/{p.arxiv_id}v{version}", rel="alternate", type="text/html")
    _sub(e, f"{{{ATOM}}}link", title="pdf", href=f"http://arxiv.org/pdf/{p.arxiv_id}v{version}", rel="related",
         type="application/pdf")
    _sub(e, f"{{{ARXIV_ATOM}}}primary_category", term=p.primary, scheme="http://arxiv.org/schemas/atom")
    for c in p.categories:
        _sub(e, f"{{{ATOM}}}category", term=c, scheme="http://arxiv.org/schemas/atom")


def api_pages(name: str, search_query: str, papers: Sequence[Paper], fetched_at: dt.datetime) -> dict[str, bytes]:
    """Pages of one query sorted by submission date, newest first (sortBy=submittedDate&sortOrder=descending)."""
    entries = sorted(papers, key=lambda p: (p.published, p.arxiv_id), reverse=True)
    total = len(entries)
    chunks = [entries[k : k + API_PAGE_SIZE] for k in range(0, total, API_PAGE_SIZE)] or [[]]
    out = {}
    for n, chunk in enumerate(chunks, 1):
        start = (n - 1) * API_PAGE_SIZE
        query = (f"search_query={search_query}&id_list=&start={start}&max_results={API_PAGE_SIZE}"
                 "&sortBy=submittedDate&sortOrder=descending")
        feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM, "opensearch": OPENSEARCH, "arxiv": ARXIV_ATOM})
        # the API echoes the query percent-encoded in the self link and verbatim in the title
        _sub(feed, f"{{{ATOM}}}link", href=f"http://arxiv.org/api/query?{quote(query, safe='')}", rel="self",
             type="application/atom+xml")
        _sub(feed, f"{{{ATOM}}}title", f"arXiv Query: {query}", type="html")
        _sub(feed, f"{{{ATOM}}}id", f"http://arxiv.org/api/{_token(name, query)}")
        _sub(feed, f"{{{ATOM}}}updated", iso_z(fetched_at + dt.timedelta(seconds=3 * (n - 1))))
        _sub(feed, f"{{{OPENSEARCH}}}totalResults", str(total))
        _sub(feed, f"{{{OPENSEARCH}}}startIndex", str(start))
        _sub(feed, f"{{{OPENSEARCH}}}itemsPerPage", str(API_PAGE_SIZE))
        for p in chunk:
            _api_entry(feed, p)
        out[f"arxiv_api/{name}/page-{n:05d}.xml"] = _xml_bytes(feed)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# citation sources: raw response bodies + manifest.jsonl ({file, fetched_at, ids}, keys sorted)


def _manifest(rows: Iterable[dict]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode("utf-8")


def s2_batches(corpus: Corpus, batch_size: int, seed: int, fetched_at: str) -> dict[str, bytes]:
    """POST /paper/batch?fields=citationCount,externalIds,publicationDate: a JSON array aligned with the request,
    null for a paper Semantic Scholar does not know."""
    papers = sorted(corpus.papers, key=lambda p: p.arxiv_id)
    out, manifest = {}, []
    for n, k in enumerate(range(0, len(papers), batch_size), 1):
        batch = papers[k : k + batch_size]
        body = []
        for p in batch:
            if not p.s2_found:
                body.append(None)
                continue
            ext = {"ArXiv": p.arxiv_id, "DOI": p.doi or f"10.48550/arXiv.{p.arxiv_id}", "CorpusId": corpus_id(seed, p.arxiv_id)}
            body.append({
                "paperId": s2_paper_id(seed, p.arxiv_id),
                "externalIds": ext,
                "citationCount": p.citation_count,
                "publicationDate": None if p.s2_date_missing else p.published.date().isoformat(),
            })
        name = f"batch-{n:06d}.json"
        out[f"semantic_scholar/{name}"] = (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")
        manifest.append({"file": name, "fetched_at": fetched_at, "ids": [p.arxiv_id for p in batch]})
    out["semantic_scholar/manifest.jsonl"] = _manifest(manifest)
    return out


def openalex_pages(corpus: Corpus, batch_size: int, seed: int, fetched_at: str) -> dict[str, bytes]:
    """GET /works?filter=doi:10.48550/arxiv.X|...&per_page=50: only the works found, in OpenAlex's order (not the
    request's), DOIs lowercased as OpenAlex stores them."""
    papers = sorted(corpus.papers, key=lambda p: p.arxiv_id)
    out, manifest = {}, []
    for n, k in enumerate(range(0, len(papers), batch_size), 1):
        batch = papers[k : k + batch_size]
        results = []
        for p in batch:
            if not p.s2_found:
                continue
            wid = f"https://openalex.org/{openalex_id(seed, p.arxiv_id)}"
            doi = f"https://doi.org/10.48550/arxiv.{p.arxiv_id}".lower()
            results.append({
                "id": wid,
                "doi": doi,
                "title": p.title,
                "display_name": p.title,
                "publication_year": p.published.year,
                "publication_date": p.published.date().isoformat(),
                "ids": {"openalex": wid, "doi": doi},
                "type": "preprint",
                "cited_by_count": p.citation_count,
            })
        results.sort(key=lambda r: r["id"])
        body = {
            "meta": {"count": len(results), "db_response_time_ms": 20 + n % 17, "page": 1, "per_page": batch_size,
                     "groups_count": None},
            "results": results,
            "group_by": [],
        }
        name = f"page-{n:06d}.json"
        out[f"openalex/{name}"] = (json.dumps(body, ensure_ascii=False) + "\n").encode("utf-8")
        manifest.append({"file": name, "fetched_at": fetched_at, "ids": [p.arxiv_id for p in batch]})
    out["openalex/manifest.jsonl"] = _manifest(manifest)
    return out
