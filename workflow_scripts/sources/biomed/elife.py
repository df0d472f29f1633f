"""eLife: a resumable harvester of the articles list and each research article's JATS XML, and the parser of those
files into the biomedical review tables (tables.py), all three ways eLife has published its peer reviews.

``harvest`` pages ``GET {api}/articles?page=N&per-page=100&order=asc`` (Accept
``application/vnd.elife.article-list+json;version=1``; answers ``{"total": n, "items": [{"id", "version", "type",
"status", "doi", ...}]}``). The API has no type filter on /articles, so every item is listed and the research
articles are kept afterwards by the listed ``type`` (``--types``); an item in status ``poa`` (accepted, not yet
typeset: no body, no reviews) is counted and not fetched. Ascending order puts new articles at the end, so pages
already saved stay valid. Each answer is saved verbatim as OUT/pages/page-NNNNN.json, then OUT/state.json (the next
page): a kill between the two asks for that page again under the same number. Then each kept article's XML,
``GET {xml}/articles/{id}.xml``, is saved verbatim as OUT/xml/elife-{id}-v{version}.xml (the name eLife's own
article-XML repository uses) once it reads as an eLife JATS article; a file on disk is never asked for again. An
article whose XML fails (an error status after the retries, not an eLife article, another article) is listed in
OUT/xml_failures.json and the harvest goes on; a rerun asks for it again. More than ``--max-consecutive-failures``
in a row stop the harvest: the site, not one article, is failing. A 404 or 410 answer says that one article has no
XML there: a final rejects row (file, DOI, status) in OUT/rejects.jsonl, never asked again, and no count towards
the failures in a row. A finished listing is not asked for again (items in ``poa`` then stay unfetched): a later
harvest of new articles starts in a new OUT.

``parse`` reads every *.xml / *.xml.gz under the given directories, any name (our harvest, eLife's article-XML
repository, a Europe PMC download) through jats.read_jats. Articles of another root ``@article-type`` than
``--article-types`` (Insights, editorials, corrections) are counted and left out; the XML types research advances,
short reports and tools & resources as ``research-article`` too (the display channel tells them apart), so the
default keeps every research type the harvest fetched. Ids: ``family_id`` =
``elife:{id}`` (the digits of the DOI 10.7554/eLife.{id}), ``article_id`` = ``elife:{id}.{version}``; the version is
the XML's (``article-version``, or the ``.N`` of the version DOI), else the ``-vN`` of the file name, else 1. An
article id read twice keeps the copy read later (counted as a duplicate).

The review styles (tables.REVIEW_STYLES), by the sub-articles a file holds:

- ``elife-commentary`` (before 2016): ``article-commentary`` (the decision letter) -> reports; ``reply`` -> responses.
- ``elife-decision-letter``: ``decision-letter`` -> reports; ``reply`` -> responses; 2021-2023 files add an
  ``editor-report`` (the "Editor's evaluation") -> assessments.
- ``elife-reviewed-preprint``: ``referee-report`` -> reports, one per reviewer; ``author-comment`` -> responses;
  ``editor-report`` (the eLife assessment) -> assessments.

A decision letter consolidates every reviewer's points in one text with no per-reviewer numbering (its "Reviewer
#1 (Recommendations for the authors)" paragraphs, where present, sit inside it): it is one report with ``reviewer``
0, meaning "the reviewers together, as the editor assembled them", never a guessed number. A reviewed preprint's
referee reports follow eLife's titles (its schematron, ``sub-article-title-check-2``): "Reviewer #N (Public
review):" is reviewer N's; "Joint public review:" (also "Consensus ...") speaks for all reviewers, reviewer 0 as a
letter; a referee report of any other title takes jats.py's number (contributor roles, then its ``saN`` id) or, with
none, the next number free in its round. The published version of a reviewed preprint adds one more
``referee-report``, "Recommendations for authors", whose contributors are the editor and every reviewer: its
"Reviewer #N (Recommendations for the authors):" parts are appended to reviewer N's report of that round (made if the
reviewer has no public review), so that a report row holds everything that reviewer wrote (counted:
``reports_merged``); the editor's text before the first such part, or the whole when it names no reviewer, is a
reviewer-0 report like a letter. Round: the sub-article's where it states one, else 1 (a file carries the reviews of
its own version).

The ``editor-report`` (the eLife assessment, or the Editor's evaluation) summarises the editors' verdict: it is not a
reviewer's report and not the authors' answer, so it goes to a table of its own, ``assessments`` (ASSESSMENT_SCHEMA),
never to ``reports``. A review, response or assessment without text, and a sub-article of a type not listed above,
is a rejects row naming the file and sub-article; an article without a body (a publish-on-accept version) or without
any reviewer report is a rejects row naming the file and article. A file that is not an eLife JATS article is a bad
file under the ``bad_input`` policy (bad_input.py).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from tqdm import tqdm

from workflow_scripts.common.cli import json_arg
from workflow_scripts.common.io import Rejects, write_bytes_atomic, write_json_atomic
from workflow_scripts.sources.bad_input import BadInput, error_answer
from workflow_scripts.sources.biomed import jats, tables
from workflow_scripts.sources.biomed.source_io import (GONE_FILE, Counts, Gone, Parsed, add_output_args, jats_files,
                                                       jats_of, read_answer, run_source_cli, source_cli, write_tables)
from workflow_scripts.sources.errors import UnusableFile, run_main
from workflow_scripts.sources.http import HarvestError, PoliteClient, RetryPolicy, policy_of
from workflow_scripts.sources.reader_io import remove_stale_temp_files

log = logging.getLogger(__name__)

SOURCE = "elife"
LIST_ACCEPT = "application/vnd.elife.article-list+json;version=1"
RESEARCH_TYPES = ["research-article"]  # the reference collector's choice; short reports etc. by --types
LETTER_REVIEWER = 0  # a decision letter: the reviewers' points together, not one numbered reviewer
REPORT_TYPES = ("referee-report",)
LETTER_TYPES = ("decision-letter", "article-commentary")
RESPONSE_TYPES = ("reply", "author-comment")
ASSESSMENT_TYPES = ("editor-report",)
ASSESSMENT_SCHEMA: dict[str, pl.DataType] = {
    "article_id": pl.String,
    "source": pl.String,
    "kind": pl.String,  # editor-report
    "title": pl.String,  # "eLife assessment", "Editor's evaluation"
    "text": pl.String,
}
_DOI = re.compile(r"^10\.7554/elife\.(\d+)(?:\.(\d+))?$")
# referee-report titles (eLife's schematron): "Reviewer #2 (Public review):", "Joint public review:", and in the
# published version "Recommendations for authors" with "Reviewer #2 (Recommendations for the authors):" parts
_PUBLIC_REVIEW = re.compile(r"^\s*Reviewer\s*#\s*(\d+)\s*\(\s*public\s+review\s*\)", re.I)
_JOINT_REVIEW = re.compile(r"^\s*(?:joint|consensus)\s+public\s+review\b", re.I)
_RECOMMENDATIONS = re.compile(r"^\s*recommendations\s+for\s+(?:the\s+)?authors?\b", re.I)
_RECOMMENDATIONS_OF = re.compile(r"^[ \t]*Reviewer\s*#\s*(\d+)\s*\(\s*recommendations\s+for\s+(?:the\s+)?authors?\s*\)"
                                 r"[ \t]*:?[ \t]*", re.I | re.M)
_FILE_NAME = re.compile(r"elife-(\d+)-v(\d+)\.xml(?:\.gz)?$", re.I)


# --------------------------------------------------------------------------------------------------------------------
# harvest


def read_listing(obj: Any) -> tuple[int, list[dict]]:
    """(total, items) of an articles-list answer; UnusableFile when ``obj`` is not one."""
    if not isinstance(obj, dict):
        raise UnusableFile("malformed", f"expected a JSON object, got {type(obj).__name__}")
    total, items = obj.get("total"), obj.get("items")
    if items is None and error_answer(obj) is not None:
        raise UnusableFile("error response", f"the API answered {error_answer(obj)!r} instead of an articles list")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0 or not isinstance(items, list):
        raise UnusableFile("wrong source", "not an eLife articles list (no 'total' count and 'items' list)")
    for n, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"].isdigit()):
            raise UnusableFile("malformed", f"item {n} has no numeric 'id': {str(item)[:200]}")
    return total, items


def xml_name(item: dict) -> str:
    """elife-{id}-v{version}.xml; without a listed version the file's own article-version decides (parse)."""
    version = item.get("version")
    return f"elife-{item['id']}-v{version}.xml" if isinstance(version, int) else f"elife-{item['id']}.xml"


