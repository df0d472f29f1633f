"""The normalized arXiv paper record that all three arXiv readers produce, and the helpers that build it.

One place for: the column schema of ``papers.parquet``, versionless identifiers, the field of a primary category
(mapping from config), and title normalization (used for de-duplication and the leakage audit).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from email.utils import parsedate_to_datetime
from typing import Iterable, Mapping, Sequence

import polars as pl

from workflow_scripts.sources.errors import RecordError
from workflow_scripts.sources.titles import normalize_titles

PAPER_SCHEMA: dict[str, pl.DataType] = {
    "arxiv_id": pl.String,
    "title": pl.String,
    "abstract": pl.String,
    "authors": pl.List(pl.String),
    "primary_category": pl.String,
    "categories": pl.List(pl.String),
    "field": pl.String,
    "published": pl.Date,  # date of the first version (v1)
    "updated": pl.Date,  # date of the latest version or metadata update
    "doi": pl.String,
    "journal_ref": pl.String,
    "source": pl.String,  # which reader produced the row: oai_pmh | dump | api
}

# new-style 2101.00001 (4-digit yymm, 4 or 5 digit number) or old-style hep-th/9901001, optional version suffix
_ID_RE = re.compile(r"^(?:arxiv:)?(?P<id>(?:\d{4}\.\d{4,5})|(?:[a-z\-]+(?:\.[A-Z]{2})?/\d{7}))(?:v(?P<v>\d+))?$", re.I)


def versionless_id(raw: str) -> str:
    """'2101.00001v3' -> '2101.00001'; 'oai:arXiv.org:hep-th/9901001' -> 'hep-th/9901001'."""
    text = raw.strip()
    if text.lower().startswith("oai:arxiv.org:"):
        text = text[len("oai:arxiv.org:") :]
    m = _ID_RE.match(text)
    if not m:
        raise RecordError(f"bad arXiv identifier: {raw!r}")
    return m.group("id")


def clean_text(text: str | None) -> str | None:
    """Collapse the line breaks and indentation arXiv keeps in titles and abstracts."""
    if text is None:
        return None
    return " ".join(text.split()) or None  # str.split's whitespace is regex \s, but several times faster


def normalize_title_expr(col: str = "title") -> pl.Expr:
    """Case-, accent-, punctuation- and whitespace-insensitive key for matching one paper under two ids (duplicate
    detection and the leakage audits): NFKD, drop combining marks, keep [0-9a-z] (vectorized in titles.py)."""
    return pl.col(col).map_batches(normalize_titles, return_dtype=pl.String, is_elementwise=True)


class FieldMapper:
    """Maps a primary category to its field with the archive patterns from config (``fields:`` block).

    The archive is the part before the dot ('cs.LG' -> 'cs', 'hep-ph' -> 'hep-ph'); patterns are shell globs so
    that 'hep-*' covers hep-ph, hep-th, hep-ex and hep-lat. The first field whose pattern matches wins.
    """

    def __init__(self, fields: Mapping[str, Sequence[str]], unmapped: str | None = None):
        self.fields = {name: list(patterns) for name, patterns in fields.items()}
        self.unmapped = unmapped

    def __call__(self, primary_category: str) -> str | None:
        archive = primary_category.split(".", 1)[0]
        for name, patterns in self.fields.items():
            if any(fnmatch.fnmatchcase(archive, p) for p in patterns):
                return name
        return self.unmapped


def parse_date(value: str | None) -> dt.date | None:
    """Accepts ISO dates ('2007-04-02'), ISO timestamps and RFC 2822 dates ('Mon, 2 Apr 2007 19:18:42 GMT')."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError):
        raise RecordError(f"unparseable date: {value!r}") from None


def make_record(
    *,
    raw_id: str,
    title: str | None,
    abstract: str | None,
    authors: Iterable[str],
    categories: Sequence[str],
    published: dt.date | None,
    updated: dt.date | None,
    doi: str | None,
    journal_ref: str | None,
    source: str,
    field_of: FieldMapper,
) -> dict:
    """Validate and normalize one paper; raises RecordError naming the missing or bad field."""
    arxiv_id = versionless_id(raw_id)
    title = clean_text(title)
    abstract = clean_text(abstract)
    if not title:
        raise RecordError("missing title")
    if not abstract:
        raise RecordError("missing abstract")
    cats = [c for c in (c.strip() for c in categories) if c]
    if not cats:
        raise RecordError("missing categories")
    if published is None:
        raise RecordError("missing first-version date")
    field = field_of(cats[0])
    if field is None:
        raise RecordError(f"unmapped primary category: {cats[0]!r} matches no field in config")
    return {
        "arxiv_id": arxiv_id,
        "title": title,
        "abstract": abstract,
        "authors": [a for a in (clean_text(a) for a in authors) if a],
        "primary_category": cats[0],
        "categories": cats,
        "field": field,
        "published": published,
        "updated": updated or published,
        "doi": clean_text(doi),
        "journal_ref": clean_text(journal_ref),
        "source": source,
    }


def records_frame(records: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(records, schema=PAPER_SCHEMA, orient="row" if records and isinstance(records[0], (list, tuple)) else None)
