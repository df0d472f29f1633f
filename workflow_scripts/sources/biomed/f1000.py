"""F1000Research and its sister platforms (Wellcome Open Research, Gates Open Research): a resumable harvester
(Crossref discovery, then each version's JATS XML) and the parser of those XML files into the articles / reports /
responses tables (tables.py).

Discovery: a Crossref listing per platform (crossref.py), filters ``container-title`` (the platform's journal
title), ``from-pub-date`` (``until-pub-date``) and ``type:journal-article``. Every version of an article has its own
DOI, ``10.12688/<platform>.<N>.<V>``, so a listing names versions, and each is fetched as
``{base}/articles/{N}/{V}/xml`` (``--xml-url``; the platforms share the URL shape on their own hosts, ``--base-urls``).
``harvest`` keeps the listing under OUT/crossref/<platform>/ and every version's XML as
OUT/articles/<platform>/<doi with / as _>.xml; a file on disk is never asked for again, a failed one is asked again
by the next run (OUT/failures.jsonl lists this run's), and a 404 / 410 answer is a final rejects row (file, DOI,
status) in OUT/rejects.jsonl, never asked again.

``parse`` reads every *.xml / *.xml.gz under the given directories (ours or another tool's, any name) with
jats.read_jats. The open review of F1000 is a run of sub-articles in each version's XML:

- ``reviewer-report`` (current files) or ``ref-report`` (older ones, about 2018 and before): one referee's report,
  the verdict in ``custom-meta`` "recommendation" (``approve``, ``approve-with-reservations``, ``reject``; spellings
  such as "Approved with Reservations" or "not-approved" read the same, any other value is kept as null and counted:
  ``unknown_recommendations``); the referees are not numbered, so ``reviewer`` is the report's place among the
  reports on its version.
- ``response`` (also ``reply``, ``author-comment``): the authors' answer, nested in the report it answers.

A version's XML may carry the reports on the earlier versions too (the article page shows the whole history, and a
report's title names the version it reviewed), so the reader does not rely on either layout: each report is kept
once, on the version it was written on, which is its ``round``. That version comes from the report's
title ("Reviewer response for version 1", older files "Referee response for version 1"), else from its date (the
latest version of the article published on or before it), else it is the file's own version; a response takes the
round of the report before it. The same report read from several files (same version, referees and text) is kept
once (counted: ``repeated_sub_articles``), attached to the article row of its version when that version's file was
read, else to the earliest file that holds it. A version with nothing attached (no report or response written on
it) is left out (counted: ``versions_without_review``).

``article_id`` = ``f1000:<versioned doi>``, ``family_id`` = ``f1000:<doi stem>`` (every version of one paper; the
splits never cut a family), ``version`` = the DOI's last number. An article without body, a review sub-article
without text, and an XML file whose DOI is not a versioned F1000 / Wellcome / Gates one are rejects rows naming the
file; a bad file (empty, not XML, no article) is one under the bad-file policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts.common.cli import json_arg
from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.biomed import crossref, jats, tables
from workflow_scripts.sources.biomed.source_io import (Counts, Fetches, Parsed, add_output_args, check_jats, file_key,
                                                       jats_article_row, jats_files, log_failures, run_source_cli,
                                                       source_cli, write_tables)
from workflow_scripts.sources.errors import run_main
from workflow_scripts.sources.http import HarvestError, PoliteClient, policy_of

log = logging.getLogger(__name__)

SOURCE = "f1000"
REVIEW_STYLE = "f1000-open-review"
DOI_RE = re.compile(r"^(10\.12688/(f1000research|wellcomeopenres|gatesopenres)\.(\d+))\.(\d+)$")
PLATFORMS = {  # DOI infix -> (Crossref container-title, site)
    "f1000research": ("F1000Research", "https://f1000research.com"),
    "wellcomeopenres": ("Wellcome Open Research", "https://wellcomeopenresearch.org"),
    "gatesopenres": ("Gates Open Research", "https://gatesopenresearch.org"),
}
XML_URL = "{base}/articles/{number}/{version}/xml"
REPORTS = ("reviewer-report", "ref-report")
RESPONSES = ("response", "reply", "author-comment")
RECOMMENDATIONS = {
    "approve": "approve", "approved": "approve",
    "approve-with-reservations": "approve-with-reservations", "approved-with-reservations": "approve-with-reservations",
    "reject": "reject", "not-approved": "reject",
}
_FOR_VERSION = re.compile(r"\bversion\s+(\d+)\b", re.I)


@dataclass(frozen=True)
class VersionDoi:
    doi: str
    stem: str
    platform: str
    number: str
    version: int

    @classmethod
    def parse(cls, doi: str | None) -> "VersionDoi | None":
        m = DOI_RE.match((doi or "").strip().lower())
        return cls(m.group(0), m.group(1), m.group(2), m.group(3), int(m.group(4))) if m else None

    @property
    def article_id(self) -> str:
        return f"{SOURCE}:{self.doi}"


# --------------------------------------------------------------------------------------------------------------------
# harvest


@dataclass
class Harvest:
    crossref_url: str
    base_urls: dict[str, str]  # platform -> site root
    from_date: dt.date
    until_date: dt.date | None
    out_dir: Path
    mailto: str | None
    xml_url: str = XML_URL
    rows: int = crossref.MAX_ROWS

    def listing(self, client: PoliteClient, platform: str) -> list[VersionDoi]:
        """The versions Crossref lists for ``platform`` (resumable), and a log line for the DOIs of other shapes."""
        works = crossref.list_articles(client, self.crossref_url, self.out_dir / "crossref" / platform,
                                       {"container-title": PLATFORMS[platform][0]}, from_date=self.from_date,
                                       until_date=self.until_date, mailto=self.mailto, rows=self.rows)
        versions = [VersionDoi.parse(doi) for doi in works["doi"]]
        other = [doi for doi, v in zip(works["doi"], versions) if v is None or v.platform != platform]
        if other:
            log.info("%s: %d listed DOI(s) are not versions of %s articles, not fetched, e.g. %s", platform,
                     len(other), platform, other[:5])
        return [v for v in versions if v is not None and v.platform == platform]

    def run(self, platforms: list[str], listing_client: PoliteClient, site: PoliteClient) -> dict:
        unknown = [p for p in platforms if p not in PLATFORMS or p not in self.base_urls]
        if unknown:  # before any request
            raise HarvestError(f"unknown platform(s) {unknown}: known {sorted(PLATFORMS)}, each with a base URL "
                               "(--base-urls)")
        fetches = Fetches(self.out_dir / "failures.jsonl")
        per_platform = {}
        for platform in platforms:
            versions = self.listing(listing_client, platform)
            for v in versions:
                url = self.xml_url.format(base=self.base_urls[platform].rstrip("/"), number=v.number,
                                          version=v.version)
                fetches.get(site, url, self.out_dir / "articles" / platform / f"{file_key(v.doi)}.xml",
                            check_jats, record=v.doi)
            per_platform[platform] = {"versions": len(versions), "articles": len({v.stem for v in versions})}
        log_failures(SOURCE, fetches)
        return {"source": SOURCE, "platforms": per_platform, **fetches.summary()}


# --------------------------------------------------------------------------------------------------------------------
# parse


@dataclass
class F1000Counts(Counts):
    repeated_sub_articles: int = 0
    reports_on_versions_not_in_files: int = 0
    versions_without_review: int = 0
    other_sub_articles: dict = field(default_factory=dict)
    unknown_recommendations: dict = field(default_factory=dict)
    per_platform: dict = field(default_factory=dict)


@dataclass
class Version:
    vdoi: VersionDoi
    article: jats.JatsArticle
    path: Path
    file: str  # relative to its snapshot directory


def read_versions(dirs: list[Path], bad: BadInput, counts: F1000Counts) -> dict[str, dict[int, Version]]:
    """{family stem: {version: Version}} of every usable file; a DOI read again keeps the later file."""
    families: dict[str, dict[int, Version]] = {}
    for article, path, file in jats_files(dirs, bad, counts):
        vdoi = VersionDoi.parse(article.doi)
        if vdoi is None:
            bad.rejects.add(path, article.doi or "*", f"not a versioned F1000 / Wellcome / Gates DOI: {article.doi!r}")
            continue
        if not article.has_body:
            bad.rejects.add(path, vdoi.doi, "article without body")
            continue
        family = families.setdefault(vdoi.stem, {})
        counts.duplicates += vdoi.version in family
        family[vdoi.version] = Version(vdoi, article, path, file)
    return families


def written_on(sub: jats.SubArticle, dates: dict[int, dt.date], own: int) -> int:
    """The version a report was written on (module docstring): its title, else its date, else the file's."""
    m = _FOR_VERSION.search(sub.title or "")
    if m:
        return int(m.group(1))
    if sub.date is not None:
        before = [v for v, published in dates.items() if published is not None and published <= sub.date]
        if before:
            return max(before)
    return own