def _fetch_listing(client: PoliteClient, api_url: str, out_dir: Path, per_page: int) -> dict:
    pages_dir, state_path = out_dir / "pages", out_dir / "state.json"
    pages_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(pages_dir)
    remove_stale_temp_files(out_dir)
    # written atomically: whole or absent, never torn
    state = (json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists()
             else {"page": 1, "per_page": per_page, "listed": 0, "total": None, "complete": False})
    if state["per_page"] != per_page:  # page N of another size holds other articles: the saved pages would not add up
        raise HarvestError(f"{state_path}: this listing pages by {state['per_page']}, not {per_page}; use that "
                           "--per-page, or a new --out-dir")
    if state["page"] > 1 and not state["complete"]:
        log.info("elife listing: resuming at page %d", state["page"])
    with tqdm(total=state["total"], initial=state["listed"], unit="item", desc="elife list", file=sys.stderr,
              disable=state["complete"]) as bar:
        while not state["complete"]:
            n = state["page"]
            url = f"{api_url.rstrip('/')}/articles?page={n}&per-page={per_page}&order=asc"
            resp = client.get(url, headers={"Accept": LIST_ACCEPT})
            total, items = read_answer(resp, read_listing, url)
            # page first, then state: a kill in between fetches this page again under the same number
            write_bytes_atomic(pages_dir / f"page-{n:05d}.json", resp.content)
            listed = (n - 1) * per_page + len(items)
            state.update(page=n + 1, listed=listed, total=total, complete=not items or listed >= total)
            write_json_atomic(state_path, state)
            bar.total = total
            bar.update(len(items))
    return state


