"""DOIs as every reader and citation source compares them: without a resolver prefix, lowercased.

DOIs are case-insensitive (the DOI Handbook, 2.4); OpenAlex stores them lowercased and as URLs
("https://doi.org/10.1101/2023.01.02.522333"), bioRxiv and Semantic Scholar as bare, mixed-case names.
"""

from __future__ import annotations

import re

from workflow_scripts.sources.errors import RecordError

URL_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:")
_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+$")


def strip_doi_url(text: str) -> str:
    """'https://doi.org/10.1101/X' -> '10.1101/x' (lowercased; no check that the rest is a DOI)."""
    low = text.strip().lower()
    for prefix in URL_PREFIXES:
        if low.startswith(prefix):
            return low[len(prefix) :]
    return low


def normalize_doi(text: str) -> str:
    """The comparable form of a DOI; RecordError when ``text`` is not one."""
    doi = strip_doi_url(text)
    if not _DOI_RE.match(doi):
        raise RecordError(f"not a DOI: {text!r}")
    return doi
