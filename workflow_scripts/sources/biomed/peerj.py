"""PeerJ: a resumable harvester (Crossref discovery, then each article's review-history page and article page) and
the parser of those HTML pages into the articles / reports / responses tables (tables.py).

Discovery: a Crossref listing (crossref.py) with filters ``prefix:10.7717``, ``container-title:PeerJ`` (the other
PeerJ journals share the prefix), ``from-pub-date`` (``until-pub-date``) and ``type:journal-article``; an article is
``10.7717/peerj.<N>``. PeerJ publishes its peer review only as HTML, ``{base}/articles/<N>/reviews/``; the article's
own page ``{base}/articles/<N>/`` gives the body. ``harvest`` keeps the listing under OUT/crossref/ and the pages as
OUT/pages/peerj-<N>-reviews.html and OUT/pages/peerj-<N>-article.html; the article page is fetched only for a review
history with first-round reports. A page on disk is never asked for again; a failed one is asked again by the next
run (OUT/failures.jsonl lists this run's), and a 404 / 410 answer is a final rejects row (file, DOI, status) in
OUT/rejects.jsonl, never asked again. The authors' rebuttal is a DOCX file (``/articles/<N>v0.2/rebuttal``,
linked as "Download author's rebuttal letter" at the end of the block of the version it came with, 0.2 for the
answer to the first round) and is not fetched: PeerJ articles have no responses rows.

``parse`` reads every *.html / *.htm (and .gz) file under the given directories, whatever its name, tells the two
kinds of page apart by their content and pairs them by article number (``citation_doi`` meta tag, else the
canonical / og:url link):

- review history: the versions newest first ("Version 0.2 (accepted)", ..., "Version 0.1 (original submission)"),
  each with the Academic Editor's decision ("Major Revisions", "Accept") and its reviewers; the first round only is
  read, the block ``id="version-0-1"`` (the original submission; later rounds review the revision). Each reviewer
  is a ``div.publication-review`` with id ``version-0-1-review-<n>`` (``reviewer`` = n, the "Peer Review #n" its
  citation names), the text in its ``itemprop="reviewBody"`` element (PeerJ's headings "Basic reporting",
  "Experimental design", "Validity of the findings" and "Additional comments", "Comments for the author" on older
  pages, stay in the text; the "Cite this review as ... Peer Review #n of ..." line after it does not, and is cut
  off where a page puts it inside). The editor's decision, ``div.publication-review.publication-decision``
  (``article-recommendation-<decision>``, id ``version-0-1-decision``), is not a report and is skipped. An article
  whose authors did not publish the history has the page too ("Review Information", "The author has chosen not to
  publish the full peer review history of this article."): counted (``review_history_not_published``), not a
  reject.
- article: ``citation_*`` meta tags (title, DOI, journal, publication date), the abstract, and the top-level
  sections of the body (``itemprop="articleBody"``, else the ``div.body``) with ``kind`` from their heading text
  (jats.section_kind); figure captions are kept apart.

A review history without first-round reports, one without its article page, an article page without its review
history, an article without body and a review without text are rejects rows naming the file. ``article_id`` =
``peerj:<doi>``, ``family_id`` = ``peerj:<N>``; PeerJ does not version articles (``version`` 1).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import lxml.html
from lxml import etree

from workflow_scripts.sources.bad_input import BadInput
from workflow_scripts.sources.biomed import crossref, jats, tables
from workflow_scripts.sources.biomed.source_io import (Counts, Fetches, Parsed, add_output_args, log_failures,
                                                       native_files, read_bytes, relative_name, run_source_cli,
                                                       source_cli, write_tables)
from workflow_scripts.sources.errors import UnusableFile, run_main
from workflow_scripts.sources.http import PoliteClient, policy_of

log = logging.getLogger(__name__)

SOURCE = "peerj"
REVIEW_STYLE = "peerj-review-history"
REPORT_KIND = "peerj-review"
BASE_URL = "https://peerj.com"
HTML_SUFFIXES = (".html", ".htm", ".html.gz", ".htm.gz")
DOI_RE = re.compile(r"^10\.7717/peerj\.(\d+)$")
_ARTICLE_URL = re.compile(r"/articles/(\d+)/?(reviews/?)?$")
_REVIEW_ID = re.compile(r"^version-0-1-review-(\d+)$")
_ANY_REVIEW_ID = re.compile(r"^(version-\d+-\d+)-review-\d+$")
FIRST_ROUND = "version-0-1"
TEXT_BLOCKS = ("p", "li", "dt", "dd", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6")
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
NOT_PROSE = ("script", "style", "nav", "button", "form", "noscript")


def _classes(el) -> set[str]:
    return set((el.get("class") or "").split())


def _clean(text: str | None) -> str | None:
    return (" ".join(text.split()) or None) if text else None


def _is_figure(el) -> bool:
    return el.tag == "figure" or "fig" in _classes(el)


# --------------------------------------------------------------------------------------------------------------------
# one page: its kind and article number


@dataclass
class Page:
    kind: str  # "reviews" or "article"
    number: str
    root: object  # lxml.html element
    path: Path
    file: str


def _meta(root, name: str) -> str | None:
    found = root.xpath("//meta[@name=$n or @property=$n]/@content", n=name)
    return _clean(found[0]) if found else None


def _page_url(root) -> str | None:
    found = root.xpath("//link[@rel='canonical']/@href") or root.xpath("//meta[@property='og:url']/@content")
    return found[0].strip() if found else None


def read_page(data: bytes, path: Path, file: str) -> Page:
    """The kind and article number of a PeerJ page; UnusableFile when it is neither page of a PeerJ article."""
    if not data.strip():
        raise UnusableFile("empty", f"{len(data)} bytes")
    try:
        root = lxml.html.document_fromstring(data)
    except (etree.ParserError, ValueError) as exc:
        raise UnusableFile("malformed", f"not HTML: {exc}") from None
    doi, url = _meta(root, "citation_doi"), _page_url(root) or ""
    by_doi, by_url = DOI_RE.match((doi or "").lower()), _ARTICLE_URL.search(url)
    number = by_doi.group(1) if by_doi else by_url.group(1) if by_url else None
    if number is None:
        raise UnusableFile("wrong source", f"no PeerJ article DOI or link (citation_doi {doi!r}, url {url!r})")
    reviews = (root.xpath("//*[starts-with(@id, 'version-0-') or contains(@class, 'publication-review')]")
               or bool(by_url and by_url.group(2)) or history_withheld(root))
    return Page("reviews" if reviews else "article", number, root, path, file)


_CITE = re.compile(r"\s*\bCite this review as\b")  # the review's citation, where a page puts it inside the body
_WITHHELD = re.compile(r"chosen\s+not\s+to\s+publish\s+the\s+(?:full\s+)?peer\s+review\s+history", re.I)


def history_withheld(root) -> bool:
    """The review-history page of an article whose authors did not publish its history."""
    return bool(_WITHHELD.search(" ".join(root.xpath("//body//text()"))))


# --------------------------------------------------------------------------------------------------------------------
# text


def element_blocks(el) -> list[str]:
    """The text blocks of one element in order: paragraphs, list items, headings, a line per table row; figures,
    scripts and navigation left out."""
    if not isinstance(el.tag, str) or el.tag in NOT_PROSE or _is_figure(el):
        return []
    if el.tag in TEXT_BLOCKS:
        text = _clean(el.text_content())
        return [text] if text else []
    if el.tag == "table":
        rows = [" | ".join(_clean(c.text_content()) or "" for c in tr.xpath("./th|./td")) for tr in el.iter("tr")]
        table = "\n".join(r for r in rows if r.strip(" |"))
        return [table] if table else []
    inner = blocks(el)
    if not inner and not el.xpath(".//p|.//li|.//table|.//figure|.//*[contains(@class, 'fig')]"):
        text = _clean(el.text_content())  # bare text in a container
        return [text] if text else []
    return inner


def blocks(el, skip=None) -> list[str]:
    """The text blocks of ``el``'s children (``skip`` one of them: a section's heading)."""
    return [b for child in el if child is not skip for b in element_blocks(child)]


def _heading(sec) -> tuple[object | None, str | None]:
    for child in sec:
        if isinstance(child.tag, str) and child.tag in HEADINGS:
            return child, _clean(child.text_content())
    return None, None


def _caption(fig) -> dict:
    label = fig.xpath(".//*[contains(@class, 'label')]")
    label_text = _clean(label[0].text_content()) if label else None
    caption = fig.xpath(".//figcaption|.//*[contains(@class, 'caption')]")
    text = _clean(caption[0].text_content()) if caption else None
    if text and label_text and text.startswith(label_text):
        text = _clean(text[len(label_text):])
    return {"label": label_text, "text": text or ""}


def _is_section(el) -> bool:
    return el.tag == "section" or (el.tag == "div" and "sec" in _classes(el))


def body_of(root):
    found = (root.xpath("//*[@itemprop='articleBody']")
             or root.xpath("//div[contains(concat(' ', @class, ' '), ' body ')]"))
    return found[0] if found else None


def body_sections(body) -> list[dict]:
    """Top-level sections of the body, ``kind`` from the heading text; text outside any section becomes one untitled
    ``other`` section first (as jats.body_sections does)."""
    sections, loose = [], []
    for child in body:
        if isinstance(child.tag, str) and _is_section(child):
            heading, title = _heading(child)
            text = "\n\n".join(blocks(child, heading))
            sections.append({"kind": jats.section_kind(title), "title": title, "text": text})
        else:
            loose.extend(element_blocks(child))
    if loose:
        sections.insert(0, {"kind": "other", "title": None, "text": "\n\n".join(loose)})
    return [s for s in sections if s["text"]]


# --------------------------------------------------------------------------------------------------------------------
# the two pages into rows


def first_round_reviews(root) -> list[tuple[int, object]]:
    """(reviewer number, reviewBody element) of each first-round reviewer block; the decision block is not one."""
    out = []
    for block in root.xpath(f"//*[@id='{FIRST_ROUND}']//*[contains(@class, 'publication-review')]"):
        m = _REVIEW_ID.match(block.get("id") or "")
        if m is None or "publication-decision" in _classes(block):
            continue
        body = block.xpath(".//*[@itemprop='reviewBody']")
        out.append((int(m.group(1)), body[0] if body else None))
    return out


def later_round_reviews(root) -> int:
    ids = root.xpath("//*[contains(@class, 'publication-review')]/@id")
    return sum(1 for i in ids if (m := _ANY_REVIEW_ID.match(i)) and m.group(1) != FIRST_ROUND)


def _published(root) -> dt.date | None:
    for name in ("citation_publication_date", "citation_date", "dc.date"):
        value = _meta(root, name)
        if value:
            try:
                return dt.date.fromisoformat(value.replace("/", "-")[:10])
            except ValueError:
                continue
    return None


def article_row(page: Page, doi: str) -> dict | None:
    """The articles row of an article page; None when it has no body."""
    root = page.root
    body = body_of(root)
    sections = body_sections(body) if body is not None else []
    if not sections:
        return None
    abstract = root.xpath("//*[@itemprop='description' or contains(concat(' ', @class, ' '), ' abstract ')]")
    abstract_text = "\n\n".join(b for b in blocks(abstract[0]) if b.lower() != "abstract") if abstract else None
    license_url = root.xpath("//a[@rel='license']/@href|//link[@rel='license']/@href")
    article_id = f"{SOURCE}:{doi}"
    return {
        "article_id": article_id, "family_id": f"{SOURCE}:{page.number}", "source": SOURCE,
        "journal": _meta(root, "citation_journal_title") or "PeerJ", "doi": doi, "version": 1,
        "title": _meta(root, "citation_title") or _clean(" ".join(root.xpath("//h1//text()"))),
        "abstract": abstract_text or _meta(root, "citation_abstract"), "sections": sections,
        "figure_captions": [_caption(fig) for fig in body.iter() if isinstance(fig.tag, str) and _is_figure(fig)],
        "published": _published(root), "license": license_url[0].strip() if license_url else _meta(root, "dc.rights"),
        "review_style": REVIEW_STYLE, "file": page.file,
    }


@dataclass
class PeerjCounts(Counts):
    later_round_reviews: int = 0  # left out: they review the revision
    review_history_not_published: int = 0  # the authors' choice (optional before 13 February 2023)


def read_pages(dirs: list[Path], bad: BadInput, counts: PeerjCounts) -> dict[tuple[str, str], Page]:
    """{(article number, kind): page} of every usable file; a page read again keeps the later file."""
    pages: dict[tuple[str, str], Page] = {}
    for path, root in native_files(dirs, HTML_SUFFIXES):
        counts.files += 1
        try:
            page = read_page(read_bytes(path), path, relative_name(path, root))
        except UnusableFile as problem:
            bad.add(path, problem)
            continue
        counts.duplicates += (page.number, page.kind) in pages
        pages[page.number, page.kind] = page
    return pages


def parse(dirs: list[Path], bad: BadInput) -> Parsed:
    counts = PeerjCounts()
    pages = read_pages(dirs, bad, counts)
    articles, reports = [], []
    for number in sorted({n for n, _ in pages}, key=int):
        history, article = pages.get((number, "reviews")), pages.get((number, "article"))
        doi = f"10.7717/peerj.{number}"
        if history is None:
            bad.rejects.add(article.path, doi, "article page without its review history")
            continue
        reviews = first_round_reviews(history.root)
        counts.later_round_reviews += later_round_reviews(history.root)
        if not reviews and history_withheld(history.root):
            counts.review_history_not_published += 1
            continue
        if not reviews:
            bad.rejects.add(history.path, doi, "review history without first-round reviewer reports")
            continue
        if article is None:
            bad.rejects.add(history.path, doi, "review history without its article page")
            continue
        row = article_row(article, doi)
        if row is None:
            bad.rejects.add(article.path, doi, "article without body")
            continue
        kept = []
        for reviewer, body in reviews:
            text = _CITE.split("\n\n".join(blocks(body)) if body is not None else "", maxsplit=1)[0].strip()
            if not text:
                bad.rejects.add(history.path, f"{doi} {FIRST_ROUND}-review-{reviewer}", "review without text")
                continue
            kept.append({"report_id": tables.report_id(row["article_id"], 1, reviewer), "article_id": row["article_id"],
                         "source": SOURCE, "reviewer": reviewer, "round": 1, "kind": REPORT_KIND, "text": text,
                         "recommendation": None})
        if kept:
            articles.append(row)
            reports.extend(kept)
    return Parsed(articles, reports, [], counts)


# --------------------------------------------------------------------------------------------------------------------
# harvest


def check_page(kind: str):
    """What the harvester refuses to save: anything that is not the expected kind of page of a PeerJ article."""
    def check(data: bytes) -> None:
        page = read_page(data, Path("answer"), "answer")
        if page.kind != kind:
            raise UnusableFile("wrong source", f"a PeerJ {page.kind} page where the {kind} page was asked for")
    return check


@dataclass
class Harvest:
    crossref_url: str
    base_url: str
    from_date: dt.date
    until_date: dt.date | None
    out_dir: Path
    mailto: str | None
    rows: int = crossref.MAX_ROWS

    def listing(self, client: PoliteClient) -> list[str]:
        works = crossref.list_articles(client, self.crossref_url, self.out_dir / "crossref",
                                       {"prefix": "10.7717", "container-title": "PeerJ"}, from_date=self.from_date,
                                       until_date=self.until_date, mailto=self.mailto, rows=self.rows)
        matched = [(doi, DOI_RE.match(doi)) for doi in works["doi"]]
        other = [doi for doi, m in matched if m is None]
        if other:
            log.info("%d listed DOI(s) are not PeerJ articles, not fetched, e.g. %s", len(other), other[:5])
        return sorted((m.group(1) for _, m in matched if m), key=int)

    def run(self, listing_client: PoliteClient, site: PoliteClient) -> dict:
        fetches = Fetches(self.out_dir / "failures.jsonl")
        numbers, with_reviews = self.listing(listing_client), 0
        base, pages = self.base_url.rstrip("/"), self.out_dir / "pages"
        for n in numbers:
            doi = f"10.7717/peerj.{n}"
            history = fetches.get(site, f"{base}/articles/{n}/reviews/", pages / f"peerj-{n}-reviews.html",
                                  check_page("reviews"), record=doi)
            if history is None or not first_round_reviews(read_page(history, Path(n), n).root):
                continue
            with_reviews += 1
            fetches.get(site, f"{base}/articles/{n}/", pages / f"peerj-{n}-article.html", check_page("article"),
                        record=doi)
        log_failures(SOURCE, fetches)
        return {"source": SOURCE, "articles": len(numbers), "with_first_round_reviews": with_reviews,
                **fetches.summary()}


# --------------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> None:
    p, h, s = source_cli(__doc__, harvest_help="Crossref listing + review-history and article pages into OUT "
                                               "(resumable)",
                         parse_help="HTML pages -> articles / reports / responses tables",
                         out_dir_help="crossref/, pages/, failures.jsonl, rejects.jsonl", min_interval_s=2.0,
                         interval_what="page requests")
    h.add_argument("--base-url", default=BASE_URL, help="the PeerJ site root")
    crossref.add_listing_args(h, until_required=False)
    s.add_argument("--html", required=True, nargs="+", type=Path,
                   help="directories searched recursively for *.html / *.htm (.gz) pages, any name")
    add_output_args(s)

    def harvest(args) -> dict:
        mailto = crossref.mailto_of(args.mailto_env)
        harvest = Harvest(args.crossref_url, args.base_url, args.from_date, args.until_date, args.out_dir, mailto,
                          args.rows)
        with crossref.polite_client(policy_of(args, args.crossref_min_interval_s), mailto) as listing, \
                PoliteClient(policy_of(args)) as site:
            return harvest.run(listing, site)

    run_source_cli(p, argv, harvest, lambda args, bad: write_tables(SOURCE, parse(args.html, bad), bad, args))


if __name__ == "__main__":
    run_main(main)