def recommendation(raw: str | None, counts: F1000Counts) -> str | None:
    if raw is None:
        return None
    value = RECOMMENDATIONS.get("-".join(raw.lower().split()))
    if value is None:
        counts.unknown_recommendations[raw] = counts.unknown_recommendations.get(raw, 0) + 1
    return value


def _fingerprint(round_: int, sub: jats.SubArticle) -> tuple:
    text = " ".join(sub.text.split()).lower()
    return round_, tuple(sorted(sub.contrib_names)), hashlib.sha1(text.encode()).hexdigest()


def review_of_family(family: dict[int, Version], bad: BadInput, counts: F1000Counts) -> tuple[list, list, list]:
    """(article rows, reports, responses) of one paper's versions, each report and response once."""
    dates = {v: version.article.published for v, version in family.items()}
    seen: set[tuple] = set()
    reports, responses = [], []
    for own, version in sorted(family.items()):
        round_ = own  # a response answers the report before it
        for sub in version.article.sub_articles:
            kind = sub.article_type
            if kind not in REPORTS + RESPONSES:
                counts.other_sub_articles[kind] = counts.other_sub_articles.get(kind, 0) + 1
                continue
            if kind in REPORTS:
                round_ = written_on(sub, dates, own)
            if not sub.text.strip():
                bad.rejects.add(version.path, f"{version.vdoi.doi} {sub.id or kind}",
                                f"review sub-article without text ({kind})")
                continue
            key = (kind in REPORTS, *_fingerprint(round_, sub))
            if key in seen:
                counts.repeated_sub_articles += 1
                continue
            seen.add(key)
            home = family.get(round_, version)  # the version reviewed, when its file was read
            counts.reports_on_versions_not_in_files += kind in REPORTS and round_ not in family
            row = {"article_id": home.vdoi.article_id, "source": SOURCE, "round": round_, "kind": kind,
                   "text": sub.text.strip()}
            if kind in REPORTS:
                reports.append({**row, "recommendation": recommendation(sub.recommendation, counts)})
            else:
                responses.append(row)
    _number(reports, "reviewer", lambda r, n: tables.report_id(r["article_id"], r["round"], n))
    _number(responses, None, lambda r, n: f"{r['article_id']}#a{r['round']}-{n}")
    reviewed = {r["article_id"] for r in reports + responses}
    rows = [jats_article_row(v.article, source=SOURCE, article_id=v.vdoi.article_id,
                             family_id=f"{SOURCE}:{v.vdoi.stem}", review_style=REVIEW_STYLE, file=v.file)
            | {"version": v.vdoi.version}
            for v in family.values() if v.vdoi.article_id in reviewed]
    counts.versions_without_review += len(family) - len(rows)
    return rows, reports, responses


