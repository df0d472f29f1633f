"""Semantic Scholar citation counts: POST /paper/batch with up to 500 arXiv ids (or DOIs) per call, raw responses kept.

    python -m workflow_scripts.sources.semantic_scholar fetch --papers papers.parquet --out-dir DIR [--done FILE]

The response is a JSON array aligned with the request, null for papers Semantic Scholar does not know. Papers are
asked for as "ARXIV:<id>" or, with ``--id-kind doi``, "DOI:<doi>". Resume, file layout and the manifest are those of
:class:`workflow_scripts.sources.citations.BatchFetcher`.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator

from workflow_scripts.sources.bad_input import error_answer
from workflow_scripts.sources.citations import BatchFetcher, checked_json, fetch_main
from workflow_scripts.sources.errors import RecordError, UnusableFile
from workflow_scripts.sources.http import HarvestError, PoliteClient

DEFAULTS = {
    "base_url": "https://api.semanticscholar.org/graph/v1",
    "batch_size": 500,
    "api_key_env": "S2_API_KEY",
    "min_interval_s": 1.0,
}
ALIGNED = True  # one entry per requested id, in request order
REQUEST_PREFIX = {"arxiv": "ARXIV:", "doi": "DOI:"}  # the batch endpoint's id forms, per id kind
EXTERNAL_ID = {"arxiv": "ArXiv", "doi": "DOI"}  # where a record names the paper, per id kind


class SemanticScholarFetcher(BatchFetcher):
    name = "semantic_scholar"
    prefix = "batch"
    max_batch = 500  # the API's limit per batch call

    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}

    def responses(self, client: PoliteClient, ids: list[str]) -> Iterator[bytes]:
        url = f"{self.args.base_url.rstrip('/')}/paper/batch"
        asked = [REQUEST_PREFIX[self.id_kind] + i for i in ids]
        resp = client.post(url, params={"fields": self.args.fields}, json={"ids": asked})
        yield resp.content
        body = checked_json(resp.content, f"POST {url}")
        if not isinstance(body, list) or len(body) != len(ids):
            raise HarvestError(f"POST {url}: expected a JSON array of {len(ids)} entries; the batch will be requested again next run")


def records(obj: Any) -> list:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("results"), list):
        raise UnusableFile("wrong source", "an OpenAlex works page ('results' list), not a Semantic Scholar batch array")
    message = error_answer(obj)
    if message is not None:
        raise UnusableFile("error response", f"the API answered {message!r} instead of a batch array")
    raise UnusableFile("malformed", f"expected a JSON array, got {type(obj).__name__}")


def id_and_count(record: Any, id_kind: str = "arxiv") -> tuple[Any, Any]:
    if not isinstance(record, dict):
        raise RecordError(f"malformed record: expected an object, got {type(record).__name__}")
    external = record.get("externalIds") or {}
    if not isinstance(external, dict):
        raise RecordError("malformed record: externalIds is not an object")
    return external.get(EXTERNAL_ID[id_kind]), record.get("citationCount")


def main(argv: list[str] | None = None) -> int:
    def extra(p):
        p.add_argument("--fields", default="citationCount,externalIds,publicationDate", help="fields= of the batch call")

    return fetch_main(SemanticScholarFetcher, __doc__.split("\n\n")[0], argv, DEFAULTS, extra)


if __name__ == "__main__":
    sys.exit(main())