def listed_items(out_dir: Path) -> list[dict]:
    """Every item of the saved list pages, in page order."""
    pages = sorted((out_dir / "pages").glob("page-*.json"))
    return [item for page in pages for item in read_listing(json.loads(page.read_bytes()))[1]]


def check_xml(data: bytes, url: str, eid: str) -> None:
    """UnusableFile unless ``data`` reads as the JATS of eLife article ``eid`` (an HTML or error page, or another
    article, is never saved)."""
    article = jats_of(data, url)
    doi = _DOI.match(article.doi or "")
    if doi is None:
        raise UnusableFile("wrong source", f"DOI {article.doi!r} is not an eLife DOI")
    if int(doi.group(1)) != int(eid):
        raise UnusableFile("wrong article", f"the XML is article {doi.group(1)}'s, not {eid}'s")


def _fetch_xml(client: PoliteClient, xml_url: str, out_dir: Path, wanted: list[dict], max_consecutive: int) -> dict:
    xml_dir, failures_path = out_dir / "xml", out_dir / "xml_failures.json"
    xml_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(xml_dir)
    gone = Gone(out_dir / GONE_FILE)
    todo = [item for item in wanted if not (xml_dir / xml_name(item)).exists() and not gone.skip(xml_name(item))]
    failures: dict[str, str] = {}
    consecutive = fetched = 0
    for item in tqdm(todo, unit="xml", desc="elife xml", file=sys.stderr):
        url = f"{xml_url.rstrip('/')}/articles/{item['id']}.xml"
        try:
            data = client.get(url).content
            check_xml(data, url, item["id"])
        except HarvestError as exc:
            if exc.gone:  # this article, not the site: final, and no sign that the site is failing
                gone.add(xml_name(item), f"10.7554/eLife.{item['id']}", url, exc)
                consecutive = 0
                continue
            failures[xml_name(item)] = str(exc)
        except UnusableFile as problem:
            failures[xml_name(item)] = f"{url}: {problem.kind}: {problem.detail}"
        else:
            write_bytes_atomic(xml_dir / xml_name(item), data)
            fetched += 1
            consecutive = 0
            continue
        consecutive += 1
        log.warning("elife %s: %s", item["id"], failures[xml_name(item)])
        write_json_atomic(failures_path, failures)
        if consecutive > max_consecutive:
            raise HarvestError(f"elife: {consecutive} article XMLs failed in a row, the last {url}: "
                               f"{failures[xml_name(item)]}; stopped (a rerun resumes)")
    write_json_atomic(failures_path, failures)
    return {"fetched": fetched, "failed": sorted(failures), "gone": sorted(row["file"] for row in gone.rows)}