def _number(rows: list[dict], column: str | None, make_id) -> None:
    """Number rows 1, 2, ... within (article, round) in the order they were read, and give each its id."""
    seen: Counter = Counter()
    for row in rows:
        seen[row["article_id"], row["round"]] += 1
        n = seen[row["article_id"], row["round"]]
        if column:
            row[column] = n
        row["report_id" if column else "response_id"] = make_id(row, n)


def parse(dirs: list[Path], bad: BadInput) -> Parsed:
    counts = F1000Counts()
    articles, reports, responses = [], [], []
    for stem, family in sorted(read_versions(dirs, bad, counts).items()):
        rows, family_reports, family_responses = review_of_family(family, bad, counts)
        articles += rows
        reports += family_reports
        responses += family_responses
        if rows:
            platform = family[min(family)].vdoi.platform
            counts.per_platform[platform] = counts.per_platform.get(platform, 0) + len(rows)
    if counts.unknown_recommendations:
        log.warning("recommendation values not known, kept as null: %s", counts.unknown_recommendations)
    return Parsed(articles, reports, responses, counts)


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p, h, s = source_cli(__doc__, harvest_help="Crossref listings + every version's XML into OUT (resumable)",
                         parse_help="article XML files -> articles / reports / responses tables",
                         out_dir_help="crossref/, articles/, failures.jsonl, rejects.jsonl", min_interval_s=1.0,
                         interval_what="article requests")
    h.add_argument("--platform", action="append", dest="platforms", choices=sorted(PLATFORMS),
                   help="DOI infix of a platform (repeat; default: all three)")
    h.add_argument("--base-urls", type=json_arg, default={k: v[1] for k, v in PLATFORMS.items()},
                   help="JSON: platform -> site root")
    h.add_argument("--xml-url", default=XML_URL, help="article XML URL, from {base}, {number}, {version}")
    crossref.add_listing_args(h, until_required=False)
    s.add_argument("--xml", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.xml / *.xml.gz article files, any name")
    add_output_args(s)

    def harvest(args) -> dict:
        mailto = crossref.mailto_of(args.mailto_env)
        harvest = Harvest(args.crossref_url, args.base_urls, args.from_date, args.until_date, args.out_dir, mailto,
                          args.xml_url, args.rows)
        with crossref.polite_client(policy_of(args, args.crossref_min_interval_s), mailto) as listing, \
                PoliteClient(policy_of(args)) as site:
            return harvest.run(args.platforms or list(PLATFORMS), listing, site)

    run_source_cli(p, argv, harvest, lambda args, bad: write_tables(SOURCE, parse(args.xml, bad), bad, args))


if __name__ == "__main__":
    run_main(main)
