"""OpenAlex citation counts: GET /works filtered by the DOIs of up to 100 papers per call (arXiv: 10.48550/arXiv.<id>).

    python -m workflow_scripts.sources.openalex fetch --papers papers.parquet --out-dir DIR [--done FILE]

OpenAlex answers {"meta": {"count": ...}, "results": [...]} with DOIs lowercased as URLs
("https://doi.org/10.48550/arxiv.2101.00001"). With ``--id-kind doi`` the papers' own DOIs are the filter. Resume,
file layout and the manifest are those of :class:`workflow_scripts.sources.citations.BatchFetcher`.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterator

from workflow_scripts.sources.bad_input import error_answer
from workflow_scripts.sources.citations import BatchFetcher, checked_json, fetch_main
from workflow_scripts.sources.doi import strip_doi_url
from workflow_scripts.sources.errors import RecordError, UnusableFile
from workflow_scripts.sources.http import HarvestError, PoliteClient

DEFAULTS = {
    "base_url": "https://api.openalex.org",
    "batch_size": 50,
    "api_key_env": "OPENALEX_API_KEY",
    "min_interval_s": 0.2,
}
SELECT = "id,doi,cited_by_count,publication_date,ids"
ARXIV_DOI_PREFIX = "10.48550/arxiv."
ALIGNED = False  # only the works found, in OpenAlex's order
DOI_PREFIX = {"arxiv": ARXIV_DOI_PREFIX, "doi": ""}  # paper id -> its DOI, per id kind


def doi_filter(ids: list[str], id_kind: str = "arxiv") -> str:
    # OR within one filter is '|'; arXiv ids never contain '|' or ',' (old-style ids keep their '/'), nor do the
    # DOIs of bioRxiv (10.1101/2023.01.02.522333)
    return "doi:" + "|".join(DOI_PREFIX[id_kind] + i for i in ids)


class OpenAlexFetcher(BatchFetcher):
    name = "openalex"
    prefix = "page"
    max_batch = 100  # OpenAlex accepts at most 100 values OR-ed in one filter

    def responses(self, client: PoliteClient, ids: list[str]) -> Iterator[bytes]:
        url = f"{self.args.base_url.rstrip('/')}/works"
        # the key travels in the query only (params=, not the url string): PoliteClient logs and errors show `url`
        params = {"filter": doi_filter(ids, self.id_kind), "per-page": str(self.args.batch_size), "select": SELECT}
        if self.api_key:
            params["api_key"] = self.api_key
        mailto = os.environ.get(self.args.mailto_env) if self.args.mailto_env else None
        if mailto:
            params["mailto"] = mailto
        page, seen = 1, 0
        while True:
            resp = client.get(url, params=params if page == 1 else {**params, "page": str(page)})
            yield resp.content
            body = checked_json(resp.content, f"GET {url} page {page}")
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise HarvestError(f"GET {url} page {page}: no results list; the batch will be requested again next run")
            seen += len(body["results"])
            # one DOI can match two works (an OpenAlex duplicate): then the batch has more results than one page holds
            total = (body.get("meta") or {}).get("count") or 0
            if seen >= total or not body["results"]:
                return
            page += 1


def records(obj: Any) -> list:
    if isinstance(obj, dict) and isinstance(obj.get("results"), list):
        return obj["results"]
    if isinstance(obj, list):
        raise UnusableFile("wrong source", "a JSON array (a Semantic Scholar batch response), not an OpenAlex works page")
    message = error_answer(obj)
    if message is not None:
        raise UnusableFile("error response", f"the API answered {message!r} instead of a works page")
    raise UnusableFile("malformed", f"expected an object with a 'results' array, got {type(obj).__name__}")


def arxiv_id_of_doi(doi: str) -> str | None:
    """'https://doi.org/10.48550/arxiv.hep-th/9901001' -> 'hep-th/9901001' (lowercased; mapped back by the caller)."""
    text = strip_doi_url(doi)
    return text[len(ARXIV_DOI_PREFIX) :] if text.startswith(ARXIV_DOI_PREFIX) else None


def id_and_count(record: Any, id_kind: str = "arxiv") -> tuple[Any, Any]:
    if not isinstance(record, dict):
        raise RecordError(f"malformed record: expected an object, got {type(record).__name__}")
    doi = record.get("doi")
    if doi is None:
        return None, record.get("cited_by_count")
    if not isinstance(doi, str):
        raise RecordError(f"bad id: {doi!r}")
    if id_kind == "doi":
        return strip_doi_url(doi), record.get("cited_by_count")
    if arxiv_id_of_doi(doi) is None:
        raise RecordError(f"bad id: not an arXiv DOI: {doi!r}")
    return arxiv_id_of_doi(doi), record.get("cited_by_count")


def main(argv: list[str] | None = None) -> int:
    def extra(p):
        p.add_argument("--mailto-env", default="OPENALEX_MAILTO", help="environment variable with the polite-pool email")

    return fetch_main(OpenAlexFetcher, __doc__.split("\n\n")[0], argv, DEFAULTS, extra)


if __name__ == "__main__":
    sys.exit(main())