def harvest(api_url: str, xml_url: str, out_dir: Path, types: list[str], per_page: int = 100,
            policy: RetryPolicy | None = None, max_consecutive_failures: int = 5) -> dict:
    out_dir = Path(out_dir)
    with PoliteClient(policy) as client:
        state = _fetch_listing(client, api_url, out_dir, per_page)
        items = listed_items(out_dir)
        by_type = Counter(str(item.get("type")) for item in items)
        # an article listed twice (the listing moved between runs): its later listing
        research = list({item["id"]: item for item in items if item.get("type") in types}.values())
        wanted = [item for item in research if item.get("status") != "poa"]
        xml = _fetch_xml(client, xml_url, out_dir, wanted, max_consecutive_failures)
    on_disk = sum((out_dir / "xml" / xml_name(item)).exists() for item in wanted)
    summary = {"source": SOURCE, "listed": len(items), "total": state["total"],
               "by_type": dict(sorted(by_type.items())), "types": types,
               "poa_not_fetched": len(research) - len(wanted), "wanted": len(wanted), "xml_on_disk": on_disk, **xml}
    if xml["failed"]:
        log.warning("elife: %d article XML(s) failed (listed in %s); a rerun asks for them again: %s",
                    len(xml["failed"]), out_dir / "xml_failures.json", xml["failed"][:10])
    if xml["gone"]:
        log.warning("elife: %d article XML(s) answered 404 / 410 (rejects rows in %s, never asked again): %s",
                    len(xml["gone"]), out_dir / GONE_FILE, xml["gone"][:10])
    log.info("elife harvest: %d listed, %d wanted, %d XML files on disk", len(items), len(wanted), on_disk)
    return summary


# --------------------------------------------------------------------------------------------------------------------
# parse


def elife_id(article: jats.JatsArticle, path: Path) -> tuple[str, int]:
    """(the versionless eLife id, the version) of an article; UnusableFile when it is not an eLife article."""
    doi = _DOI.match(article.doi or "")
    if doi is None:
        raise UnusableFile("wrong source", f"DOI {article.doi!r} is not an eLife DOI (10.7554/eLife.N)")
    named = _FILE_NAME.search(path.name)
    version = article.version or (int(doi.group(2)) if doi.group(2) else None)
    return doi.group(1), version or (int(named.group(2)) if named else 1)


def review_style(types: set[str]) -> str:
    """The style of an article with at least one report or letter."""
    if types & set(REPORT_TYPES):
        return "elife-reviewed-preprint"
    return "elife-decision-letter" if "decision-letter" in types else "elife-commentary"


