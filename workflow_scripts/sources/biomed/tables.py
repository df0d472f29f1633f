"""The tables every biomedical review source (eLife, PLOS, F1000Research, PeerJ, Nature) writes.

``articles``: one row per article version. ``article_id`` = ``{source}:{versioned id}`` is unique across sources;
``family_id`` groups every version of one paper (the F1000 / Wellcome / Gates DOI stem, eLife's versionless id), and
splits are drawn by family, never by article.

| column | meaning |
|---|---|
| article_id, family_id, source | ``elife`` / ``plos`` / ``f1000`` / ``peerj`` / ``nature`` |
| journal | the journal's name as the file gives it (``PLOS Biology``, ``Wellcome Open Research``) |
| doi, version | lowercased DOI; the version number where the source versions articles, else 1 |
| title, abstract | plain text |
| sections | ``[{kind, title, text}]`` top-level body sections in order; ``kind`` from the section title: ``introduction``, ``methods``, ``results``, ``discussion``, ``other`` (SECTION_KINDS) |
| figure_captions | ``[{label, text}]``, kept apart from the section text |
| published | date of this version |
| license | the licence URL or name the source states; null when it states none |
| review_style | how its reviews are published (REVIEW_STYLES) |
| file | the native file the row was read from, relative to the snapshot |

``reports``: one row per reviewer report (never the editor's decision, never the authors' answer).

| column | meaning |
|---|---|
| report_id | ``{article_id}#r{round}-{reviewer}``, ``.k`` added for the k-th document of a round that numbers its reviewers again (report_id) |
| article_id, source | the article's |
| reviewer | 1-based reviewer number within the round, as the source numbers it; 0 for a letter that consolidates every reviewer's points without numbering them (eLife's decision letters) |
| round | 1 for the first round of review |
| kind | the source's own name for it (``referee-report``, ``reviewer-report``, ``ref-report``, ``aggregated-review-documents``, ``article-commentary``, ``decision-letter``, ``peerj-review``, ``peer-review-file``) |
| text | the report's text |
| recommendation | the referee's verdict where the source gives one (F1000 ``approve`` / ``approve-with-reservations`` / ``reject``) |

``responses``: the authors' answers (``reply``, ``author-comment``, ``response``, rebuttals), one row per answer:
response_id, article_id, source, round, kind, text. Kept apart so that no answer ever becomes a concern.
"""

from __future__ import annotations

import polars as pl

SOURCES = ("elife", "plos", "f1000", "peerj", "nature")
SECTION_KINDS = ("introduction", "methods", "results", "discussion", "other")
REVIEW_STYLES = (
    "elife-commentary",  # before 2016: article-commentary + reply
    "elife-decision-letter",  # decision-letter + reply
    "elife-reviewed-preprint",  # editor-report, referee-report, author-comment
    "plos-review-history",  # aggregated-review-documents (+ editor-report, author-comment)
    "f1000-open-review",  # reviewer-report / ref-report sub-articles per version
    "peerj-review-history",  # the public review-history HTML page
    "nature-peer-review-file",  # the transparent peer review PDF
)

SECTION = pl.Struct({"kind": pl.String, "title": pl.String, "text": pl.String})
CAPTION = pl.Struct({"label": pl.String, "text": pl.String})

ARTICLE_SCHEMA: dict[str, pl.DataType] = {
    "article_id": pl.String,
    "family_id": pl.String,
    "source": pl.String,
    "journal": pl.String,
    "doi": pl.String,
    "version": pl.Int32,
    "title": pl.String,
    "abstract": pl.String,
    "sections": pl.List(SECTION),
    "figure_captions": pl.List(CAPTION),
    "published": pl.Date,
    "license": pl.String,
    "review_style": pl.String,
    "file": pl.String,
}
REPORT_SCHEMA: dict[str, pl.DataType] = {
    "report_id": pl.String,
    "article_id": pl.String,
    "source": pl.String,
    "reviewer": pl.Int32,
    "round": pl.Int32,
    "kind": pl.String,
    "text": pl.String,
    "recommendation": pl.String,
}
RESPONSE_SCHEMA: dict[str, pl.DataType] = {
    "response_id": pl.String,
    "article_id": pl.String,
    "source": pl.String,
    "round": pl.Int32,
    "kind": pl.String,
    "text": pl.String,
}


def report_id(article_id: str, round_: int, reviewer: int, part: int = 1) -> str:
    """``{article_id}#r{round}-{reviewer}``; ``part`` k > 1 (the k-th document of one round that numbers its
    reviewers again, e.g. a second PLOS decision letter of a round) adds ``.k``, so that ids stay unique."""
    return f"{article_id}#r{round_}-{reviewer}" + (f".{part}" if part > 1 else "")


def articles_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ARTICLE_SCHEMA, orient="row").sort("article_id")


def reports_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=REPORT_SCHEMA, orient="row").sort("article_id", "round", "reviewer")


def responses_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RESPONSE_SCHEMA, orient="row").sort("article_id", "round", "response_id")