class ArticleTables:
    """The review rows of one article: reports (one per reviewer and round), responses, assessments."""

    def __init__(self, article_id: str):
        self.article_id = article_id
        self.reports: dict[tuple[int, int], dict] = {}
        self.responses: list[dict] = []
        self.assessments: list[dict] = []
        self.merged = 0

    def add_report(self, sub: jats.SubArticle, reviewer: int | None, text: str | None = None) -> None:
        round_ = sub.round or 1
        text = sub.text if text is None else text
        if reviewer is None:
            reviewer = 1 + max((r for (rd, r) in self.reports if rd == round_), default=0)
        key = (round_, reviewer)
        if key in self.reports:  # the same reviewer's second part (recommendations for the authors)
            self.reports[key]["text"] += "\n\n" + text
            self.merged += 1
            return
        self.reports[key] = {"report_id": tables.report_id(self.article_id, round_, reviewer),
                             "article_id": self.article_id, "source": SOURCE, "reviewer": reviewer, "round": round_,
                             "kind": sub.article_type, "text": text, "recommendation": sub.recommendation}

    def add_referee_report(self, sub: jats.SubArticle) -> None:
        """A reviewed preprint's referee report by its title (module docstring)."""
        title = sub.title or ""
        numbered = _PUBLIC_REVIEW.match(title)
        if numbered:
            self.add_report(sub, int(numbered.group(1)))
        elif _JOINT_REVIEW.match(title):
            self.add_report(sub, LETTER_REVIEWER)
        elif _RECOMMENDATIONS.match(title):
            heads = list(_RECOMMENDATIONS_OF.finditer(sub.text))
            editor = sub.text[: heads[0].start()] if heads else sub.text
            if editor.strip():
                self.add_report(sub, LETTER_REVIEWER, editor.strip())
            for head, after in zip(heads, heads[1:] + [None]):
                part = sub.text[head.end(): after.start() if after else len(sub.text)].strip()
                if part:
                    self.add_report(sub, int(head.group(1)), part)
        else:
            self.add_report(sub, sub.reviewer)

    def add_response(self, sub: jats.SubArticle, position: int) -> None:
        self.responses.append({"response_id": f"{self.article_id}#{sub.id or f'sub{position}'}",
                               "article_id": self.article_id, "source": SOURCE, "round": sub.round or 1,
                               "kind": sub.article_type, "text": sub.text})

    def add_assessment(self, sub: jats.SubArticle) -> None:
        self.assessments.append({"article_id": self.article_id, "source": SOURCE, "kind": sub.article_type,
                                 "title": sub.title, "text": sub.text})


def article_tables(article: jats.JatsArticle, path: Path, file: str,
                   rejects: Rejects) -> tuple[dict, ArticleTables] | None:
    """The rows of one eLife article; None (with rejects rows naming file and article) when it has no body or no
    reviewer report. UnusableFile when the file is not an eLife article."""
    eid, version = elife_id(article, path)
    article_id = f"{SOURCE}:{eid}.{version}"
    if not article.has_body:
        rejects.add(path, article_id, f"article without body: {len(article.sub_articles)} review sub-article(s) "
                                      "not used (a publish-on-accept version?)")
        return None
    rows = ArticleTables(article_id)
    for position, sub in enumerate(article.sub_articles):
        where = f"{article_id}#{sub.id or f'sub{position}'}"
        if sub.article_type not in REPORT_TYPES + LETTER_TYPES + RESPONSE_TYPES + ASSESSMENT_TYPES:
            rejects.add(path, where, f"unknown sub-article type: {sub.article_type!r} ({sub.title!r})")
        elif not sub.text:
            rejects.add(path, where, f"sub-article without text: {sub.article_type} {sub.title!r}")
        elif sub.article_type in REPORT_TYPES:
            rows.add_referee_report(sub)
        elif sub.article_type in LETTER_TYPES:
            rows.add_report(sub, LETTER_REVIEWER)
        elif sub.article_type in RESPONSE_TYPES:
            rows.add_response(sub, position)
        else:
            rows.add_assessment(sub)
    if not rows.reports:
        rejects.add(path, article_id, "no reviewer report with text: the article is not used"
                    + (f" (sub-articles: {[s.article_type for s in article.sub_articles]})"
                       if article.sub_articles else " (no peer review published)"))
        return None
    row = {"article_id": article_id, "family_id": f"{SOURCE}:{eid}", "source": SOURCE,
           "journal": article.journal or "eLife", "doi": article.doi, "version": version, "title": article.title,
           "abstract": article.abstract, "sections": article.sections, "figure_captions": article.figure_captions,
           "published": article.published, "license": article.license,
           "review_style": review_style({s.article_type for s in article.sub_articles}), "file": file}
    return row, rows


@dataclass
class ElifeCounts(Counts):
    reports_merged: int = 0
    per_review_style: dict = field(default_factory=dict)
    outside_article_types: dict = field(default_factory=dict)


def parse(dirs: list[Path], article_types: list[str], bad: BadInput) -> Parsed:
    """The rows of every eLife article under ``dirs``, its assessments as the extra table."""
    counts, articles = ElifeCounts(), {}
    outside: Counter = Counter()
    for article, path, file in jats_files(dirs, bad, counts, progress="elife parse"):
        if article.article_type not in article_types:
            outside[str(article.article_type)] += 1
            continue
        try:
            found = article_tables(article, path, file, bad.rejects)
        except UnusableFile as problem:  # not an eLife article
            bad.add(path, problem)
            continue
        if found is not None:
            counts.duplicates += found[0]["article_id"] in articles  # the copy read later wins
            articles[found[0]["article_id"]] = found
    rows = [row for row, _ in articles.values()]
    parts = [part for _, part in articles.values()]
    counts.reports_merged = sum(p.merged for p in parts)
    counts.per_review_style = dict(sorted(Counter(row["review_style"] for row in rows).items()))
    counts.outside_article_types = dict(sorted(outside.items()))
    if outside:
        log.info("elife: %d article(s) of other types than %s left out: %s", sum(outside.values()), article_types,
                 dict(outside))
    log.info("elife: per review style %s", counts.per_review_style)
    assessments = pl.DataFrame([a for p in parts for a in p.assessments], schema=ASSESSMENT_SCHEMA, orient="row")
    return Parsed(rows, [r for p in parts for r in p.reports.values()], [r for p in parts for r in p.responses],
                  counts, {"assessments": assessments.sort("article_id")})


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p, h, s = source_cli(__doc__, harvest_help="the articles list into OUT/pages/, research articles' XML into "
                                               "OUT/xml/ (resumable)",
                         parse_help="JATS XML files -> articles, reports, responses, assessments parquet + rejects",
                         out_dir_help="pages/, xml/, state.json, xml_failures.json, rejects.jsonl", min_interval_s=1.0)
    h.add_argument("--api-url", default="https://api.elifesciences.org", help="the API root (GET /articles)")
    h.add_argument("--xml-url", default="https://elifesciences.org", help="the site serving /articles/{id}.xml")
    h.add_argument("--types", type=json_arg, default=RESEARCH_TYPES,
                   help="JSON list of the listed article types whose XML is fetched")
    h.add_argument("--per-page", type=int, default=100, help="items a list page (the API allows at most 100)")
    h.add_argument("--max-consecutive-failures", type=int, default=5,
                   help="article XMLs failing in a row that stop the harvest")
    s.add_argument("--xml", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.xml (or *.xml.gz) eLife articles, any name")
    s.add_argument("--article-types", type=json_arg, default=RESEARCH_TYPES,
                   help="JSON list of root @article-type values kept (others counted and left out)")
    add_output_args(s, extra_tables=("assessments",))
    run_source_cli(
        p, argv,
        lambda args: harvest(args.api_url, args.xml_url, args.out_dir, args.types, args.per_page, policy_of(args),
                             args.max_consecutive_failures),
        lambda args, bad: write_tables(SOURCE, parse(args.xml, args.article_types, bad), bad, args))


if __name__ == "__main__":
    run_main(main)
